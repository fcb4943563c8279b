"""as_heard: a written question as an ear writes it, its numbers, times and operators kept."""
import random
import re

from s2s.data.problems import generate_problems
from s2s.data.transcripts import as_heard

QUESTIONS = [p.question_written for p in generate_problems(400, seed=11)]
KEPT = re.compile(r"\d+(?::\d\d)?|[+×-]")


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text.lower())


def test_numbers_times_and_operators_survive_every_transcript():
    rng = random.Random(0)
    for question in QUESTIONS:
        heard = as_heard(question, rng, punctuation=1.0, misheard=1.0)
        assert KEPT.findall(heard) == KEPT.findall(question), (question, heard)


def test_punctuation_is_respelt_but_lists_of_numbers_keep_their_commas():
    rng = random.Random(1)
    heard = [as_heard(q, rng, punctuation=1.0, misheard=0.0) for q in QUESTIONS]
    changed = [(q, h) for q, h in zip(QUESTIONS, heard) if q != h]
    assert len(changed) > len(QUESTIONS) / 3
    for question, transcript in changed:  # only marks and the case after them differ
        assert words(question) == words(transcript), (question, transcript)
        for numbers in re.findall(r"\d+(?:, \d+)+", question):
            assert numbers in transcript, (question, transcript)
    assert any(h.startswith(q[:10]) and q[-1] == "?" and h[-1] != "?" for q, h in changed)


def test_a_misheard_word_is_a_small_word_and_names_keep_their_case():
    rng = random.Random(2)
    vocabulary = ("the", "a", "and", "so", "is", "to", "it", "in", "on", "of")
    for question in QUESTIONS:
        heard = as_heard(question, rng, punctuation=0.0, misheard=1.0, vocabulary=vocabulary)
        kept = [w for w in words(question) if w not in vocabulary]
        assert [w for w in words(heard) if w not in vocabulary] == kept, (question, heard)
    story = "So, Amy has 2 buttons and Zoe has twice as many. How many buttons does Zoe have?"
    for seed in range(30):
        assert "Amy" in as_heard(story, random.Random(seed), punctuation=1.0, misheard=0.0)


def test_same_seed_same_transcript_and_nothing_asked_nothing_changed():
    assert [as_heard(q, random.Random(5)) for q in QUESTIONS[:50]] == \
        [as_heard(q, random.Random(5)) for q in QUESTIONS[:50]]
    rng = random.Random(3)
    assert all(as_heard(q, rng, punctuation=0.0, misheard=0.0) == q for q in QUESTIONS)
