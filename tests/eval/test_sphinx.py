"""The pocketsphinx second opinion: a grammar that holds every reply, and real decoding of espeak-ng speech."""
import re

import pytest
import torch

from s2s import audio
from s2s.data.espeak import render
from s2s.data.numbers import number_to_words, time_to_words
from s2s.data.problems import generate_problems
from s2s.eval.metrics import normalise
from s2s.eval.reasoning import spoken_answer
from s2s.eval.sphinx import NUMBER_WORDS, SAMPLE_RATE, reply_shapes, sphinx_judge


def test_every_reply_of_another_seed_fits_a_shape():
    """Shapes come from one draw of the corpus; replies of another draw must all fit one of them."""
    shapes = [re.compile("^" + re.escape(s).replace("<num>", r"[a-z' ]+?").replace(r"<name>", r"\w+")
                         .replace("<obj>", r"\w+").replace("<word>", r"\w+").replace("<cat>", r"\w+") + "$")
              for s in reply_shapes()]
    for problem in generate_problems(1500, seed=99):
        reply = normalise(problem.reply)
        assert any(shape.match(reply) for shape in shapes), reply
    assert {"hundred", "minus", "o'clock", "oh"} <= NUMBER_WORDS


def test_the_number_grammar_says_numbers_and_times_as_our_words_do():
    """Every number and time the replies speak must be a sentence of <num>; checked through the decoder's
    own grammar by decoding is slow, so here: their words are all number words."""
    for n in (-32, 0, 7, 15, 40, 99, 100, 486, 999):
        assert set(number_to_words(n).split()) <= NUMBER_WORDS
    for hour, minute in ((6, 5), (12, 0), (10, 13), (3, 45)):
        assert set(time_to_words(hour, minute).split()) <= NUMBER_WORDS


@pytest.mark.parametrize("sentence, answer", [("The answer is minus three.", "-3"), ("Each friend gets four.", "4")])
def test_sphinx_hears_a_clean_espeak_reply(sentence, answer):
    samples, rate = render(sentence, voice="en-us+f3", speed_wpm=170)
    wav = audio.prepare(torch.from_numpy(samples)[None, None], rate, SAMPLE_RATE)[0]
    heard = sphinx_judge().transcribe(wav)[0]
    assert spoken_answer(heard, answer) == answer, heard
