"""Style: measuring how speech is spoken (rate, pitch), apart from what is said."""
