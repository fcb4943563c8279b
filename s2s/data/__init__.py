"""Data: synthetic speech, manifests and data modules."""
