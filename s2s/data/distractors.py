"""Words a question may carry that do not change it: preambles, asides and sign-offs for training questions.

People open a question with whatever comes to mind ("Sorry to bother you,
my son is doing his homework ...") and a small reasoner trained on a few
openings reads an unseen one as part of the problem: it then answers a
different question. Training questions that carry words which change
nothing teach it to find the question inside whatever surrounds it (the
irrelevant-context augmentation of GSM-IC, and the distractor insertion of
robust reading comprehension). Two kinds, so the model cannot learn one
style of noise:

    chat     an everyday opening composed from small pools (a greeting, a
             reason for asking, a nudge): thousands of combinations;
    words    1 to 5 common English words at random, a sentence that means
             nothing to the problem.

The common words (`s2s/assets/distractor_words.txt`) are the most frequent
whole words of SmolLM2's tokenizer (its merge order) that are also in the
CMU and WSJ lexicons Festival ships, less every word the question grammar
uses (in any split) and every word about numbers, sizes, time or order, so a
distractor can never say anything a question means. Only the train split
draws these (`s2s/data/problems.py`); the phrasing split's held-out openings
share no content word with them (tests/data/test_distractors.py).
"""
from __future__ import annotations

import functools
import random
from importlib import resources

# Everyday openings, composed: a greeting, then a reason for asking or a nudge. None of these words is a number,
# a size, a time or an operation, and none is a content word of the phrasing split's held-out openings.
_GREETINGS = ("Hi", "Hello", "Hey there", "Good morning", "Good evening", "Excuse me", "Sorry", "Please", "Well then",
              "Hmm", "Ah", "OK so", "Yes", "Hey buddy", "Hi again", "Morning", "Sorry to bother you", "Hello there",
              "Hiya", "Greetings")
_REASONS = ("my teacher gave us this", "this is from my homework", "my daughter wants to know", "my son is stuck",
            "we are playing a quiz", "I am stuck on this", "I need some help", "can you help me", "I have a puzzle",
            "try this", "this is a tricky puzzle", "my friend and I disagree", "I am checking my work", "just curious",
            "for a school project", "think carefully", "take your time", "no rush", "I keep getting this wrong",
            "my brother says it is easy", "we are cooking dinner", "I am at the shop", "this came up at work",
            "my class is doing this", "you are good at these", "be careful", "another puzzle for you",
            "I forgot how to do this", "I saw this in a book", "tell me straight")
_SIGN_OFFS = ("Thanks.", "Thank you.", "Thanks a lot.", "Please.", "Cheers.", "Thank you so much.", "Go on.",
              "Take your time.", "I'll wait.", "No rush.")
_SEPARATORS = (", ", ". ", ": ")


@functools.lru_cache(maxsize=1)
def common_words() -> tuple[str, ...]:
    """The common English words distractors draw from (most frequent first)."""
    text = resources.files("s2s").joinpath("assets/distractor_words.txt").read_text(encoding="utf-8")
    return tuple(text.split())


def sentence(text: str, end: str) -> str:
    """`text` with its first letter capitalised and `end` after it."""
    return text[0].upper() + text[1:] + end


def chat_preamble(rng: random.Random) -> str:
    """An everyday opening, ending in its separator ("Sorry to bother you, my son is stuck. ")."""
    parts = [rng.choice(_GREETINGS)] * (rng.random() < 0.7) + [rng.choice(_REASONS)] * (rng.random() < 0.8)
    if not parts:
        parts = [rng.choice(_REASONS)]
    return sentence(", ".join(parts), rng.choice(_SEPARATORS))


def _random_words(rng: random.Random, fewest: int, most: int) -> str:
    return " ".join(rng.sample(common_words(), rng.randint(fewest, most)))


def word_preamble(rng: random.Random, most: int = 5) -> str:
    """1 to `most` common words at random, ending in a separator ("Garden because modern: ")."""
    return sentence(_random_words(rng, 1, most), rng.choice(_SEPARATORS))


def preamble(rng: random.Random) -> str:
    """Either kind of opening, equally often."""
    return chat_preamble(rng) if rng.random() < 0.5 else word_preamble(rng)


def aside(rng: random.Random) -> str:
    """A sentence that changes nothing, to put between a question's sentences ("Modern garden policy.")."""
    return sentence(_random_words(rng, 2, 5), ".")


def sign_off(rng: random.Random) -> str:
    """What someone might say after the question: thanks, or a few words."""
    return rng.choice(_SIGN_OFFS) if rng.random() < 0.6 else aside(rng)
