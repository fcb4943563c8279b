"""The VAD and the abstention gates: no speech or no question, no answer."""
import pytest
import torch

from s2s.data import espeak
from s2s.eval.metrics import NumbersHeard
from s2s.eval.shortcut import music, tone
from s2s.hearing import abstain
from s2s.hearing.heard import to_16k
from s2s.hearing.vad import DC_OFFSET, MARGIN_SECONDS, has_speech, speech_only, speech_spans
from s2s.pipeline import S2SPipeline


def speech() -> torch.Tensor:
    samples, rate = espeak.render("How many letters are in the word garden?", voice="en-gb-x-rp+f3")
    return to_16k(torch.from_numpy(samples.copy())[None], rate)


def test_vad_finds_speech_and_nothing_in_silence():
    wav = speech()
    spans = speech_spans(wav)
    assert spans and spans[0][0] < 0.5 * 16000 and spans[-1][1] > wav.shape[-1] - 0.6 * 16000
    assert has_speech(wav)
    assert not has_speech(torch.zeros(5 * 16000)) and speech_spans(torch.zeros(1)) == []


def test_the_ears_get_the_speech_alone_without_its_dc_offset():
    g = torch.Generator().manual_seed(0)
    wav = torch.full((16000,), 0.5)
    wav[4000:8000] += torch.randn(4000, generator=g)
    margin = int(MARGIN_SECONDS * 16000)
    cut = speech_only(wav, [(4000, 6000), (7000, 8000)])  # from the first span's start to the last's end
    kept = wav[4000 - margin: 8000 + margin]
    torch.testing.assert_close(cut, kept - kept.mean())
    assert abs(float(cut.mean())) < 1e-6
    assert speech_only(wav, [(0, 100)]).shape[-1] == 100 + margin  # never before the first sample
    whole = speech_only(wav, [])  # no span: all of it, the offset still removed
    assert whole.shape == wav.shape and abs(float(whole.mean())) < 1e-6
    quiet = torch.zeros(16000)  # digital silence around a little speech: an offset too small to be a microphone's
    quiet[4000:8000] = 0.3 * torch.randn(4000, generator=g)
    assert abs(float(quiet.mean())) <= DC_OFFSET and torch.equal(speech_only(quiet, []), quiet)


SOUNDS = {
    "silence": lambda g: torch.zeros(4 * 16000),
    "white noise": lambda g: 0.1 * torch.randn(6 * 16000, generator=g),
    "tone": lambda g: 0.3 * tone(3 * 16000, 16000, g),
    "music": lambda g: 0.2 * music(10 * 16000, 16000, g),
}


@pytest.fixture(scope="module")
def pipeline():
    return S2SPipeline.from_pretrained()


@pytest.mark.parametrize("sound", list(SOUNDS))
def test_no_speech_is_abstained_on(pipeline, sound):
    for seed in range(3):
        wav = SOUNDS[sound](torch.Generator().manual_seed(seed))
        reply = pipeline(wav, 16000)
        assert reply.abstained and reply.answer is None and reply.abstain_reason == abstain.NO_SPEECH
        assert reply.reply_text == abstain.TEXT and reply.waveform.shape[-1] > reply.sample_rate  # said aloud
        assert reply.to_json()["abstained"] is True


def test_a_clip_too_short_for_a_word_is_abstained_on(pipeline):
    for samples in (1, 40, 800):
        reply = pipeline(0.1 * torch.randn(samples), 16000)
        assert reply.abstained and reply.answer is None


def test_a_heard_question_is_answered_not_abstained_on(pipeline):
    reply = pipeline(speech(), 16000)
    assert not reply.abstained and reply.answer == "6" and reply.abstain_reason is None
    assert reply.timings["hear_ms"] > 0 and reply.timings["ttfa_ms"] >= reply.timings["hear_ms"]


def test_silence_around_a_question_is_not_heard(pipeline):
    """A recording started early and stopped late: two seconds of silence either side of the question cost the
    ears its numbers when they heard all of it; the pipeline gives them the speech the VAD found."""
    samples, rate = espeak.render("A film ends at eight forty five and lasted eighty minutes. When did it start?",
                                  voice="en-gb-scotland+f2")
    wav = to_16k(torch.from_numpy(samples.copy())[None], rate)
    padded = torch.cat([torch.zeros(2 * 16000), wav, torch.zeros(2 * 16000)])
    written = "A film ends at 8:45 and lasted 80 minutes. When did it start?"
    assert not NumbersHeard.right(pipeline.model.hearing.listen(padded[None], 16000).text, written)
    reply = pipeline(padded, 16000, max_speech_frames=0)
    assert NumbersHeard.right(reply.question_heard, written) and reply.answer == "7:25"


def test_heard_words_that_ask_nothing_are_no_question():
    assert abstain.no_question("Thank you.").startswith("no question heard")  # too few words: ask again
    assert abstain.no_question("") == "no words heard"
    assert abstain.no_question("La la la, oh yeah baby") == abstain.OUT_OF_SCOPE
    assert abstain.no_question("Please turn on the lights.") == abstain.OUT_OF_SCOPE
    assert abstain.no_question("What is 4 + 5?") is None
    assert abstain.no_question("How many fruits are in this list: apple, kiwi?") is None
    # Typed text is never too short, and is out of scope by the same words.
    assert abstain.no_question("7+5", typed=True) is None and abstain.no_question("Hi", typed=True) == "out of scope"
    assert abstain.no_question("Thank you.", typed=True) == abstain.OUT_OF_SCOPE


def test_words_that_ask_nothing_of_numbers_get_the_out_of_scope_reply_not_a_request_to_ask_again(pipeline):
    samples, rate = espeak.render("Please turn on the lights in the kitchen.", voice="en-gb-x-rp+f3")
    for reply in (pipeline(torch.from_numpy(samples.copy())[None], rate),
                  pipeline(text="Play some music please.")):
        assert reply.abstained and reply.abstain_reason == abstain.OUT_OF_SCOPE and reply.answer is None
        assert reply.reply_text == abstain.OUT_OF_SCOPE_TEXT and reply.thought == ""  # no reasoning needed
        out_of_scope = abstain.abstention_audio(pipeline.sample_rate, abstain.OUT_OF_SCOPE)
        assert out_of_scope.shape[-1] != abstain.abstention_audio(pipeline.sample_rate).shape[-1]
        assert reply.waveform.shape[-1] == out_of_scope.shape[-1]  # said aloud, and not "Could you ask again?"


def test_a_question_in_chunks_is_heard_while_it_is_spoken(pipeline):
    """Audio as a microphone gives it: 50 ms chunks, the question then a pause. The ear hears it at the pause, so
    nothing is left to hear when the audio ends, and the answer is the one the whole waveform gets."""
    wav = torch.cat([speech(), torch.zeros(8000)])
    whole = pipeline(wav, 16000)
    chunks = iter(wav.split(800))
    _, heard = pipeline.listen(chunks, 16000)
    assert heard is not None and heard.text == whole.question_heard
    streamed = pipeline(iter(wav.split(800)), 16000)
    assert streamed.answer == whole.answer == "6" and streamed.question_heard == whole.question_heard
    assert streamed.timings["hear_ms"] < whole.timings["hear_ms"]
    # Speech after the pause: heard again, at the end.
    _, again = pipeline.listen(iter(torch.cat([wav, speech()]).split(800)), 16000)
    assert again is None
    with pytest.raises(ValueError, match="sample_rate"):
        pipeline(iter(wav.split(800)))
    with pytest.raises(ValueError, match="no samples"):
        pipeline(iter([]), 16000)


def test_reply_json_says_it_abstained_and_why(tmp_path, capsys):
    import json

    from s2s import audio
    from s2s.cli import main

    silence = audio.save(tmp_path / "silence.wav", torch.zeros(1, 3 * 16000), 16000)
    main(["reply", str(silence), "--json", "--out", str(tmp_path / "r.wav")])
    data = json.loads(capsys.readouterr().out)
    assert data["abstained"] is True and data["abstain_reason"] == abstain.NO_SPEECH and data["answer"] is None
    assert data["reply_text"] == abstain.TEXT and audio.load(tmp_path / "r.wav")[0].shape[-1] > 16000


def test_a_thought_that_declines_gets_the_out_of_scope_reply_not_the_models(pipeline):
    from s2s.data.problems import OUT_OF_SCOPE_THOUGHT

    def events():
        yield "thought", OUT_OF_SCOPE_THOUGHT[:20]
        yield "thought", OUT_OF_SCOPE_THOUGHT[20:]
        yield "reply_text", "Paris"
        raise AssertionError("nothing after a declining thought is generated")

    out = list(pipeline._declining(events()))
    assert [kind for kind, _ in out] == ["thought", "thought", "abstain", "audio"]
    assert out[2][1] == abstain.OUT_OF_SCOPE and out[3][1].shape[-1] > pipeline.sample_rate
    assert abstain.reply_text(abstain.OUT_OF_SCOPE) == "I can only help with number and time questions for now."
    answering = [("thought", "First 4 + 5 = 9.\nSo the answer is 9."), ("reply_text", "It is nine.")]
    assert list(pipeline._declining(iter(answering))) == answering
    assert abstain.declines(OUT_OF_SCOPE_THOUGHT) and not abstain.declines("So the answer is 9.")


def test_the_shipped_model_declines_what_it_cannot_work_on_and_answers_what_it_can(pipeline):
    for question in ("What is the capital of France?", "Tell me a joke."):
        reply = pipeline(text=question, max_speech_frames=0)
        assert reply.abstained and reply.abstain_reason == abstain.OUT_OF_SCOPE and reply.answer is None, question
        assert reply.reply_text == abstain.OUT_OF_SCOPE_TEXT and reply.waveform.shape[-1] > reply.sample_rate
        assert reply.to_json()["abstain_reason"] == "out of scope"
    reply = pipeline(text="whats seven plus five", max_speech_frames=0)
    assert not reply.abstained and reply.answer == "12"
