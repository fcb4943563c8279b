"""Random sentences and read-aloud words: what the codec and the ears train on beside the questions."""
import json
import random
import re

from s2s.asr.labels import WrittenLabels
from s2s.data import voices
from s2s.data.distractors import common_words
from s2s.data.ear_words import NUMBER_WORDS, OPERATOR_WORDS, ear_words
from s2s.data.numbers import numbers_in
from s2s.data.sentences import read_aloud
from s2s.data.speech import render_speech


def test_read_aloud_says_in_words_the_numbers_it_writes_in_digits():
    rng, with_numbers, with_times = random.Random(0), 0, 0
    for _ in range(500):
        said, written = read_aloud(rng)
        digits = [int(n) for n in re.findall(r"\d+", written)]
        assert [abs(n) for n in numbers_in(said)] == digits, (said, written)  # a word before one may be "negative"
        assert not re.search(r"\d", said), said
        assert said.split()[-1][-1] in ".?" and len(said.split()) >= 3
        tokens = written[:-1].split()
        assert not any(a[0].isdigit() and b[0].isdigit() for a, b in zip(tokens, tokens[1:])), written
        with_numbers += bool(digits)
        with_times += ":" in written
    assert 300 < with_numbers < 500 and with_times > 50  # most lines hold a number, some a clock time


def test_read_aloud_is_spelt_in_the_ears_alphabet_and_repeats_from_a_seed():
    labels = WrittenLabels()
    lines = [read_aloud(random.Random(f"line {i}"))[1] for i in range(300)]
    assert all(labels.decode(labels.encode(line)) == line for line in lines)
    assert lines == [read_aloud(random.Random(f"line {i}"))[1] for i in range(300)]
    assert len(set(lines)) == 300


def test_the_ears_words_are_english_beyond_the_grammar_and_never_a_number_or_an_operator():
    """Read aloud, a number word is written in digits and an operator as its symbol: the list holds neither,
    or the ear would learn two spellings of one sound."""
    words = ear_words()
    assert len(words) == len(set(words)) == 10_000
    assert all(re.fullmatch(r"[a-z]+", word) for word in words)
    assert not set(words) & (NUMBER_WORDS | OPERATOR_WORDS)
    drawn = {word.lower() for i in range(300) for word in re.findall(r"[A-Za-z]+", read_aloud(random.Random(i))[1])}
    assert len(drawn & set(words) - set(common_words())) > 500  # far more English than the distractors' words


def test_read_aloud_corpus_rows_carry_the_written_text(tmp_path):
    plain = json.loads(render_speech(tmp_path / "plain", 2, seed=1, workers=1).read_text().splitlines()[0])
    manifest = render_speech(tmp_path / "read", 2, seed=1, workers=1, read_aloud_text=True)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert "written" not in plain
    assert [(row["text"], row["written"]) for row in rows] == [read_aloud(random.Random(f"1:train:{i}:read-aloud"))
                                                               for i in range(2)]
    assert all(not voices.is_held_out(row["voice"]) and (tmp_path / "read" / row["audio"]).stat().st_size > 1000
               for row in rows)


def test_data_speech_read_aloud_from_the_command_line(tmp_path, capsys):
    from s2s.cli import main

    main(["data", "speech", "--out", str(tmp_path / "ears"), "--n", "2", "--seed", "4", "--read-aloud"])
    manifest = tmp_path / "ears" / "manifest.jsonl"
    assert capsys.readouterr().out.strip() == str(manifest)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [(row["text"], row["written"]) for row in rows] == [read_aloud(random.Random(f"4:train:{i}:read-aloud"))
                                                               for i in range(2)]
