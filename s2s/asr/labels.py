"""What the recogniser writes: spoken characters (a judge), written characters or a tokenizer's ids (the LM's ears).

Id 0 is always the CTC blank; label i + 1 is character / token i.
"""
from __future__ import annotations

from pathlib import Path

CHARS = " abcdefghijklmnopqrstuvwxyz0123456789'"


class CharLabels:
    """Lower-case letters, digits, space and apostrophe; anything else is dropped (punctuation is not heard)."""

    kind = "chars"
    alphabet = CHARS  # label i + 1 is alphabet[i]

    def __init__(self):
        self.index = {c: i + 1 for i, c in enumerate(CHARS)}
        self.size = len(CHARS) + 1

    def normalise(self, text: str) -> str:
        kept = "".join(c for c in text.lower().replace("-", " ") if c in self.index)
        return " ".join(kept.split())

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in self.normalise(text)]

    def decode(self, ids: list[int]) -> str:
        return "".join(CHARS[i - 1] for i in ids if 0 < i <= len(CHARS))


# Everything a written question holds: both cases, digits, and the symbols a spoken number or sum is written with.
WRITTEN = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'+-×÷=?,.:!"


class WrittenLabels:
    """Text as it is written ("What is 21 + 4?"), case, digits and symbols kept: what a text question looks like.

    A recogniser that writes this learns a small, fixed alphabet from few examples (a tokenizer's thousand ids
    learn slowly), and its transcript tokenizes like the written question a text-trained LM already reads.
    """

    kind = "written"
    alphabet = WRITTEN

    def __init__(self):
        self.index = {c: i + 1 for i, c in enumerate(WRITTEN)}
        self.size = len(WRITTEN) + 1

    def normalise(self, text: str) -> str:
        return " ".join("".join(c for c in text if c in self.index or c.isspace()).split())

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in self.normalise(text)]

    def decode(self, ids: list[int]) -> str:
        return "".join(WRITTEN[i - 1] for i in ids if 0 < i <= len(WRITTEN))


class TokenizerLabels:
    """The ids of a text tokenizer (a folder saved with `save_pretrained`), shifted by one for the blank."""

    kind = "tokenizer"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.size = len(tokenizer) + 1

    def normalise(self, text: str) -> str:
        return text

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([i - 1 for i in ids if i > 0])


def build_labels(spec: str):
    """`chars`, `written`, or `tokenizer:<folder>`."""
    if spec == "chars":
        return CharLabels()
    if spec == "written":
        return WrittenLabels()
    if spec.startswith("tokenizer:"):
        from transformers import AutoTokenizer

        folder = spec.partition(":")[2]
        if not Path(folder).is_dir():
            raise ValueError(f"labels {spec!r}: no tokenizer folder at {folder}; train the LM's tokenizer first")
        try:
            return TokenizerLabels(AutoTokenizer.from_pretrained(folder))
        except (OSError, ValueError):
            raise ValueError(f"labels {spec!r}: {folder} holds no tokenizer; give the LM's tokenizer folder") from None
    raise ValueError(f"unknown labels {spec!r}; use 'chars', 'written' or 'tokenizer:<folder>'")
