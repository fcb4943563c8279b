"""`s2s evaluate`: the metrics on hand-made cases, the spoken-answer parser, the shortcut test's three modes,
a listening fake pipeline with known scores, the report folder, and the CLI on a tiny random pipeline."""
import json
import math
import shutil

import pytest
import torch

from s2s import audio
from s2s.asr.recognizer import CTCRecognizer
from s2s.cli import main
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.numbers import number_to_words, words_to_number
from s2s.data.problems import chance_level
from s2s.eval import report as report_module
from s2s.eval.metrics import AnswerAccuracy, NumbersHeard, Percentiles, ReplyErrorRates, normalise
from s2s.eval.reasoning import answer_given, evaluate, evaluate_manifest, load_judge, spoken_answer
from s2s.eval.shortcut import MODES, follows_audio, mean_chance, replaced_question, summarise
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import train_text_tokenizer
from s2s.pipeline import SpokenReply

RATE = 16000
PNG = b"\x89PNG\r\n\x1a\n"
REQUIRED_KEYS = {"accuracy_thought", "accuracy_spoken", "accuracy_text", "wer", "ttfa_ms_p50", "ttfa_ms_p90",
                 "shortcut", "per_family"}
TINY_ASR = {"dim": 24, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 2048}
# Three questions: a listening fake pipeline reads the answer from the question audio's amplitude.
ROWS = [{"id": "a", "family": "arithmetic", "answer": "42", "question_voice": "en-us+m3",
         "question": "what is six times seven", "question_written": "What is 6 × 7? (42)",
         "thought": "6 × 7 = 42.\nSo the answer is 42.", "reply": "The answer is forty-two."},
        {"id": "b", "family": "sequence", "answer": "7", "question_voice": "en-us+f2",
         "question": "what comes next one three five", "question_written": "What comes next: 1, 3, 5? (7)",
         "thought": "Add 2: 5 + 2 = 7.\nSo the answer is 7.", "reply": "The answer is seven."},
        {"id": "c", "family": "arithmetic", "answer": "105", "question_voice": "en-us+m3",
         "question": "what is one hundred plus five", "question_written": "What is 100 + 5? (105)",
         "thought": "100 + 5 = 105.\nSo the answer is 105.", "reply": "The answer is one hundred five."}]


# ---------------------------------------------------------------------- metrics
def test_answer_accuracy_counts_exact_answers_and_none_is_wrong():
    metric = AnswerAccuracy()
    metric.update(["36", "-32", None, "9:45"], ["36", "32", "7", "9:45"])
    assert float(metric.compute()) == 0.5
    metric.update([" 7 "], ["7"])  # surrounding spaces do not count; answers accumulate over updates
    assert float(metric.compute()) == pytest.approx(3 / 5)
    metric.reset()
    metric.update([None, None], ["1", "2"])
    assert float(metric.compute()) == 0.0
    with pytest.raises(ValueError, match="2 predicted answers for 1"):
        metric.update(["1", "2"], ["1"])
    with pytest.raises(TypeError, match="lists"):
        metric.update("12", "12")


def test_reply_error_rates_normalise_like_the_judge_and_match_hand_counts():
    assert normalise("The answer is Thirty-Six.") == "the answer is thirty six"
    rates = ReplyErrorRates()
    rates.update(["the answer is thirty six"], ["The answer is thirty-six."])
    assert {k: float(v) for k, v in rates.compute().items()} == {"wer": 0.0, "cer": 0.0}
    rates.reset()
    # one word of five deleted; " six" is 4 of the reference's 24 characters
    rates.update(["the answer is thirty", "anything"], ["The answer is thirty-six.", "?!"])  # "?!" is skipped
    figures = rates.compute()
    assert float(figures["wer"]) == pytest.approx(1 / 5) and float(figures["cer"]) == pytest.approx(4 / 24)
    batch = rates(["the answer is seven"], ["The answer is eleven."])  # forward: this batch's figures, kept too
    assert float(batch["wer"]) == pytest.approx(1 / 4)
    assert float(rates.compute()["wer"]) == pytest.approx(2 / 9)  # one substitution more: 2 of 9 words


# ---------------------------------------------------------------------- the spoken-answer parser
@pytest.mark.parametrize("text, expected, heard", [
    ("The answer is forty two.", "42", "42"),
    ("the answer is forty-two", "42", "42"),
    ("It is 105.", "105", "105"),
    ("one hundred and five apples", "105", "105"),
    ("It is minus thirty two.", "-32", "-32"),
    ("the answer is negative seven", "-7", "-7"),
    ("The result is -12.", "-12", "-12"),
    ("three plus four is seven", "7", "7"),  # the last number is the answer
    ("the answer is zero", "0", "0"),
    ("it will be nine forty five", "9:45", "9:45"),
    ("It will be 9:45.", "9:45", "9:45"),
    ("The train leaves at ten oh five.", "10:05", "10:05"),
    ("seven o'clock", "7:00", "7:00"),
    ("half past seven", "7:30", "7:30"),
    ("a quarter to one", "12:45", "12:45"),
    ("i do not know", "3", None),
    ("in twelve minutes", "9:45", None),  # a number, but no time
    ("", "42", None),
])
def test_spoken_answer_reads_numbers_minus_and_times(text, expected, heard):
    assert spoken_answer(text, expected) == heard


# ---------------------------------------------------------------------- the shortcut test's three modes
def test_replaced_question_silence_noise_and_swap():
    g = torch.Generator().manual_seed(0)
    wav = 0.2 * torch.sin(torch.arange(8000) / 5.0)[None] + 0.01 * torch.randn(1, 8000, generator=g)
    other = torch.randn(1, 5000, generator=g)
    silence = replaced_question("silence", wav)
    assert silence.shape == wav.shape and not silence.any()
    noise = replaced_question("noise", wav, generator=torch.Generator().manual_seed(1))
    rms = wav.pow(2).mean().sqrt()
    assert noise.shape == wav.shape and abs(noise.pow(2).mean().sqrt() / rms - 1) < 0.1
    assert torch.corrcoef(torch.stack([noise[0], wav[0]]))[0, 1].abs() < 0.05  # noise, not the question
    again = replaced_question("noise", wav, generator=torch.Generator().manual_seed(1))
    assert torch.equal(noise, again)  # seeded: the same noise on every run
    assert torch.equal(replaced_question("swap", wav, other), other)  # the other question, its own length
    with pytest.raises(ValueError, match="another question"):
        replaced_question("swap", wav)
    with pytest.raises(ValueError, match="unknown shortcut mode 'reverse'"):
        replaced_question("reverse", wav)
    for mode in ("tone", "music"):  # at the question's loudness, a sound but no voice; seeded
        sound = replaced_question(mode, wav, generator=torch.Generator().manual_seed(2))
        assert sound.shape == wav.shape and abs(sound.pow(2).mean().sqrt() / rms - 1) < 0.01
        assert torch.equal(sound, replaced_question(mode, wav, generator=torch.Generator().manual_seed(2)))
    assert MODES == ("silence", "noise", "tone", "music", "swap")


def test_shortcut_summary_gives_chance_and_how_often_the_other_question_is_answered():
    examples = [{"family": "comparison", "thought_answer": "5", "other_answer": "5", "answer": "7"},
                {"family": "arithmetic", "thought_answer": None, "other_answer": "3", "answer": "4"},
                {"family": "comparison", "thought_answer": "8", "other_answer": "9", "answer": "8"},
                {"family": "not-a-family", "thought_answer": "1", "other_answer": "1", "answer": "2"}]
    run = {"n": 4, "accuracy_thought": 0.25, "accuracy_reply_text": 0.0, "abstained": 0.25, "examples": examples}
    swap = summarise("swap", run)
    chance = (2 * 0.5 + chance_level("arithmetic")) / 3  # the unknown family is left out
    per_family = swap.pop("per_family")
    assert swap == {"n": 4, "accuracy_thought": 0.25, "accuracy_reply_text": 0.0, "abstained": 0.25,
                    "chance": pytest.approx(chance), "follows_audio": 0.5}
    assert per_family["comparison"] == {"n": 2, "accuracy_thought": 0.5, "chance": 0.5}
    assert per_family["arithmetic"]["accuracy_thought"] == 0.0 and per_family["not-a-family"]["chance"] is None
    assert "follows_audio" not in summarise("silence", run)
    assert follows_audio(examples) == 0.5 and follows_audio(examples[1:2]) == 0.0  # None answers nothing
    assert mean_chance(["comparison"]) == 0.5 and mean_chance(["nope"]) is None


def test_the_answer_given_is_the_thoughts_or_declining():
    from types import SimpleNamespace

    from s2s.hearing.abstain import OUT_OF_SCOPE

    assert answer_given(SimpleNamespace(answer="42", abstain_reason=None)) == "42"
    assert answer_given(SimpleNamespace(answer=None, abstain_reason=OUT_OF_SCOPE)) == OUT_OF_SCOPE
    assert answer_given(SimpleNamespace(answer=None, abstain_reason="no speech")) is None  # abstaining is no answer
    assert answer_given(SimpleNamespace(answer="7")) == "7"  # a reply without the field did not decline


def test_percentiles_are_nearest_rank_values_across_updates_and_nan_before_any():
    metric = Percentiles((0.0, 0.5, 0.9, 1.0))
    assert torch.isnan(metric.compute()).all()
    metric.update([30.0, 10.0, 50.0])
    metric.update(torch.tensor([20.0, 40.0, 60.0, 70.0, 80.0, 90.0, 100.0]))
    # 10 values 10..100: rank round(q * 9) of the sorted list (Python's round: 4.5 -> 4)
    assert metric.compute().tolist() == [10.0, 50.0, 90.0, 100.0]
    metric.reset()
    metric.update([7.0])
    assert metric.compute().tolist() == [7.0] * 4
    with pytest.raises(ValueError, match="NaN"):
        metric.update([float("nan")])
    with pytest.raises(ValueError, match="fractions"):
        Percentiles((0.5, 1.5))


def test_numbers_heard_needs_every_number_in_order():
    metric = NumbersHeard()
    metric.update(["What is 21 + 4", "What is 20 + 14?", "Count the fruits.", "It is 7:10. In 5 minutes?",
                   None, "Which is larger, 3 or 12?"],
                  ["What is 21 + 4?", "What is 21 + 4?", "Count the fruits: apple, kiwi.", "It is 7:10. In 5 minutes?",
                   "What is 1 + 1?", "Which is larger, 12 or 3?"])
    assert metric.compute() == pytest.approx(3 / 6)  # right: 1st, 3rd (no numbers), 4th; order matters (6th)
    assert NumbersHeard().compute() == 0.0
    with pytest.raises(ValueError, match="2 heard questions for 1 written"):
        NumbersHeard().update(["a", "b"], ["a"])


class HearingPipeline:
    """ListeningPipeline with ears: it writes down what it heard (every number right but the last question's,
    whose 100 it hears as 10), as a model with a hearing does in `SpokenReply.question_heard`."""

    sample_rate = RATE

    def __call__(self, audio_in=None, sample_rate=None, text=None, **options):
        reply = ListeningPipeline()(audio_in, sample_rate, text, **options)
        if text is None:
            answer = int(reply.answer)
            reply.question_heard = next(r["question_written"] for r in ROWS if r["answer"] == str(answer))
            reply.question_heard = reply.question_heard.replace("100", "10")
            if answer == 105:
                reply.answer = "15"  # misheard, so answered wrong
        return reply


def test_evaluate_separates_hearing_from_reasoning(manifest):
    result = evaluate_manifest(HearingPipeline(), manifest)
    assert result["numbers_heard"] == pytest.approx(2 / 3) and result["accuracy_thought"] == pytest.approx(2 / 3)
    assert result["accuracy_when_numbers_heard"] == 1.0  # every wrong answer was misheard
    assert result["hearing_cer"] == pytest.approx(1 / sum(len(r["question_written"]) for r in ROWS))
    assert [e["question_heard"] for e in result["examples"]][0] == ROWS[0]["question_written"]
    summary = evaluate(HearingPipeline(), manifest)
    assert summary["numbers_heard"] == pytest.approx(2 / 3)
    assert "every number heard right in 66.7%" in report_module.format_text(summary)
    text_only = evaluate_manifest(HearingPipeline(), manifest, question="text")
    assert text_only["numbers_heard"] is None and text_only["hearing_cer"] is None  # text questions are not heard
    assert evaluate_manifest(ListeningPipeline(), manifest)["numbers_heard"] is None  # no ears, no figure


# ---------------------------------------------------------------------- a fake pipeline that listens
class ListeningPipeline:
    """Answers with 1000 x the question's peak amplitude (so it hears only its audio), or the number a text
    question ends with. Its reply waveform lasts 1000 + 10 x answer samples, which `JudgeStub` reads back."""

    sample_rate = RATE

    def __call__(self, audio_in=None, sample_rate=None, text=None, **options):
        self.options = options
        self.speech_caps = getattr(self, "speech_caps", []) + [(text is not None, options.get("max_speech_frames"))]
        if text is not None:
            answer = words_to_number(text)
        else:
            wav = audio.load(audio_in)[0] if sample_rate is None else audio_in
            answer = round(1000 * float(wav.abs().max()))
        thought = f"I heard {answer}.\nSo the answer is {answer}."
        return SpokenReply(thought=thought, reply_text=f"The answer is {number_to_words(answer)}.",
                           answer=str(answer), audio=None, timings={"ttfa_ms": 10.0 + answer, "total_ms": 50.0,
                                                                    "rtf": 0.5},
                           waveform=torch.zeros(1, 1000 + 10 * answer), sample_rate=RATE)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, row in enumerate(ROWS):
        amplitude = int(row["answer"]) / 1000
        wav = amplitude * torch.sin(torch.arange(RATE // 2 + 800 * i) * 0.05)[None]
        wav[0, 100] = amplitude  # the peak, exactly
        audio.save(root / f"q{i}.wav", wav, RATE)
        rows.append({**row, "question_audio": f"q{i}.wav"})
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    return str(CTCRecognizer(labels="chars", **TINY_ASR).save_pretrained(tmp_path_factory.mktemp("asr") / "judge"))


@pytest.fixture
def judge_stub(judge_dir):
    """A real character judge whose transcripts are fixed: it hears 105 as "one hundred" (one word lost)."""
    judge = load_judge(judge_dir)

    def transcribe(wav):
        answer = (wav.shape[-1] - 1000) // 10
        words = "the answer is " + number_to_words(answer)
        return [words.removesuffix(" five") if answer == 105 else words]

    judge.transcribe = transcribe
    return judge


def test_evaluate_manifest_scores_a_listening_pipeline(manifest, judge_stub):
    result = evaluate_manifest(ListeningPipeline(), manifest, judge=judge_stub, max_thought_tokens=3)
    assert result["n"] == 3 and result["accuracy_thought"] == 1.0 and result["accuracy_reply_text"] == 1.0
    assert result["accuracy_spoken"] == pytest.approx(2 / 3)  # "one hundred" is not 105
    # references: 5 + 4 + 6 words and 23 + 19 + 30 characters; the judge lost " five" (1 word, 5 characters)
    assert result["wer"] == pytest.approx(1 / 15) and result["cer"] == pytest.approx(5 / 72)
    assert set(result["per_voice"]) == {"en-us+m3", "en-us+f2"} and result["per_voice"]["en-us+m3"]["n"] == 2
    assert result["per_family"]["arithmetic"]["accuracy_spoken"] == 0.5
    assert result["thought_tokens_mean"] == 8  # "I heard 42.\nSo the answer is 42." is 8 words
    assert result["ttfa_ms_p50"] == 52.0 and result["ttfa_ms_p90"] == 115.0  # of 17, 52 and 115 ms
    assert [e["heard"] for e in result["examples"]][1] == "the answer is seven"
    without = evaluate_manifest(ListeningPipeline(), manifest, limit=2)
    assert without["n"] == 2 and without["accuracy_spoken"] is None and without["wer"] is None


def test_a_second_listener_gives_its_own_spoken_accuracy(manifest, judge_stub):
    class HardOfHearing:  # a second opinion that mishears 42 as 40
        def transcribe(self, wav):
            answer = (wav.shape[-1] - 1000) // 10
            return ["the answer is " + number_to_words(40 if answer == 42 else answer)]

    result = evaluate_manifest(ListeningPipeline(), manifest, judge=judge_stub, sphinx=HardOfHearing())
    assert result["accuracy_spoken_sphinx"] == pytest.approx(2 / 3)
    assert result["accuracy_spoken"] == pytest.approx(2 / 3)
    assert [e["sphinx_answer"] for e in result["examples"]] == ["40", "7", "105"]
    summary = evaluate(ListeningPipeline(), manifest, sphinx=HardOfHearing())
    assert summary["accuracy_spoken_sphinx"] == pytest.approx(2 / 3)
    assert "pocketsphinx hears them" in report_module.format_text(summary)
    assert evaluate_manifest(ListeningPipeline(), manifest)["accuracy_spoken_sphinx"] is None


def test_listening_pipeline_falls_to_chance_without_audio_and_follows_swapped_audio(manifest):
    runs = {mode: evaluate_manifest(ListeningPipeline(), manifest, shortcut=mode) for mode in MODES}
    assert runs["silence"]["accuracy_thought"] == 0.0
    assert [e["thought_answer"] for e in runs["silence"]["examples"]] == ["0", "0", "0"]
    assert runs["noise"]["accuracy_thought"] == 0.0  # Gaussian noise peaks well above its RMS
    swap = runs["swap"]["examples"]
    assert [e["thought_answer"] for e in swap] == ["7", "105", "42"] == [e["other_answer"] for e in swap]
    assert summarise("swap", runs["swap"])["follows_audio"] == 1.0
    with pytest.raises(ValueError, match="shortcut must be one of"):
        evaluate_manifest(ListeningPipeline(), manifest, question="text", shortcut="silence")


def test_evaluate_summary_and_report_folder(manifest, judge_stub, tmp_path):
    pipeline = ListeningPipeline()
    summary = evaluate(pipeline, manifest, judge=judge_stub, shortcut=True)
    # Questions given as text are scored on their thought alone: their speech is never made.
    assert {cap for as_text, cap in pipeline.speech_caps if as_text} == {0}
    assert {cap for as_text, cap in pipeline.speech_caps if not as_text} == {None}
    assert REQUIRED_KEYS <= set(summary)
    assert summary["accuracy_text"] == 1.0 and summary["modality_gap"] == 0.0
    assert summary["per_family"]["sequence"]["chance"] == chance_level("sequence")
    assert summary["shortcut"]["swap"]["follows_audio"] == 1.0
    assert summary["word_decoder"] is False  # a pipeline without a model folder's word decoder
    assert summary["shortcut"]["chance"] == pytest.approx(mean_chance([r["family"] for r in ROWS]))
    text = report_module.format_text(summary)
    assert "shortcut test" in text and "WER" in text and "no judge" not in text
    n = summary["n"]
    assert summary["ci95"]["accuracy_thought"][1] == 1.0 and summary["ci95"]["accuracy_thought"][0] < 1.0
    assert f"95 % intervals (n = {n}): accuracy_thought" in text
    other = ("think_while_speaking", {"accuracy_thought": 0.4, "ttfa_ms_p50": 80.0})
    out = report_module.write_report(summary, tmp_path / "report", compare=[other])
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "summary.json", *report_module.PLOTS.values()}
    for png in report_module.PLOTS.values():
        assert (out / png).read_bytes().startswith(PNG)
    markdown = (out / "report.md").read_text()
    assert "![accuracy_vs_ttfa](accuracy_vs_ttfa.png)" in markdown and "| swap |" in markdown
    assert json.loads((out / "summary.json").read_text())["accuracy_thought"] == 1.0
    with pytest.raises(FileExistsError, match="--overwrite"):
        report_module.write_report(summary, out)
    no_judge = evaluate(ListeningPipeline(), manifest, limit=2)
    assert no_judge["shortcut"] is None and no_judge["judge"] is None and no_judge["wer"] is None
    assert "no judge" in report_module.format_text(no_judge)
    out = report_module.write_report(no_judge, tmp_path / "report", overwrite=True)
    assert "accuracy_vs_ttfa.png" not in {p.name for p in out.iterdir()}
    assert "| accuracy_spoken | no judge |" in (out / "report.md").read_text()


def test_load_judge_refuses_what_is_not_a_character_judge(judge_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="judge folder not found"):
        load_judge(tmp_path / "missing")
    judge = CTCRecognizer.from_pretrained(judge_dir)
    judge.labels.kind = "tokenizer"
    with pytest.raises(ValueError, match="labels: chars"):
        load_judge(judge)


# ---------------------------------------------------------------------- the CLI, on a tiny random pipeline
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, manifest) -> str:
    root = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1,
                                       decoder_lookahead_frames=0))
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(root / "tokenizer")
    lm = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(root / "tokenizer"),
                           codec=str(save_net(net.eval(), root / "codec")))
    return str(lm.save_pretrained(root / "model"))


@pytest.fixture
def speaks_until_the_cap(monkeypatch):
    """A random model may end its speech at once; ban <eot> so every reply has audio (and a TTFA)."""
    load = SpeechReasoningLM.from_pretrained.__func__

    def ban_eot(cls, folder, **options):
        model = load(cls, folder, **options)
        bias = torch.zeros(model.vocab.size)
        bias[model.vocab.eot] = -1e4
        model.backbone.get_output_embeddings().register_forward_hook(lambda module, args, out: out + bias)
        return model

    monkeypatch.setattr(SpeechReasoningLM, "from_pretrained", classmethod(ban_eot))


CAPS = ["--max-thought-tokens", "8", "--max-reply-tokens", "4", "--max-speech-frames", "10"]


def test_cli_json_has_the_headline_keys_and_the_report_renders(model_dir, manifest, judge_dir, tmp_path, capsys,
                                                                speaks_until_the_cap):
    other = tmp_path / "text_guided.json"
    other.write_text(json.dumps({"format": "text_guided", "accuracy_thought": 0.3, "ttfa_ms_p50": 20.0}))
    report_dir = tmp_path / "report"
    main(["evaluate", "--manifest", str(manifest), "--ckpt", model_dir, "--limit", "2", "--json", "--shortcut",
          "--judge", judge_dir, "--report", str(report_dir), "--compare", str(other), *CAPS])
    stdout = capsys.readouterr().out
    data = json.loads(stdout)  # one object and nothing else, or this fails
    assert stdout.count("\n") == 1 and REQUIRED_KEYS <= set(data)
    assert data["n"] == 2 and data["judge"] == f"{judge_dir}, greedy" and data["format"] == "think_then_speak"
    for name in ("accuracy_thought", "accuracy_spoken", "accuracy_text", "wer", "cer"):
        assert 0 <= data[name] <= (1 if name.startswith("accuracy") else math.inf), name
    assert data["ttfa_ms_p50"] > 0 and data["thought_tokens_mean"] >= 0
    assert set(data["shortcut"]) == {"chance", *MODES} and "follows_audio" in data["shortcut"]["swap"]
    assert set(data["per_family"]) == {"arithmetic", "sequence"} and set(data["per_voice"]) == {"en-us+m3",
                                                                                                 "en-us+f2"}
    assert "examples" not in data["runs"]["audio"]
    for png in report_module.PLOTS.values():
        assert (report_dir / png).read_bytes().startswith(PNG)
    assert (report_dir / "report.md").is_file()


def test_cli_judge_prints_the_judges_own_figures(manifest, judge_dir, capsys):
    main(["judge", "--manifest", str(manifest), "--judge", judge_dir, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["ctc judge"] and data["ctc judge"]["question_audio"]["n"] == 3
    assert 0 <= data["ctc judge"]["question_audio"]["cer"]
    main(["judge", "--manifest", str(manifest), "--judge", judge_dir])
    assert "question_audio  n=3" in capsys.readouterr().out


def test_cli_judge_with_a_text_lm_reports_the_greedy_figures_beside_the_beams(manifest, judge_dir, tmp_path,
                                                                              capsys):
    from s2s.asr.recognizer import build_for_recognizer

    folder = shutil.copytree(judge_dir, tmp_path / "judge-with-lm")
    build_for_recognizer(folder, [manifest], ["question", "reply"], order=4)
    main(["judge", "--manifest", str(manifest), "--judge", str(folder), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["ctc judge", "ctc judge greedy (no text LM)"]
    assert all(data[name]["question_audio"]["n"] == 3 for name in data)


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "Traceback" not in err, err
    return err


def test_cli_user_errors_are_one_line_and_come_before_the_model_loads(manifest, tmp_path, capsys):
    base = ["evaluate", "--manifest", str(manifest), "--ckpt", str(tmp_path / "no-model")]
    (tmp_path / "old-report").mkdir()
    assert "old-report already exists" in one_line_error([*base, "--report", str(tmp_path / "old-report")], capsys)
    assert "pass --report" in one_line_error([*base, "--compare", "a.json"], capsys)
    assert "result file not found" in one_line_error([*base, "--report", str(tmp_path / "r"), "--compare",
                                                      str(tmp_path / "a.json")], capsys)
    assert "judge folder not found" in one_line_error([*base, "--judge", str(tmp_path / "nope")], capsys)
    assert "unknown listener 'ears'" in one_line_error([*base, "--listener", "ears"], capsys)
    assert "model folder not found" in one_line_error(base, capsys)
    speech = tmp_path / "speech.jsonl"
    speech.write_text(json.dumps({"id": "s", "audio": "a.wav", "text": "hello"}) + "\n")
    err = one_line_error(["evaluate", "--manifest", str(speech)], capsys)
    assert "example s has no answer, question_audio, question_written" in err and "s2s data synth" in err


def test_reply_speech_is_compared_with_the_reference_recording_of_the_same_words(manifest, tmp_path):
    """MCD-DTW against the manifest's reply audio, only where the reply says the reference's words."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for i, row in enumerate(rows):
        audio.save(tmp_path / f"q{i}.wav", audio.load(manifest.parent / row["question_audio"])[0], RATE)
        audio.save(tmp_path / f"r{i}.wav", 0.1 * torch.sin(torch.arange(RATE) * 0.03 * (i + 1))[None], RATE)
        row.update(question_audio=f"q{i}.wav", reply_audio=f"r{i}.wav")
    rows[1]["reply"] = "Something else entirely."  # the model's reply differs: nothing to compare
    copy = tmp_path / "manifest.jsonl"
    copy.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate_manifest(ListeningPipeline(), copy)
    mcd = [e.get("reply_mcd_db") for e in result["examples"]]
    assert mcd[1] is None and all(isinstance(v, float) and v > 0 for v in (mcd[0], mcd[2]))
    assert result["reply_mcd_db"] == pytest.approx((mcd[0] + mcd[2]) / 2)
    assert evaluate_manifest(ListeningPipeline(), manifest)["reply_mcd_db"] is None  # no reply audio in the manifest


def test_judge_figures_give_a_judges_own_error_rates_on_known_words(manifest, tmp_path, capsys):
    from s2s.eval.judge import format_figures, judge_figures

    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for i, row in enumerate(rows):
        audio.save(tmp_path / f"q{i}.wav", audio.load(manifest.parent / row["question_audio"])[0], RATE)
        audio.save(tmp_path / f"r{i}.wav", 0.1 * torch.randn(1, RATE // 2 + 10 * int(row["answer"])), RATE)
        row.update(question_audio=f"q{i}.wav", reply_audio=f"r{i}.wav")
    copy = tmp_path / "manifest.jsonl"
    copy.write_text("".join(json.dumps(r) + "\n" for r in rows))

    class Parrot:  # hears a reply as the number its length says (row b's one too high), a question as row a's
        def transcribe(self, wav):
            n = wav.shape[-1]
            for row in rows:
                if abs(n - (RATE // 2 + 10 * int(row["answer"]))) <= 2:
                    return ["the answer is " + number_to_words(int(row["answer"]) + (row["id"] == "b"))]
            return [rows[0]["question"]]

    figures = judge_figures(Parrot(), copy)
    assert figures["reply_audio"]["n"] == 3 and figures["reply_audio"]["accuracy_answer"] == pytest.approx(2 / 3)
    # references "the answer is forty two / seven / one hundred five": 15 words, one wrong ("eight")
    assert figures["reply_audio"]["wer"] == pytest.approx(1 / 15)
    assert figures["question_audio"]["n"] == 3 and 0 < figures["question_audio"]["wer"] < 1  # right once in three
    assert "WER" in format_figures("parrot", figures)
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(ValueError, match="has no rows"):
        judge_figures(Parrot(), bare)


def test_the_default_judge_is_a_clear_error_until_one_ships(monkeypatch, tmp_path):
    from s2s.eval import reasoning

    monkeypatch.setattr(reasoning, "DEFAULT_JUDGE", tmp_path / "s2s-judge-tiny")
    with pytest.raises(FileNotFoundError, match="no judge is shipped at .* train one with configs/asr/judge.yaml"):
        load_judge("default")


def test_wilson_interval_matches_known_values_and_narrows_with_n():
    from s2s.eval.metrics import wilson_interval

    low, high = wilson_interval(0.5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    low, high = wilson_interval(0.0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)  # never below 0 even at 0 right
    assert wilson_interval(1.0, 40)[1] == 1.0
    wide, narrow = wilson_interval(0.585, 40), wilson_interval(0.585, 200)
    assert narrow[1] - narrow[0] < wide[1] - wide[0] and narrow[0] < 0.585 < narrow[1]
    assert wilson_interval(None, 10) is None and wilson_interval(0.5, 0) is None


def test_sign_test_counts_only_the_disagreements_of_paired_answers():
    from s2s.eval.metrics import sign_test

    assert sign_test(0, 0) == 1.0 and sign_test(3, 3) == 1.0  # no disagreement, or an even split: no evidence
    assert sign_test(5, 0) == sign_test(0, 5) == 2 / 32  # five coin flips all one way, both tails
    assert sign_test(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert sign_test(20, 2) < 0.001 < sign_test(4, 2)


# ---------------------------------------------------------------------- the independent listener
class FakeListener:
    """Hears a model reply (1000 + 10 x answer samples) in digits, as Whisper writes, but 7 as 11; hears the
    reference voice (5000 + 10 x answer samples, see `coded_reference`) right."""

    name = "a fake listener"
    independent = True

    def transcribe(self, wav):
        n = wav.shape[-1]
        if n >= 5000:
            return [f"It is {(n - 5000) // 10}."]
        answer = (n - 1000) // 10
        return [f"The answer is {11 if answer == 7 else answer}."]


def coded_reference(text: str):
    return torch.zeros(1, 5000 + 10 * words_to_number(text)), RATE


def test_the_listener_scores_the_model_beside_the_reference_voice(manifest, monkeypatch):
    from s2s.eval import reasoning

    monkeypatch.setattr(reasoning, "reference_reply", coded_reference)
    result = evaluate_manifest(ListeningPipeline(), manifest, listener=FakeListener())
    assert [e["listener_answer"] for e in result["examples"]] == ["42", "11", "105"]
    assert [e["listener_reference_answer"] for e in result["examples"]] == ["42", "7", "105"]
    assert result["listener_n"] == 3 and result["accuracy_listener"] == pytest.approx(2 / 3)
    assert result["accuracy_listener_reference"] == 1.0 and result["listener_ratio"] == pytest.approx(2 / 3)
    summary = evaluate(ListeningPipeline(), manifest, listener=FakeListener())
    text = report_module.format_text(summary)
    assert text.startswith("spoken answers heard right by a fake listener") and "ratio 0.667" in text
    assert evaluate_manifest(ListeningPipeline(), manifest)["accuracy_listener"] is None  # no listener, no figure


def test_listener_scores_count_only_replies_whose_thought_is_right_and_not_declined():
    from s2s.eval.listener import listener_scores

    examples = [{"listened": True, "thought_correct": True, "answer": "3", "listener_answer": "3",
                 "listener_reference_answer": "3"},
                {"listened": True, "thought_correct": True, "answer": "4", "listener_answer": None,
                 "listener_reference_answer": "4"},
                {"listened": True, "thought_correct": False, "answer": "5", "listener_answer": "5",
                 "listener_reference_answer": "5"},
                {"listened": True, "thought_correct": True, "declined": True, "answer": "x", "listener_answer": None,
                 "listener_reference_answer": None}]
    scores = listener_scores(examples)
    assert scores == {"listener_n": 2, "accuracy_listener": 0.5, "accuracy_listener_reference": 1.0,
                      "listener_ratio": 0.5}
    assert listener_scores([])["accuracy_listener"] is None


def test_a_recogniser_trained_on_the_reply_corpus_is_refused_as_a_listener(judge_dir):
    from s2s.eval.listener import load_listener

    with pytest.raises(ValueError, match="not an independent listener") as error:
        load_listener(judge_dir)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="unknown listener 'pocketsphinx'"):
        load_listener("pocketsphinx")


def test_whisper_hears_the_reference_voice_say_a_reply():
    """The real listener on the real reference voice: espeak-ng's assistant voice, heard by Whisper tiny.en."""
    from s2s.eval.listener import load_listener, reference_reply
    from s2s.eval.reasoning import hear

    wav, rate = reference_reply("The answer is fourteen.")
    assert wav.shape[0] == 1 and wav.shape[-1] > rate // 2
    listener = load_listener("whisper")
    assert listener.independent and "independent" in listener.name
    assert spoken_answer(hear(listener, wav, rate), "14") == "14"
    assert reference_reply("  ")[0].numel() == 0
    assert hear(listener, *reference_reply("")) == ""  # an empty reply is heard as nothing, not an error
