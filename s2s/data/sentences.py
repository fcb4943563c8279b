"""Random English text with broad phonetic coverage: sentences for codec training, read-aloud words for ears.

A codec must hear many sounds, not only the words of arithmetic questions, so
sentences mix everyday vocabulary, numbers, names and question forms. An ear
must spell words it was never asked about, so `read_aloud` draws words in no
order, with numbers and times among them, said in words and written in digits.
"""
from __future__ import annotations

import random

from s2s.data.distractors import sentence
from s2s.data.ear_words import ear_words
from s2s.data.numbers import clock, number_to_words, time_to_words

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


# Read-aloud text: how often a word slot holds a number, and a number slot a clock time.
NUMBER_SHARE, TIME_SHARE = 0.2, 0.25


def _said_and_written_number(rng: random.Random) -> tuple[str, str]:
    """A number or a clock time as it is said and as a question writes it: ("eighty four", "84"),
    ("seven oh five", "7:05")."""
    if rng.random() < TIME_SHARE:
        hour, minute = rng.randint(1, 12), rng.randint(1, 59)
        return time_to_words(hour, minute), clock(hour * 60 + minute)
    number = rng.choice((rng.randint(0, 20), rng.randint(0, 100), rng.randint(100, 999)))
    return number_to_words(number), str(number)


def read_aloud(rng: random.Random, fewest: int = 3, most: int = 14) -> tuple[str, str]:
    """Words in no order anyone would write them, with numbers and clock times among them: (as said, as
    written with digits), e.g. ("Garden eighty four modern seven oh five because.", "Garden 84 modern 7:05
    because.").

    An ear trained only on the question grammar learns its sentences, not its sounds: given an opening it
    never heard ("I was wondering") it writes near-words and digits that were never said. Words drawn at
    random from 10,000 of English (`s2s/data/ear_words.py`), with numbers where no template puts them, teach
    it to spell what it hears and to write a number only where one is said."""
    said, written = [], []
    for _ in range(rng.randint(fewest, most)):
        if rng.random() < NUMBER_SHARE and not (written and written[-1][0].isdigit()):  # "73 78" reads as one
            spoken, digits = _said_and_written_number(rng)
            said.append(spoken)
            written.append(digits)
        else:
            word = rng.choice(ear_words()) if rng.random() < 0.7 else rng.choice(NOUNS + ADJECTIVES + NAMES)
            said.append(word)
            written.append(word)
    end = rng.choice(".?")
    return sentence(" ".join(said), end), sentence(" ".join(written), end)
