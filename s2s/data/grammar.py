"""The small grammar the question generator draws from, and the splits that hold parts of it out.

A question is a template (its shape and opening) filled with parts (verbs,
fillers, names, numbers). Each slot of the grammar lists the productions a
model may train on and, apart, the productions only the `phrasing` split
uses, so that split measures questions phrased in ways the model never read.
Sizes are split the same way: `stretch` draws them just beyond training (one
more term, larger operands, one more step).

    train        the training productions, and more ways of asking that only training draws (`extra`)
    test         fresh draws of the training productions and sizes, without the extras: the in-distribution core
    phrasing     held-out openings, verbs and sentence shapes; training sizes
    stretch      training productions; sizes just beyond training

`held_out_phrases()` lists the phrasing split's productions (the documented
split); a row drawn for training never uses one.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

SPLITS = ("train", "test", "phrasing", "stretch")


@dataclass(frozen=True)
class Slot:
    """One choice in a question: the productions a model trains on, those only the phrasing split uses, and
    `extra` ones only training draws (breadth to read from, while `test` keeps drawing what it always drew)."""
    train: tuple[str, ...]
    held_out: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return split


class Draw:
    """The choices of one question, for one split: phrases from the split's productions, sizes from its ranges.

    `held_out` counts the held-out productions used, so a test can check that training never sees one."""

    def __init__(self, rng: random.Random, split: str):
        self.rng, self.split, self.held_out = rng, check_split(split), 0

    @property
    def stretch(self) -> bool:
        return self.split == "stretch"

    def phrase(self, slot: Slot) -> str:
        """A production of `slot`: a held-out one in the phrasing split (where the slot has any), any training
        one (extras too) in the train split."""
        if self.split == "phrasing" and slot.held_out:
            self.held_out += 1
            return self.rng.choice(slot.held_out)
        return self.rng.choice(slot.train + slot.extra if self.split == "train" else slot.train)

    def size(self, train: tuple[int, int], stretch: tuple[int, int] | None = None) -> int:
        """An integer in `train` (inclusive), or in `stretch` in the stretch split when a stretch range is given."""
        low, high = stretch if self.stretch and stretch else train
        return self.rng.randint(low, high)
