"""A CTC ear on Whisper's frozen encoder states: the front end, one encoder pass per question, the cache training
reads, and the ear saved beside another in one model folder."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from s2s.asr import whisper
from s2s.asr.data import SpeechTextDataset, collate
from s2s.asr.features import mask_states
from s2s.asr.model import ConformerConfig, StatesCTC
from s2s.asr.module import RecognizerModule
from s2s.asr.recognizer import CTCRecognizer
from s2s.asr.whisper_states import cached_states, encoder_width
from s2s.data import espeak
from s2s.hearing.ctc import CTCHearing
from s2s.hearing.ears import load_hearing
from s2s.hearing.heard import to_16k
from s2s.hearing.whisper import WhisperEar
from s2s.lm.text_tokenizer import load_text_tokenizer
from s2s.pipeline import DEFAULT_MODEL


def spoken(text: str) -> torch.Tensor:
    samples, rate = espeak.render(text, voice="en-us")
    return to_16k(torch.from_numpy(samples.copy())[None], rate)


def small_recognizer() -> CTCRecognizer:
    return CTCRecognizer("written", dim=32, layers=1, heads=2, ff_mult=2, frontend="whisper-tiny.en")


def test_the_front_end_is_named_by_a_whisper_size_or_log_mel():
    assert encoder_width("whisper-tiny.en") == 384 and encoder_width("openai/whisper-base") == 512
    with pytest.raises(ValueError, match="give log-mel or a Whisper size"):
        CTCRecognizer("written", frontend="mfcc")


def test_the_head_reads_two_frames_a_step():
    net = StatesCTC(ConformerConfig(dim=32, layers=1, heads=2, ff_mult=2, num_labels=9), width=384)
    hidden, logits, lengths = net(torch.randn(2, 11, 384), torch.tensor([11, 7]))
    assert hidden.shape == (2, 6, 32) and logits.shape == (2, 6, 9) and lengths.tolist() == [6, 4]


def test_masking_zeroes_stretches_and_channels_and_keeps_the_rest():
    torch.manual_seed(0)
    states = torch.ones(4, 50, 384)
    masked = mask_states(states, torch.tensor([50, 50, 30, 10]))
    assert masked.shape == states.shape and 0.5 < masked.mean() < 1.0
    assert set(masked.unique().tolist()) <= {0.0, 1.0}


def test_the_whisper_ear_and_the_head_share_one_encoder_pass():
    ear = WhisperEar("whisper-tiny.en")
    other = WhisperEar("whisper-tiny.en", prompt=None)
    assert other.model is ear.model  # one loaded model per folder
    wav = spoken("What is 21 plus 4?")
    samples = wav.numpy()
    first = whisper.encode(ear.model, samples)
    assert whisper.encode(other.model, samples) is first  # the same waveform is encoded once
    assert whisper.encode(ear.model, samples[:-160]) is not first
    states = ear.states(wav)
    assert states.shape == (whisper.encoder_frames(wav.shape[-1]), 384) and states.dtype == torch.float32


def test_a_recogniser_on_whisper_states_saves_and_loads_its_front_end(tmp_path):
    torch.manual_seed(0)
    recognizer = small_recognizer().eval()
    recognizer.save_pretrained(tmp_path / "ear")
    loaded = CTCRecognizer.from_pretrained(tmp_path / "ear")
    assert loaded.frontend == "whisper-tiny.en"
    states, lengths = torch.randn(1, 20, 384), torch.tensor([20])
    assert torch.allclose(loaded.from_features(states, lengths)[1], recognizer.from_features(states, lengths)[1])
    wav = spoken("Seven plus two.")
    hidden, log_probs, frames = loaded(wav[None], torch.tensor([wav.shape[-1]]))
    assert int(frames[0]) == (whisper.encoder_frames(wav.shape[-1]) + 1) // 2 == log_probs.shape[1]


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "wavs").mkdir()
    rows = []
    for i, text in enumerate(["What is 3 + 4?", "Name 9."]):
        samples, rate = espeak.render(text.replace("+", "plus"), voice="en-us")
        sf.write(tmp_path / "wavs" / f"{i}.wav", samples, rate)
        rows.append({"id": str(i), "question_audio": f"wavs/{i}.wav", "question_written": text})
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path / "manifest.jsonl"


def test_training_reads_states_encoded_once_and_cached(corpus, monkeypatch):
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    states = cached_states(corpus, rows, "question_audio", "whisper-tiny.en")
    assert len(states) == 2 and states[0].dtype == torch.float16 and states[0].shape[1] == 384
    assert len(list(corpus.parent.glob("whisper-states-whisper-tiny.en-question_audio-*.pt"))) == 1

    def no_encoder(*args):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(whisper, "encode", no_encoder)
    dataset = SpeechTextDataset(corpus, [("question_audio", "question_written")], frontend="whisper-tiny.en")
    batch = collate([dataset[0], dataset[1]])
    assert torch.equal(batch["states"][0, :states[0].shape[0]], states[0].float())
    assert batch["lengths"].tolist() == [s.shape[0] for s in states] and batch["text"][1] == "Name 9."
    module = RecognizerModule("written", dim=32, layers=1, heads=2, ff_mult=2, frontend="whisper-tiny.en")
    assert torch.isfinite(module.training_step(batch, 0))
    other = RecognizerModule("written", dim=32, layers=1, heads=2, ff_mult=2)
    with pytest.raises(ValueError, match="set data.init_args.frontend"):
        other.training_step(batch, 0)


def test_an_ear_on_whisper_states_hears_the_speech_as_it_is_and_keeps_its_own_folder(tmp_path):
    tokenizer = load_text_tokenizer(DEFAULT_MODEL)
    seen = []
    recognizer = small_recognizer()
    forward = recognizer.forward
    recognizer.forward = lambda wav, n, augment=False: seen.append(wav.shape[-1]) or forward(wav, n)
    wav = spoken("Four.")
    CTCHearing(recognizer, tokenizer).hearing(wav[None], 16000)
    assert seen == [wav.shape[-1]]  # no pause added: Whisper adds its own, and its pass is shared
    small_recognizer().save_pretrained(tmp_path / "hearing-whisper")
    CTCRecognizer("written", dim=32, layers=1, heads=2).save_pretrained(tmp_path / "hearing")
    cross_checked = load_hearing([str(tmp_path / "hearing"), str(tmp_path / "hearing-whisper")], tokenizer,
                                 cross_check=[1.0, 1.0])
    assert [ear.name for ear in cross_checked.ears] == ["hearing", "hearing-whisper"]
    assert cross_checked.save(tmp_path / "saved", half=True) == ["hearing", "hearing-whisper"]
    assert CTCRecognizer.from_pretrained(tmp_path / "saved" / "hearing-whisper").frontend == "whisper-tiny.en"
    assert load_hearing(str(tmp_path / "hearing-whisper"), tokenizer).name == "hearing"  # one ear: the usual folder
    (tmp_path / "other").mkdir()
    small_recognizer().save_pretrained(tmp_path / "other" / "hearing")
    with pytest.raises(ValueError, match="would be saved in one folder"):
        load_hearing([str(tmp_path / "hearing"), str(tmp_path / "other" / "hearing")], tokenizer, cross_check=[1, 1])
    assert np.isfinite(cross_checked.listen(wav[None], 16000).confidence)
