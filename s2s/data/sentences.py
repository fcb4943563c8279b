"""Random English sentences with broad phonetic coverage, for codec training.

A codec must hear many sounds, not only the words of arithmetic questions, so
sentences mix everyday vocabulary, numbers, names and question forms.
"""
from __future__ import annotations

import random

NAMES = ("Anna Ben Clara David Emma Felix Grace Henry Isla Jack Kate Leo Mia Noah Olivia Peter Quinn Rosa Sam Tom "
         "Uma Victor Wendy Zoe").split()
NOUNS = ("apple basket bicycle bridge candle castle cheese cloud coffee desk doctor engine feather forest garden "
         "guitar hammer harbour island jacket kettle kitchen ladder lemon library machine market mirror mountain "
         "needle ocean orange pencil pepper pillow planet pocket puzzle rabbit river rocket saddle school shadow "
         "shovel silver spider squirrel station student sugar table teacher thunder ticket tiger tomato tower "
         "train treasure umbrella valley village violin wagon window winter yellow zebra").split()
ADJECTIVES = ("ancient bright calm careful cheerful clever cold curious dark eager empty enormous fancy fierce "
              "gentle golden heavy hollow huge jolly lazy little loud lucky narrow noisy old pale patient purple "
              "quick quiet rough round shiny short silent sleepy smooth soft sour strange strong sweet tall thick "
              "tiny warm wet wild wise wooden young").split()
VERBS = ("builds carries catches chases cleans climbs draws drops finds fixes follows grabs hides holds kicks "
         "lifts likes moves opens paints pulls pushes reads sells shakes sees throws touches washes watches").split()
PLACES = ("at the station", "in the garden", "near the river", "on the mountain", "behind the school",
          "under the bridge", "beside the window", "across the valley", "inside the castle", "by the harbour")
TIMES = ("every morning", "on Sunday", "after lunch", "at midnight", "before breakfast", "in the summer",
         "last winter", "tomorrow evening", "twice a week", "during the storm")
NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                "hundred").split()


def _noun_phrase(rng: random.Random) -> str:
    noun = rng.choice(NOUNS)
    if rng.random() < 0.5:
        noun = f"{rng.choice(ADJECTIVES)} {noun}"
    return f"{rng.choice(['the', 'a', 'my', 'your', 'this', 'that'])} {noun}"


def _number(rng: random.Random) -> str:
    return " ".join(rng.sample(NUMBER_WORDS, rng.randint(1, 2)))


TEMPLATES = (
    lambda r: f"{r.choice(NAMES)} {r.choice(VERBS)} {_noun_phrase(r)} {r.choice(PLACES)}.",
    lambda r: f"{r.choice(TIMES).capitalize()}, {r.choice(NAMES)} {r.choice(VERBS)} {_noun_phrase(r)}.",
    lambda r: f"Why does {r.choice(NAMES)} keep {_noun_phrase(r)} {r.choice(PLACES)}?",
    lambda r: f"There are {_number(r)} {r.choice(NOUNS)}s {r.choice(PLACES)}.",
    lambda r: f"Is {_noun_phrase(r)} more {r.choice(ADJECTIVES)} than {_noun_phrase(r)}?",
    lambda r: f"{r.choice(NAMES)} and {r.choice(NAMES)} {r.choice(VERBS)[:-1]} {_noun_phrase(r)} {r.choice(TIMES)}.",
    lambda r: f"What is {_number(r)} plus {_number(r)}?",
    lambda r: f"Please bring {_noun_phrase(r)}, {_noun_phrase(r)} and {_noun_phrase(r)}.",
    lambda r: (f"I think {_noun_phrase(r)} is {r.choice(ADJECTIVES)}, "
               f"but {r.choice(NAMES)} says it is {r.choice(ADJECTIVES)}."),
    lambda r: f"The answer is {_number(r)}.",
)


def random_sentence(rng: random.Random) -> str:
    return rng.choice(TEMPLATES)(rng)
