"""The reasoning LM: joint vocabulary, codebook patterns and sequence formats."""
