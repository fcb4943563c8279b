"""espeak-ng voices and the held-out split that keeps test voices unseen.

A voice is `base+variant` (for example `en-us+f3`): a base accent from
espeak-ng's English voices and one of its variants (`espeak-ng --voices=variant`).
A voice is *held out* when its variant or its base is on the held-out lists
below; held-out voices never appear in training data, so test figures measure
speakers the models have not heard.
"""
from __future__ import annotations

import random

# espeak-ng's own English voices (the mbrola voices need extra packages).
BASES = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-us-nyc", "en-029")

# Variant files under espeak-ng-data/voices/!v. Excluded: whisper and novelty
# voices whose speech is barely voiced (whisper, whisperf, announcer, Demonic).
VARIANTS = (
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris",
    "caleb", "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene", "Gene2", "gustave", "Henrique",
    "Hugo", "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "linda", "marcelo",
    "Marco", "Mario", "max", "Michael", "michel", "miguel", "Mike", "Mr", "Nguyen", "pablo", "paul", "pedro",
    "quincy", "RicishayMax", "RicishayMax2", "RicishayMax3", "rob", "robert", "robosoft", "robosoft2",
    "robosoft3", "robosoft4", "robosoft5", "robosoft6", "robosoft7", "robosoft8", "steph", "steph2", "steph3",
    "Storm", "Tweaky", "UniRobot", "zac", "anika", "anikaRobot", "AnxiousAndy", "f1", "f2", "f3", "f4", "f5",
    "grandpa", "grandma", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "m1", "m2", "m3", "m4",
    "m5", "m6", "m7", "m8", "norbert", "sandro", "shelby", "travis", "victor", "croak",
)

# The named held-out split: never used for training, only for testing.
HELD_OUT_VARIANTS = ("f4", "m3", "Andrea", "benjamin", "Lee", "quincy", "steph2", "klatt4", "victor", "Mario")
HELD_OUT_BASES = ("en-029",)


def is_held_out(voice: str) -> bool:
    base, _, variant = voice.partition("+")
    return base in HELD_OUT_BASES or variant in HELD_OUT_VARIANTS


def voices(split: str) -> list[str]:
    """All `base+variant` voices of a split: "train", "test" (held out) or "all"."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown voice split {split!r}; choose train, test or all")
    every = [f"{base}+{variant}" for base in BASES for variant in VARIANTS]
    if split == "all":
        return every
    return [v for v in every if is_held_out(v) == (split == "test")]


def sample_voice(rng: random.Random, split: str) -> dict:
    """A random voice with random speed (words/min) and pitch (0-99) from `split`."""
    return {"voice": rng.choice(voices(split)), "speed_wpm": rng.randint(130, 210), "pitch": rng.randint(25, 75)}
