"""s2s: speech-to-speech reasoning."""
__version__ = "0.1.0"
