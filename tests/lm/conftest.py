"""Fixtures of tests/lm: the tiny models of `tiny_models.py`."""
from tiny_models import codec, codec_dir, lm, lms, tokenizer_dir  # noqa: F401
