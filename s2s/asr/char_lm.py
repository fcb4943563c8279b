"""A character n-gram language model of the corpus's sentences, for CTC beam search.

A small CTC recogniser hears most characters right but spells freely
("numberis", "fourty", "sickears") in voices it never heard, and one wrong
letter costs a whole word. Text costs nothing: an n-gram model of the
sentences the recogniser was trained on knows how words are spelled and
which follow which, and rescoring the CTC beam with it (shallow fusion, as in
DeepSpeech or pyctcdecode) fixes most such slips. Characters rather than
words, so that a name or number word the text never held can still be
spelled from the sound.

The model carries the fusion settings it was tuned with (beam width, LM
weight `alpha`, per-character bonus `beta`: see s2s/asr/beam.py), so a saved
recogniser folder decodes the same way wherever it is loaded.

Digits can count as one class (`digits`): the model then says where a number
goes and how long it is, never which digits, which it learnt only from the
corpus's own numbers (a 10-gram that knows the training questions pulls a
heard "2:11" towards the "2:10" it saw). The class's probability is shared
evenly among the digits.

Interpolated Witten-Bell smoothing: each order backs off to the one below
in proportion to how many different characters followed its context, and
the bottom is uniform over the alphabet, so every string has a probability.
Saved as gzipped JSON beside the recogniser's weights (`text_lm.json.gz`).
"""
from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path

from s2s.files import load_json_gz, save_json_gz

START, END = "^", "$"  # before the first character; after the last (not in any label alphabet)
DIGIT = "#"  # every digit, where the model counts digits as one class
FILE_NAME = "text_lm.json.gz"
CACHE_LIMIT = 1_000_000  # memoised probabilities kept; a long evaluation would otherwise grow it without end


def _digit_classes(digits: str) -> dict[int, int] | None:
    """The translation that writes every one of `digits` as DIGIT (None when digits are told apart)."""
    return str.maketrans(digits, DIGIT * len(digits)) if digits else None


class CharNgramLM:
    """P(next character | the `order - 1` before it), for texts written in `alphabet`."""

    def __init__(self, order: int, alphabet: str, counts: dict[str, dict[str, int]], beam: int = 8,
                 alpha: float = 0.6, beta: float = 1.0, digits: str = ""):
        if order < 1:
            raise ValueError(f"a character n-gram model needs order >= 1, got {order}")
        if beam < 1 or alpha < 0:
            raise ValueError(f"fusion needs beam >= 1 and alpha >= 0, got beam={beam}, alpha={alpha}")
        if digits and (DIGIT in alphabet or set(digits) - set(alphabet)):
            raise ValueError(f"digits {digits!r} must be characters of the alphabet, which must not hold {DIGIT!r}")
        self.order, self.alphabet, self.counts, self.digits = order, alphabet, counts, digits
        self._classes = _digit_classes(digits)
        # The bottom of the back-off: uniform over the symbols (the digits' class counted once) and END.
        self._uniform = 1.0 / (len(alphabet) - len(digits) + bool(digits) + 1)
        self.beam, self.alpha, self.beta = beam, alpha, beta
        self.totals = {context: sum(following.values()) for context, following in counts.items()}
        self._cache: dict[tuple[str, str], float] = {}

    @classmethod
    def from_texts(cls, texts, alphabet: str, order: int = 10, min_count: int = 2, digits: str = "",
                   **fusion) -> CharNgramLM:
        """Count every context of up to `order - 1` characters in `texts` (already written in `alphabet`).
        Contexts longer than two characters that were seen fewer than `min_count` times are dropped: they
        mostly count single sentences and would only grow the file. `digits` ("0123456789") are counted as
        one class."""
        classes = _digit_classes(digits)
        counts: dict[str, Counter] = defaultdict(Counter)
        seen = 0
        for text in texts:
            unknown = set(text) - set(alphabet)
            if unknown:
                raise ValueError(f"text {text!r} has characters outside the alphabet: {''.join(sorted(unknown))!r}")
            padded = START * (order - 1) + (text.translate(classes) if classes else text) + END
            for i in range(order - 1, len(padded)):
                for n in range(order):
                    counts[padded[i - n:i]][padded[i]] += 1
            seen += 1
        if not seen:
            raise ValueError("a character n-gram model needs at least one text")
        kept = {c: dict(f) for c, f in counts.items() if len(c) <= 2 or sum(f.values()) >= min_count}
        return cls(order, alphabet, kept, digits=digits, **fusion)

    def log_prob(self, history: str, char: str) -> float:
        """ln P(`char` | `history`); `history` is the text so far (without START), `char` a character or END."""
        width = self.order - 1
        context = (START * width + history)[-width:] if width else ""
        if self._classes:
            context, char = context.translate(self._classes), char.translate(self._classes)
        key = (context, char)
        if key not in self._cache:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            shared = len(self.digits) if char == DIGIT else 1
            self._cache[key] = math.log(self._prob(context, char) / shared)
        return self._cache[key]

    def _prob(self, context: str, char: str) -> float:
        lower = self._uniform if not context else self._prob(context[1:], char)
        following = self.counts.get(context)
        if not following:
            return lower
        types = len(following)
        return (following.get(char, 0) + types * lower) / (self.totals[context] + types)

    def score(self, text: str) -> float:
        """ln P(text, then its end)."""
        return sum(self.log_prob(text[:i], c) for i, c in enumerate(text)) + self.log_prob(text, END)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        return save_json_gz(path, {"order": self.order, "alphabet": self.alphabet, "beam": self.beam,
                                   "alpha": self.alpha, "beta": self.beta, "digits": self.digits,
                                   "counts": self.counts}, overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharNgramLM:
        try:
            data = load_json_gz(path)
            return cls(int(data["order"]), data["alphabet"], data["counts"], int(data["beam"]),
                       float(data["alpha"]), float(data["beta"]), data.get("digits", ""))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a character n-gram model saved by CharNgramLM.save ({error}); "
                             "build it again with s2s asr lm") from None
