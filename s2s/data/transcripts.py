"""A written question as an ear writes it: the reasoner learns to read transcripts, not only the generator's text.

Punctuation is not spoken, so an ear guesses it: Whisper writes "Finish the pattern, 0, 4, 8. What comes next?"
for "Finish the pattern: 0, 4, 8, what comes next?", and mishears a word here and there ("gives 3 to Maya" as
"guess 3 to my"). `as_heard` makes such transcripts from the written question, leaving every number, time and
operator as written (a misheard number is a different question, and the ears' own figures measure those).
"""
from __future__ import annotations

import random
import re

from s2s.data.problems import NAMES

# Sentence marks an ear writes as it likes: any but a comma in a list of numbers ("4, 8") or a clock's colon.
_MARK = re.compile(r"[:;,.?!](?!\d)")
_ANY_MARK = ("", ",", ".", "?")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def _respell(text: str, rng: random.Random, p: float) -> str:
    """Each sentence mark, with chance `p`, swapped for another or dropped; the next word's case follows it."""
    out, i = [], 0
    for match in _MARK.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if match.group() == "," and before.isdigit() and re.match(r" \d", text[match.end():]):
            continue  # a list of numbers keeps its commas
        if rng.random() >= p:
            continue
        mark = rng.choice(_ANY_MARK)
        out.append(text[i:match.start()] + mark)
        i = match.end()
        rest = re.match(r"(\s+)([A-Za-z]+)", text[i:])
        if rest:  # a sentence starts after . and ?, goes on after the others (names and "I" keep their case)
            word = rest.group(2)
            kept = word in NAMES or word == "I"
            word = word[0].upper() + word[1:] if mark in ".?" else word if kept else word[0].lower() + word[1:]
            out.append(rest.group(1) + word)
            i += rest.end()
    return "".join(out) + text[i:]


def _misheard_word(text: str, rng: random.Random, vocabulary: tuple[str, ...]) -> str:
    """One small word of `vocabulary` swapped for another or said twice: words that carry the question (bigger,
    ago, left, the names and objects) stay, since a question without them asks something else."""
    words = [w for w in _WORD.finditer(text) if w.group().lower() in vocabulary]
    if not words:
        return text
    word = rng.choice(words)
    new = f"{word.group()} {word.group()}" if rng.random() < 0.3 else rng.choice(vocabulary)
    return text[:word.start()] + new + text[word.end():]


def as_heard(written: str, rng: random.Random, punctuation: float = 0.5, misheard: float = 0.15,
             vocabulary: tuple[str, ...] = ("the", "a", "and", "so", "is", "to", "it", "in", "on", "of")) -> str:
    """`written` as an ear might transcribe it: with chance `punctuation` its sentence marks respelt (each mark
    then changes with chance 1/2), with chance `misheard` one of its small words (`vocabulary`) swapped for
    another or doubled. Numbers, times and operators stay as written."""
    text = written
    if rng.random() < punctuation:
        text = _respell(text, rng, 0.5)
    if rng.random() < misheard:
        text = _misheard_word(text, rng, vocabulary)
    return re.sub(r"\s+", " ", text).strip() or written
