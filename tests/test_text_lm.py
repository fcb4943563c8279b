"""The character LM and the CTC beam search fused with it: probabilities, the beam against greedy on hand-made
frames, saving beside a recogniser, `s2s asr lm`, and the LM's hearing decoding through it."""
import gzip
import json
import math

import pytest
import torch

from s2s.asr.beam import beam_segments
from s2s.asr.char_lm import END, FILE_NAME, START, CharNgramLM
from s2s.asr.labels import CHARS, WRITTEN
from s2s.asr.recognizer import CTCRecognizer, build_for_recognizer, greedy_segments
from s2s.cli import main

TINY = {"dim": 32, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}
TEXTS = ["forty two", "forty one", "the answer is forty", "four oh five"]


def frames(rows: list[dict[str, float]], alphabet: str = "ab") -> torch.Tensor:
    """Log-probs [F, 1 + len(alphabet)] from per-frame {label char or "_" (blank): probability}; the rest shared."""
    out = []
    for row in rows:
        rest = (1.0 - sum(row.values())) / (len(alphabet) + 1 - len(row))
        out.append([row.get(c, rest) for c in "_" + alphabet])
    return torch.tensor(out).clamp(min=1e-9).log()


# ---------------------------------------------------------------------- the LM
@pytest.mark.parametrize("history", ["", "fort", "forty tw", "zzz q", "x" * 30])
def test_probabilities_over_the_alphabet_and_the_end_sum_to_one(history):
    lm = CharNgramLM.from_texts(TEXTS, CHARS, order=5, min_count=1)
    total = sum(math.exp(lm.log_prob(history, c)) for c in CHARS + END)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_seen_spellings_are_likelier_and_long_contexts_back_off():
    lm = CharNgramLM.from_texts(TEXTS, CHARS, order=5, min_count=1)
    assert lm.log_prob("fort", "y") > lm.log_prob("fort", "u") + 2  # "forty", never "fortu"
    assert lm.score("forty two") > lm.score("fourty two")
    assert lm.log_prob("forty tw", "o") > math.log(1 / (len(CHARS) + 1))
    # An order-1 model is the characters' frequencies: no context at all.
    unigram = CharNgramLM.from_texts(["aab"], "ab", order=1)
    assert unigram.log_prob("b", "a") == unigram.log_prob("", "a") > unigram.log_prob("", "b")


@pytest.mark.parametrize("history", ["", "It is 2:1", "What is 47 + ", "x" * 30])
def test_digits_as_one_class_say_where_a_number_goes_never_which(history, tmp_path):
    """Counted as one class, every digit is as likely as any other after any context, the probabilities still
    sum to one, a number's place is still known, and the class survives saving."""
    texts = ["It is 2:10.", "It is 2:10.", "It is 2:15.", "What is 47 + 8?"]
    plain = CharNgramLM.from_texts(texts, WRITTEN, order=6, min_count=1)
    classed = CharNgramLM.from_texts(texts, WRITTEN, order=6, min_count=1, digits="0123456789")
    assert sum(math.exp(classed.log_prob(history, c)) for c in WRITTEN + END) == pytest.approx(1.0, abs=1e-9)
    digits = {classed.log_prob(history, d) for d in "0123456789"}
    assert max(digits) - min(digits) < 1e-12
    assert plain.log_prob("It is 2:1", "0") > plain.log_prob("It is 2:1", "1") + 1  # the corpus's own minute
    assert classed.score("It is 2:11.") == pytest.approx(classed.score("It is 2:10."))
    assert classed.log_prob("It is 2:1", "7") > classed.log_prob("It is 2:1", "x") + 1  # a digit belongs here
    loaded = CharNgramLM.load(classed.save(tmp_path / FILE_NAME))
    assert loaded.digits == "0123456789" and loaded.score("It is 3:45.") == pytest.approx(classed.score("It is 3:45."))
    with pytest.raises(ValueError, match="digits .* must be characters of the alphabet"):
        CharNgramLM.from_texts(["ab"], "ab", digits="0123456789")


def test_text_outside_the_alphabet_is_refused():
    with pytest.raises(ValueError, match="outside the alphabet: 'X'"):
        CharNgramLM.from_texts(["forty X"], CHARS)
    with pytest.raises(ValueError, match="at least one text"):
        CharNgramLM.from_texts([], CHARS)


def test_save_and_load_keep_the_probabilities_and_the_fusion_settings(tmp_path):
    lm = CharNgramLM.from_texts(TEXTS, CHARS, order=6, beam=4, alpha=0.3, beta=0.7)
    path = lm.save(tmp_path / FILE_NAME)
    loaded = CharNgramLM.load(path)
    assert (loaded.order, loaded.beam, loaded.alpha, loaded.beta) == (6, 4, 0.3, 0.7)
    for text in ("forty two", "four oh nine", "qq"):
        assert loaded.score(text) == pytest.approx(lm.score(text))
    with pytest.raises(FileExistsError, match="already exists"):
        lm.save(path)
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(b'{"order": 3}'))
    with pytest.raises(ValueError, match="not a character n-gram model") as error:
        CharNgramLM.load(tmp_path / "bad.json.gz")
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------- the beam
def test_without_an_lm_the_beam_reads_clear_frames_as_greedy_does():
    clear = frames([{"a": 0.9}, {"a": 0.9}, {"_": 0.9}, {"a": 0.9}, {"b": 0.9}, {"_": 0.9}])
    greedy = greedy_segments(clear, 6)
    assert greedy == [(1, 0, 2), (1, 3, 4), (2, 4, 5)]  # "aab": a blank splits the a's
    # The same labels from the same frames; each run ends where the next begins (the last at the end).
    assert beam_segments(clear, 6, "ab") == [(1, 0, 3), (1, 3, 4), (2, 4, 6)]
    assert beam_segments(clear, 0, "ab") == []


def test_the_lm_decides_where_the_sound_is_unsure_and_never_where_it_is_clear():
    lm = CharNgramLM.from_texts(["ab"] * 20 + ["aa"], "ab", order=3, min_count=1)
    unsure = frames([{"a": 0.9}, {"_": 0.9}, {"a": 0.55, "b": 0.4}])
    assert [c for c, _, _ in beam_segments(unsure, 3, "ab")] == [1, 1]  # the sound alone: "aa"
    assert [c for c, _, _ in beam_segments(unsure, 3, "ab", lm, alpha=1.0, beta=0.0)] == [1, 2]  # "ab"
    clear = frames([{"a": 0.9}, {"_": 0.9}, {"a": 0.98}])
    assert [c for c, _, _ in beam_segments(clear, 3, "ab", lm, alpha=1.0, beta=0.0)] == [1, 1]
    with pytest.raises(ValueError, match=r"log-probs \[frames, 3\]"):
        beam_segments(torch.zeros(3, 5), 3, "ab")


def test_runs_start_where_their_label_first_sounds_and_end_where_the_next_starts():
    lm = CharNgramLM.from_texts(["ab"], "ab", order=2)
    runs = beam_segments(frames([{"_": 0.9}, {"a": 0.9}, {"a": 0.9}, {"_": 0.9}, {"b": 0.9}, {"_": 0.9}]), 6, "ab", lm)
    assert runs == [(1, 1, 4), (2, 4, 6)]


# ---------------------------------------------------------------------- beside a recogniser
@pytest.fixture()
def recogniser_dir(tmp_path):
    torch.manual_seed(0)
    return CTCRecognizer(labels="chars", **TINY).eval().save_pretrained(tmp_path / "asr")


def _manifest(tmp_path, rows) -> str:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_folder_with_a_text_lm_decodes_with_it_and_saves_it_again(recogniser_dir, tmp_path):
    manifest = _manifest(tmp_path, [{"question": "What is forty-two?", "reply": "It is ten."}, {"reply": "No."}])
    path = build_for_recognizer(recogniser_dir, [manifest], ["question", "reply"], order=4, beam=3, alpha=2.0)
    assert path == recogniser_dir / FILE_NAME
    loaded = CTCRecognizer.from_pretrained(recogniser_dir)
    assert loaded.text_lm is not None and loaded.text_lm.alpha == 2.0 and loaded.text_lm.order == 4
    # Three texts, normalised as the labels are: "what is forty two", "it is ten", "no".
    assert loaded.text_lm.counts[START * 3] == {"w": 1, "i": 1, "n": 1}
    assert loaded.text_lm.counts["ty"] == {" ": 1} and "rty" not in loaded.text_lm.counts  # seen once: pruned
    wav = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1))
    _, log_probs, lengths = loaded(wav, torch.tensor([8000]))
    fused = loaded.segments(log_probs[0], int(lengths[0]))
    assert fused == beam_segments(log_probs[0], int(lengths[0]), CHARS, loaded.text_lm, 3, 2.0, 1.0)
    assert loaded.transcribe(wav) == [loaded.labels.decode([c for c, _, _ in fused])]
    again = loaded.save_pretrained(tmp_path / "again")
    assert CharNgramLM.load(again / FILE_NAME).score("it is ten") == pytest.approx(loaded.text_lm.score("it is ten"))
    loaded.use_text_lm(None)
    assert loaded.segments(log_probs[0], int(lengths[0])) == greedy_segments(log_probs[0], int(lengths[0]))
    with pytest.raises(ValueError, match="another alphabet"):
        loaded.use_text_lm(CharNgramLM.from_texts(["What is 4?"], WRITTEN))


def test_s2s_asr_lm_writes_the_model_once_and_refuses_to_overwrite(recogniser_dir, tmp_path, capsys):
    manifest = _manifest(tmp_path, [{"question": "Which is larger, five or six?"}])
    main(["asr", "lm", str(recogniser_dir), "--manifest", manifest, "--field", "question", "--order", "3"])
    assert CharNgramLM.load(recogniser_dir / FILE_NAME).order == 3
    assert CharNgramLM.load(recogniser_dir / FILE_NAME).digits == ""
    main(["asr", "lm", str(recogniser_dir), "--manifest", manifest, "--field", "question", "--digit-class",
          "--overwrite"])
    assert CharNgramLM.load(recogniser_dir / FILE_NAME).digits == "0123456789"
    capsys.readouterr()
    for argv, message in [(["--field", "question"], "already exists"),
                          (["--overwrite", "--field", "nothing"], "have any of the fields")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["asr", "lm", str(recogniser_dir), "--manifest", manifest] + argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and message in err and "\n" not in err


def test_the_lms_hearing_cuts_the_fused_transcript_into_tokens(tmp_path):
    from s2s.hearing.ctc import CTCHearing, with_tail_pause
    from s2s.lm.text_tokenizer import train_text_tokenizer

    manifest = _manifest(tmp_path, [{"question_written": f"What is {i} + {i + 1}?"} for i in range(30)])
    tokenizer = train_text_tokenizer(manifest, vocab_size=280)
    torch.manual_seed(0)
    folder = CTCRecognizer(labels="written", **TINY).eval().save_pretrained(tmp_path / "hearing")
    build_for_recognizer(folder, [manifest], ["question_written"], order=4, alpha=3.0, beta=2.0)
    recogniser = CTCRecognizer.from_pretrained(folder)
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(2))
    heard = CTCHearing(recogniser, tokenizer)(wav)[0]
    wav = with_tail_pause(wav, torch.tensor([wav.shape[1]]))[0]  # as the hearing hears it
    transcript = recogniser.transcribe(wav)[0]
    greedy = CTCRecognizer.from_pretrained(folder)
    greedy.use_text_lm(None)
    assert transcript != greedy.transcribe(wav)[0]  # the LM moved the untrained recogniser's guess
    expected = tokenizer(" ".join(transcript.split()) or " ", add_special_tokens=False)["input_ids"]
    assert heard.token_ids[:, 0].tolist() == expected
