"""Style prompts (a reference voice and style words), reading words aloud, styled replies through the voice
converter, and `s2s style eval`: layout and errors."""
import json

import pytest
import torch

from s2s import audio
from s2s.asr.recognizer import CTCRecognizer
from s2s.codecs import load_codec
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.lm.batching import tokenize
from s2s.lm.formats import STYLE, VOICE
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import train_text_tokenizer
from s2s.pipeline import S2SPipeline
from s2s.style.prompt import VOICE_MAX_SECONDS, read_voice, style_words

K, C = 2, 16
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 4096}
TEXTS = [{"question_written": "What is 2 + 2?", "thought": "2 + 2 = 4.\nSo the answer is 4.", "reply": "It is four.",
          "reply_style": "fast low"}]
CAPS = {"max_thought_tokens": 8, "max_reply_tokens": 16, "max_speech_frames": 12}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("style")
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1, decoder_lookahead_frames=0))
    codec = str(save_net(net.eval(), root / "codec"))
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in TEXTS))
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(root / "tokenizer")
    models = {}
    for name in ("word_aligned", "think_then_speak", "text_guided"):
        lm = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(root / "tokenizer"), codec=codec, format=name)
        models[name] = str(lm.save_pretrained(root / name))
    judge = CTCRecognizer(labels="chars", dim=16, layers=1, heads=2, ff_mult=2, conv_kernel=3, subsample_channels=8)
    return {**models, "judge": str(judge.save_pretrained(root / "judge")), "root": str(root)}


def prefer_speech(model: SpeechReasoningLM) -> SpeechReasoningLM:
    """A random model may never speak; this one prefers speech wherever it is allowed (the caps still end it)."""
    bias = torch.zeros(model.vocab.size)
    bias[model.vocab.speech_range()] = 20.0
    model.backbone.get_output_embeddings().register_forward_hook(lambda module, args, out: out + bias)
    return model


@pytest.fixture(scope="module")
def pipeline(folders) -> S2SPipeline:
    loaded = S2SPipeline.from_pretrained(folders["word_aligned"], converter=None)  # style in the prompt
    prefer_speech(loaded.model)
    return loaded


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_wav) -> str:
    return str(audio.save(tmp_path_factory.mktemp("ref") / "ref.wav", make_wav(6.0, 22050)[0], 22050))


def test_style_words_are_canonical_and_refuse_what_no_model_learned():
    assert style_words("low fast") == style_words(["fast", "low"]) == style_words("fast,low") == "fast low"
    assert style_words("normal high") == "high" and style_words(None) == style_words("normal") == ""
    with pytest.raises(ValueError, match="unknown style 'loud'; choose from slow, fast, low, high"):
        style_words("loud")
    with pytest.raises(ValueError, match="both 'slow' and 'fast'"):
        style_words("slow fast")


def test_a_voice_prompt_is_checked_and_cut_to_its_first_seconds(reference, make_wav):
    wav, rate = read_voice(reference)
    assert rate == 22050 and wav.shape[-1] == round(VOICE_MAX_SECONDS * rate)
    with pytest.raises(audio.AudioError, match="0.50 s long; give at least 1 s"):
        read_voice(make_wav(0.5, 16000)[0, 0], 16000)
    with pytest.raises(audio.AudioError, match="silent"):
        read_voice(torch.zeros(32000), 16000)
    with pytest.raises(ValueError, match="waveform voice prompt needs its sample_rate"):
        read_voice(torch.ones(32000))
    with pytest.raises(audio.AudioError, match="sample_rate must be a positive integer"):
        read_voice(make_wav(2.0, 16000)[0, 0], 0)
    with pytest.raises(audio.AudioError, match="7 Hz is too low for speech"):  # a rate no resampling can save
        read_voice(torch.randn(14), 7)


def test_the_prompt_holds_the_style_words_then_the_reference_codes(pipeline, reference):
    model = pipeline.model
    prompt, _ = pipeline.prompt(text="What is 2 + 2?", voice=reference, style="low fast")
    turn = model.format.parse(torch.cat([prompt, torch.tensor([model.vocab.end_think, model.vocab.eot])]))
    assert turn.style_ids == tokenize(model.tokenizer, ["fast low"])[0]
    assert turn.voice_codes.shape == (K, round(VOICE_MAX_SECONDS * 50))  # the first 4 s at 50 frames a second
    style_only, _ = pipeline.prompt(text="What is 2 + 2?", style="slow")
    ids = style_only.tolist()
    assert model.vocab.voice in ids and not model.vocab.is_speech(style_only).any()
    plain, _ = pipeline.prompt(text="What is 2 + 2?")
    assert model.vocab.voice not in plain.tolist()
    built = model.format.build(turn)
    assert (built.segment == STYLE).sum() == len(turn.style_ids) and (built.segment == VOICE).sum() == K * 200


def test_reading_aloud_speaks_exactly_the_given_words(pipeline, folders, reference):
    for seed in range(3):
        reply = pipeline(say="It is forty two.", voice=reference, style="slow", seed=seed, temperature=1.0, **CAPS)
        assert reply.thought == "" and reply.reply_text == "It is forty two."
        assert reply.waveform.shape[-1] == CAPS["max_speech_frames"] * 320  # it spoke, up to the frame cap
    with pytest.raises(ValueError, match="nothing to say"):
        pipeline(say="  ")
    # think-then-speak reads aloud too: the whole text is written for it, then it speaks.
    spoken = prefer_speech(S2SPipeline.from_pretrained(folders["think_then_speak"]).model)
    reply = S2SPipeline(spoken, load_codec(spoken.init_args["codec"]))(say="It is forty two.", **CAPS)
    assert reply.thought == "" and reply.reply_text == "It is forty two." and reply.waveform.shape[-1] > 0
    with pytest.raises(ValueError, match="needs a word_aligned, think_then_speak or word_timed model, not text_guided"):
        S2SPipeline.from_pretrained(folders["text_guided"])(say="It is four.")


def test_with_a_converter_the_reply_is_answered_in_the_models_voice_then_converted(pipeline, converter, reference):
    from s2s.style.converter import RATE_STRETCH

    converting = S2SPipeline(pipeline.model, pipeline.codec, converter=converter)
    assert converting.voice_converter is converter
    prompt, _ = converting.prompt(text="What is 2 + 2?")
    events = list(converting.stream(text="What is 2 + 2?", voice=reference, style="slow", **CAPS))
    kinds = [kind for kind, _ in events]
    assert kinds.count("audio") == 1 and kinds[-2:] == ["audio", "done"]  # the whole reply, converted at once
    plain = converting(text="What is 2 + 2?", **CAPS)  # no voice or style: the model's own speech, untouched
    assert torch.equal(plain.waveform, pipeline(text="What is 2 + 2?", **CAPS).waveform)
    slow = events[-2][1]
    assert slow.shape[-1] == pytest.approx(plain.waveform.shape[-1] * RATE_STRETCH["slow"], rel=0.1)
    restyled = converting.restyle(plain, voice=reference, style="slow")
    assert torch.equal(restyled.waveform, slow) and restyled.thought == plain.thought
    with pytest.raises(ValueError, match="unknown style 'loud'"):
        converting.stream(text="What is 2 + 2?", style="loud")
    with pytest.raises(ValueError, match="has no voice converter"):
        pipeline.restyle(plain, voice=reference)


def test_style_eval_reports_every_figure_against_chance(pipeline, converter, folders, styled_corpus, tmp_path):
    from s2s.eval.reasoning import load_judge
    from s2s.style.evaluate import evaluate_style, format_style_figures
    from s2s.style.speaker import SpeakerClassifier

    manifest = styled_corpus(tmp_path, rows=4)
    speaker = SpeakerClassifier(voices=["en+grandpa", "en-us+f3", "en+Annie"], channels=16, dim=8).eval()
    judge = load_judge(folders["judge"])
    caps = {**CAPS, "max_speech_frames": 30}  # 0.6 s: long enough to classify (at least half a second)
    converting = S2SPipeline(pipeline.model, pipeline.codec, converter=converter)
    figures = evaluate_style(converting, speaker, judge, manifest, limit=2, styles=("fast", "high"), **caps)
    assert figures["n"] == 2 and figures["chance"] == pytest.approx(1 / 3)
    assert set(figures["style_followed"]) == {"fast", "high"}
    assert figures["style_followed"]["fast"] == 1.0  # the converter's fast is a shorter timeline, always
    for name in ("voice_accuracy", "conversion_voice_accuracy", "style_followed_all"):
        assert 0 <= figures[name] <= 1 and len(figures[f"{name}_ci95"]) == 2
    assert figures["conversion_wer"] >= 0 and figures["source_wer"] >= 0 and -1 <= figures["voice_similarity"] <= 1
    assert "conversion WER" in format_style_figures(figures)
    prompted = evaluate_style(pipeline, speaker, judge, manifest, limit=1, styles=("slow",), **caps)
    assert prompted["conversion_voice_accuracy"] is None and "conversion WER" not in format_style_figures(prompted)
    with pytest.raises(ValueError, match="does not know the voices"):
        evaluate_style(pipeline, SpeakerClassifier(voices=["a", "b"], channels=16, dim=8), judge, manifest)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(ValueError, match="no rows with a voice prompt"):
        evaluate_style(pipeline, speaker, judge, styled_corpus(bare, rows=4, prompts_for=()))


def test_style_eval_cli_refuses_a_missing_manifest_in_one_line(tmp_path, capsys):
    from s2s.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["style", "eval", "--manifest", str(tmp_path / "missing.jsonl")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "missing.jsonl" in err and "\n" not in err, err
