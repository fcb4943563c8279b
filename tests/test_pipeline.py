"""S2SPipeline and `s2s reply`, tiny: a random LM saved and loaded, spoken and written questions, one-line errors."""
import gzip
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch

import s2s.pipeline
from s2s import audio
from s2s.cli import main
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.lm.batching import tokenize
from s2s.lm.generate import build_prompt
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.speculate import BREAK
from s2s.lm.text_tokenizer import train_text_tokenizer
from s2s.lm.tools import answer_from_thought
from s2s.pipeline import JSON_FIELDS, S2SPipeline, SpokenReply

K, C, HOP, RATE = 2, 16, 320, 16000
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 2048}
TEXTS = [{"question": "what is twelve times three", "question_written": "What is 12 × 3?",
          "thought": "12 × 3 = 36.\nSo the answer is 36.", "reply": "The answer is thirty-six."},
         {"question": "what time is it", "question_written": "What time is it?",
          "thought": "9:30 + 15 minutes = 9:45.\nSo the answer is 9:45.", "reply": "It is nine forty-five."}]
CAPS = {"max_thought_tokens": 12, "max_reply_tokens": 6, "max_speech_frames": 10}


def ban_eot(model: SpeechReasoningLM) -> SpeechReasoningLM:
    """A random model may end its speech at once; this one never ends it before the frame cap forces <eot>."""
    bias = torch.zeros(model.vocab.size)
    bias[model.vocab.eot] = -1e4  # finite: where <eot> is the only legal id it must still win
    model.backbone.get_output_embeddings().register_forward_hook(lambda module, args, out: out + bias)
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1,
                                       decoder_lookahead_frames=0))
    codec_dir = str(save_net(net.eval(), root / "codec"))
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in TEXTS))
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(root / "tokenizer")
    lm = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(root / "tokenizer"), codec=codec_dir)
    return str(lm.save_pretrained(root / "model"))


@pytest.fixture(scope="module")
def pipeline(model_dir) -> S2SPipeline:
    loaded = S2SPipeline.from_pretrained(model_dir)
    ban_eot(loaded.model)
    return loaded


@pytest.fixture
def loads_without_eot(monkeypatch):
    """`s2s reply --ckpt` loads its own model: give it the same <eot> ban."""
    load = SpeechReasoningLM.from_pretrained.__func__
    monkeypatch.setattr(SpeechReasoningLM, "from_pretrained",
                        classmethod(lambda cls, folder, **options: ban_eot(load(cls, folder, **options))))


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory, make_speech) -> str:
    """Half a second of stereo speech at 22.05 kHz: the pipeline takes any rate and channels."""
    path = tmp_path_factory.mktemp("question") / "question.wav"
    return str(audio.save(path, make_speech(0.5, 22050, channels=2), 22050))


def check_reply(reply: SpokenReply, frames: int) -> None:
    assert isinstance(reply.thought, str) and isinstance(reply.reply_text, str)
    assert reply.sample_rate == RATE and reply.waveform.shape == (1, frames * HOP)
    timings = reply.timings
    assert set(timings) == {"ttfa_ms", "total_ms", "rtf", "hear_ms", "think_ms", "ttfa_stages_ms"}
    assert 0 < timings["ttfa_ms"] <= timings["total_ms"]
    stages = timings["ttfa_stages_ms"]  # the stages of the wait add up to it, in the order they happened
    assert list(stages)[0] == "hearing and prompt ids" and list(stages)[-1] == "decoder step"
    assert all(ms >= 0 for ms in stages.values())
    assert sum(stages.values()) == pytest.approx(timings["ttfa_ms"], abs=0.1)
    assert timings["rtf"] == pytest.approx(timings["total_ms"] / 1000 / (frames * HOP / RATE), rel=0.01)
    assert list(reply.to_json()) == list(JSON_FIELDS)
    assert json.loads(json.dumps(reply.to_json())) == reply.to_json()


# ---------------------------------------------------------------------- the pipeline
def test_spoken_question_gives_a_reply_and_a_wav_at_the_codec_rate(pipeline, question_wav, tmp_path):
    out = tmp_path / "reply.wav"
    reply = pipeline(audio=question_wav, out=out, **CAPS)
    check_reply(reply, CAPS["max_speech_frames"])
    assert reply.audio == str(out)
    written, rate = audio.load(out)
    assert rate == RATE and written.shape == reply.waveform.shape
    assert torch.allclose(written, reply.waveform.clamp(-1, 1), atol=1 / 16384)  # 16-bit PCM


def test_written_question_and_a_waveform_question(pipeline, make_speech):
    by_text = pipeline(text="What is 12 × 3?", **CAPS)
    check_reply(by_text, CAPS["max_speech_frames"])
    assert by_text.audio is None  # no `out`: nothing written
    by_wave = pipeline(audio=make_speech(0.6, 8000)[0], sample_rate=8000, seed=1, temperature=1.0, **CAPS)
    check_reply(by_wave, CAPS["max_speech_frames"])


def test_prompt_is_codec_tokens_or_text_ids_and_stream_gives_the_generate_events(pipeline, question_wav):
    model = pipeline.model
    text_prompt, heard = pipeline.prompt(text="What is 12 × 3?")
    ids = tokenize(model.tokenizer, ["What is 12 × 3?"])[0]
    assert torch.equal(text_prompt, build_prompt(model.format, question_text_ids=ids)) and heard is None
    wav, rate = audio.load(question_wav)
    audio_prompt, heard = pipeline.prompt(audio_wav=wav, sample_rate=rate)
    assert heard is None  # this model has no audio encoder: the question goes in as codec tokens
    speech = model.vocab.is_speech(audio_prompt)
    assert int(speech.sum()) == K * 25 and int(audio_prompt[-1]) == model.vocab.think  # 0.5 s at 50 frames/s
    events = list(pipeline.stream(question_wav, **CAPS))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and "audio" in kinds and kinds.count("done") == 1
    assert {kind for kind in kinds} <= {"thought", "reply_text", "audio", "done"}


def test_reply_never_overwrites_unless_asked(pipeline, tmp_path):
    out = tmp_path / "kept.wav"
    out.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="kept.wav already exists.*overwrite"):
        pipeline(text="What time is it?", out=out, **CAPS)
    assert out.read_bytes() == b"mine"
    assert pipeline(text="What time is it?", out=out, overwrite=True, **CAPS).audio == str(out)
    assert audio.load(out)[1] == RATE


# ---------------------------------------------------------------------- s2s reply
def test_reply_json_prints_exactly_one_object(model_dir, question_wav, tmp_path, capsys, loads_without_eot):
    out = tmp_path / "answer.wav"
    main(["reply", question_wav, "--ckpt", model_dir, "--out", str(out), "--json", "--speculate", "3"])
    stdout = capsys.readouterr().out
    data = json.loads(stdout)  # one object and nothing else, or this fails
    assert list(data) == list(JSON_FIELDS) and stdout.count("\n") == 1
    assert data["audio"] == str(out) and audio.load(out)[1] == RATE
    assert 0 < data["timings"]["ttfa_ms"] <= data["timings"]["total_ms"]


def test_reply_prints_a_readable_summary_into_reply_wav(model_dir, tmp_path, monkeypatch, capsys, loads_without_eot):
    monkeypatch.chdir(tmp_path)
    main(["reply", "--text", "What time is it?", "--ckpt", model_dir, "--temperature", "0.8", "--seed", "3"])
    printed = capsys.readouterr().out
    for label in ("thought:", "reply  :", "answer :", "audio  : reply.wav", "timings: first audio"):
        assert label in printed
    assert audio.load(tmp_path / "reply.wav")[1] == RATE
    with pytest.raises(SystemExit) as exit_info:  # the default --out exists now
        main(["reply", "--text", "What time is it?", "--ckpt", model_dir])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "reply.wav already exists" in err and "--overwrite" in err
    assert "\n" not in err


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "Traceback" not in err, err
    return err


def test_reply_user_errors_are_one_line(model_dir, question_wav, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(s2s.pipeline, "DEFAULT_MODEL", tmp_path / "not-installed")
    ckpt = ["--ckpt", model_dir]
    assert "no default model is installed at" in one_line_error(["reply", question_wav], capsys)
    assert "--ckpt" in one_line_error(["reply", question_wav], capsys)
    assert "model folder not found" in one_line_error(["reply", question_wav, "--ckpt", str(tmp_path / "nope")], capsys)
    assert "not found: missing.wav" in one_line_error(["reply", "missing.wav", *ckpt], capsys)
    assert "exactly one question" in one_line_error(["reply", question_wav, "--text", "hi", *ckpt], capsys)
    assert "exactly one question" in one_line_error(["reply", *ckpt], capsys)
    assert "--speculate: expected a whole number >= 0" in one_line_error(["reply", question_wav, "--speculate", "-1",
                                                                          *ckpt], capsys)
    assert "--speech-prior: expected a number from 0 to 1" in one_line_error(
        ["reply", question_wav, "--speech-prior", "1.5", *ckpt], capsys)
    long_wav = audio.save(tmp_path / "long.wav", torch.zeros(1, 31 * 8000), 8000)
    assert "at most 30 s" in one_line_error(["reply", str(long_wav), *ckpt], capsys)
    sf.write(tmp_path / "empty.wav", torch.zeros(0, 1).numpy(), 8000)
    assert "no samples" in one_line_error(["reply", str(tmp_path / "empty.wav"), *ckpt], capsys)
    assert not (tmp_path / "reply.wav").exists()


def test_pipeline_errors(pipeline, question_wav):
    with pytest.raises(ValueError, match="exactly one question"):
        pipeline(audio=question_wav, text="hi")
    with pytest.raises(ValueError, match="exactly one question"):
        pipeline()
    with pytest.raises(ValueError, match="sample_rate"):
        pipeline(audio=torch.zeros(800))
    with pytest.raises(ValueError, match="empty"):
        pipeline(text="  ")


# ---------------------------------------------------------------------- s2s lm phrases
def test_lm_phrases_counts_drafts_into_the_model_folder_that_loading_and_saving_keep(model_dir, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    manifest = str(Path(model_dir).parent / "manifest.jsonl")
    main(["lm", "phrases", str(folder), "--manifest", manifest, "--min-count", "1"])
    assert capsys.readouterr().out.strip() == str(folder / "phrases.json.gz")
    model = SpeechReasoningLM.from_pretrained(folder)
    thought = tokenize(model.tokenizer, [TEXTS[0]["thought"]])[0]
    assert model.phrases.next_id([BREAK, *thought[:2]]) == thought[2]  # the corpus's thought, drafted
    again = SpeechReasoningLM.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert again.phrases.next_ids == model.phrases.next_ids
    assert SpeechReasoningLM.from_pretrained(model_dir).phrases is None  # a folder without one: no drafts
    capsys.readouterr()  # the loads' progress bars
    assert "already exists" in one_line_error(["lm", "phrases", str(folder), "--manifest", manifest], capsys)
    err = one_line_error(["lm", "phrases", str(tmp_path / "nowhere"), "--manifest", manifest], capsys)
    assert "is not a saved SpeechReasoningLM" in err
    no_thoughts = tmp_path / "questions.jsonl"
    no_thoughts.write_text(json.dumps({"question": "what time is it"}) + "\n")
    err = one_line_error(["lm", "phrases", str(folder), "--manifest", str(no_thoughts), "--overwrite"], capsys)
    assert "no rows" in err and "thought" in err
    with gzip.open(folder / "phrases.json.gz", "rt") as f:  # counted with another tokenizer
        table = json.load(f)
    with gzip.open(folder / "phrases.json.gz", "wt") as f:
        json.dump({**table, "text_vocab_size": table["text_vocab_size"] + 1}, f)
    with pytest.raises(ValueError, match="count it again with s2s lm phrases"):
        SpeechReasoningLM.from_pretrained(folder)



def test_the_shipped_while_thinking_model_starts_speaking_before_its_thought_ends():
    """s2s-reasoner-tiny-while-thinking answers the bundled question (14), and its reply opens while the thought
    goes on: audio comes before the thought's last piece, and the words said by then hold no number."""
    from s2s.audio import read_question
    from s2s.data.numbers import says_a_number
    from s2s.demo import EXAMPLE_QUESTION

    folder = Path(__file__).resolve().parents[1] / "s2s" / "assets" / "models" / "s2s-reasoner-tiny-while-thinking"
    pipeline = S2SPipeline.from_pretrained(folder)
    wav, rate, _ = read_question(EXAMPLE_QUESTION, None, None, pipeline.max_question_seconds)
    events = list(pipeline.stream(wav, rate, None))
    kinds = [kind for kind, _ in events]
    last_thought = max(i for i, kind in enumerate(kinds) if kind == "thought")
    assert kinds.index("audio") < last_thought
    said_early = "".join(value for kind, value in events[:last_thought] if kind == "reply_text")
    assert said_early.split() and not any(says_a_number(word) for word in said_early.split())
    assert answer_from_thought(events[-1][1].thought) == "14"


def test_demo_runs_a_model_that_hears_through_codec_tokens(model_dir, tmp_path, capsys, loads_without_eot):
    """A model without an ear has no hearing time to print."""
    main(["demo", "--ckpt", model_dir, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "timings : first audio" in out and "hearing" not in out.split("timings :")[1]
