"""A second, independent judge of spoken answers: pocketsphinx (CMU Sphinx) with a grammar of our replies.

The CTC judge (`configs/asr/judge.yaml`) is trained on this project's own
TTS, so it may share blind spots with the model it judges. pocketsphinx's
PyPI wheel carries a US-English acoustic model trained on real speech by
other people, which shares nothing with s2s. Free-form, it cannot follow
synthetic speech ("The answer is minus three." comes out as "and that it
might ask me"), so it listens with a JSGF grammar of the sentences a reply
can be: every reply shape of the corpus (`s2s/data/problems.py`), with
numbers and clock times as our number words say them (`s2s/data/numbers.py`),
and names, objects, words and categories as lists. It is a weak judge (its own accuracy on clean TTS
is in the evaluation model card); `s2s evaluate --sphinx` reports it beside
the CTC judge as a second opinion.
"""
from __future__ import annotations

import functools
import re

import torch

from s2s.data.numbers import TEENS, TENS, UNITS
from s2s.data.problems import CATEGORIES, NAMES, OBJECTS, WORDS, generate_problems
from s2s.eval.metrics import normalise

SAMPLE_RATE = 16000
NUMBER_WORDS = set(UNITS + TEENS + TENS) - {"_"} | {"hundred", "thousand", "minus", "oh", "o'clock"}
# Numbers as number_to_words says them (up to 999, signed), and clock times as time_to_words does.
NUMBER_RULES = f"""<digit> = {' | '.join(UNITS[1:])};
<teen> = {' | '.join(TEENS)};
<tens> = {' | '.join(TENS[2:])};
<below100> = <digit> | <teen> | <tens> [<digit>];
<hour> = <digit> | ten | eleven | twelve;
<clock> = <hour> (o'clock | oh <digit> | <teen> | <tens> [<digit>]);
<num> = [minus] (zero | <below100> | <digit> hundred [<below100>]) | <clock>;"""
_SHAPE_SAMPLES = 6000  # replies drawn to collect every shape (each family has a few templates)


def _slots() -> dict[str, set[str]]:
    """Words that stand for a list in a reply shape: <name>, <obj>, <word>, <cat>."""
    objects = {o for o in OBJECTS} | {o[:-1] for o in OBJECTS}  # "1 ... has 1 apple now"
    categories = set(CATEGORIES) | {"fruit", "animal", "color"}
    return {"name": {n.lower() for n in NAMES}, "obj": objects, "word": set(WORDS), "cat": categories}


def reply_shapes(samples: int = _SHAPE_SAMPLES) -> list[str]:
    """Every reply of the corpus as a shape: "the answer is <num>", "<name> has <num> <obj> now" ..."""
    slots, shapes = _slots(), set()
    for problem in generate_problems(samples, seed=-2):
        words, shape = normalise(problem.reply).split(), []
        for word in words:
            slot = next((f"<{name}>" for name, members in slots.items() if word in members), None)
            token = "<num>" if word in NUMBER_WORDS else slot or word
            if not (token == "<num>" and shape and shape[-1] == "<num>"):
                shape.append(token)
        shapes.add(" ".join(shape))
    return sorted(shapes)


def grammar(dictionary: set[str]) -> str:
    """The JSGF grammar of every reply shape whose words `dictionary` (the decoder's pronunciations) knows."""
    slots = {name: sorted(w for w in members if w in dictionary) for name, members in _slots().items()}
    known = set(dictionary) | {"<num>"} | {f"<{name}>" for name in slots}
    shapes = [s for s in reply_shapes() if all(w in known for w in s.split())]
    rules = [f"public <reply> = {' | '.join(f'( {s} )' for s in shapes)};", NUMBER_RULES]
    rules += [f"<{name}> = {' | '.join(words)};" for name, words in slots.items()]
    return "#JSGF V1.0;\ngrammar reply;\n" + "\n".join(rules) + "\n"


class SphinxJudge:
    """`transcribe(wav [B, T] at 16 kHz)` -> what pocketsphinx heard in each row, as lower-case words."""

    def __init__(self):
        try:
            from pocketsphinx import Decoder, get_model_path
        except ImportError:
            raise ImportError("the sphinx judge needs pocketsphinx: pip install pocketsphinx") from None
        import os

        dictionary_path = os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict")
        with open(dictionary_path) as f:
            dictionary = {re.sub(r"\(\d+\)$", "", line.split(" ", 1)[0]) for line in f if line.strip()}
        self.decoder = Decoder(samprate=SAMPLE_RATE, logfn=os.devnull)
        self.decoder.add_jsgf_string("reply", grammar(dictionary))
        self.decoder.activate_search("reply")

    def transcribe(self, wav: torch.Tensor) -> list[str]:
        texts = []
        for row in wav.reshape(-1, wav.shape[-1]):
            pcm = (row.float().clamp(-1, 1) * 32767).short().cpu().numpy().tobytes()
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hypothesis = self.decoder.hyp()
            texts.append(hypothesis.hypstr if hypothesis is not None else "")
        return texts


@functools.lru_cache(maxsize=1)
def sphinx_judge() -> SphinxJudge:
    """One decoder per process: building the grammar takes a second."""
    return SphinxJudge()
