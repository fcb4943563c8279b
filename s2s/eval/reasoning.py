"""Does the model reason right, and does it listen? Run the pipeline over a manifest and score it.

Three answers are scored per question: the one in the thought ("So the
answer is X."), the one in the reply text (read back from its words, as a
listener would), and, given a character CTC judge (a recogniser that is not
the model under test), the one heard in the reply audio. The judge's
transcript also gives the reply's WER and CER against the manifest's reply
text. Each question can be given as audio (heard) or as text, so the two
runs together measure the modality gap; `shortcut_test` replaces the audio
(s2s/eval/shortcut.py) to see whether the answers depend on it. Latency
figures and thought lengths come with every run.

`evaluate` runs all of it and returns the one summary `s2s evaluate` prints.
"""
from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

import torch
from torchmetrics import MeanMetric

from s2s import audio as audio_io
from s2s.asr.features import SAMPLE_RATE as JUDGE_RATE
from s2s.data.manifest import read_manifest
from s2s.data.numbers import parse_time, words_to_number
from s2s.eval import shortcut as shortcut_modes
from s2s.eval.audio_quality import MelCepstralDistortion
from s2s.eval.listener import listener_scores, reference_reply
from s2s.eval.metrics import (
    AnswerAccuracy,
    NumbersHeard,
    Percentiles,
    ReplyErrorRates,
    normalise,
    wilson_interval,
)
from s2s.hearing import abstain

REQUIRED_FIELDS = ("id", "answer", "question_audio", "question_written")
# The shipped CTC judge (configs/asr/judge.yaml): `--judge` without a folder.
DEFAULT_JUDGE = Path(__file__).resolve().parents[1] / "assets" / "models" / "s2s-judge-tiny"
MIN_JUDGE_SAMPLES = 400  # one analysis window of the judge's log-mel at 16 kHz


def spoken_answer(text: str, expected: str) -> str | None:
    """The answer a listener hears in `text`, in the canonical form of `expected` (a time "9:45", or digits)."""
    if ":" in expected:
        time = parse_time(text)
        return None if time is None else f"{time[0]}:{time[1]:02d}"
    number = words_to_number(text)
    return None if number is None else str(number)


def _p50_p90(values: list[float]) -> tuple[float | None, float | None]:
    """The median and 90th percentile of `values` (`Percentiles`, nearest rank); None, None for no values."""
    metric = Percentiles((0.5, 0.9))
    metric.update(values)
    return tuple(_number(v) for v in metric.compute())


def _number(value) -> float | None:
    """A metric's value as a JSON-safe float: NaN (nothing to score) becomes None."""
    value = float(value)
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------- the judge
def load_judge(judge):
    """A character CTC recogniser: a CTCRecognizer, the folder one was saved in (`--judge DIR`), or "default"
    (the shipped judge, DEFAULT_JUDGE)."""
    from s2s.asr.recognizer import CTCRecognizer

    if judge == "default":
        if not DEFAULT_JUDGE.is_dir():
            raise FileNotFoundError(f"no judge is shipped at {DEFAULT_JUDGE} yet; train one with "
                                    "configs/asr/judge.yaml, s2s export it and pass --judge DIR")
        judge = DEFAULT_JUDGE
    if not isinstance(judge, CTCRecognizer):
        if not isinstance(judge, (str, os.PathLike)) or not Path(judge).is_dir():
            raise FileNotFoundError(f"judge folder not found: {judge}; pass a CTCRecognizer folder trained with "
                                    "labels: chars (configs/asr/judge.yaml, then s2s export)")
        judge = CTCRecognizer.from_pretrained(judge)
    if judge.labels.kind != "chars":
        raise ValueError(f"the judge spells {judge.labels.kind} labels; a judge must be a CTCRecognizer trained "
                         "with labels: chars (configs/asr/judge.yaml)")
    return judge.eval()


def describe_judge(name: str, judge) -> str:
    """`name` and how the judge hears: a text LM makes it a kinder listener than greedy decoding, so say so."""
    return f"{name}, {'beam + text LM' if getattr(judge, 'text_lm', None) is not None else 'greedy'}"


def hear(judge, waveform: torch.Tensor, sample_rate: int) -> str:
    """What `judge` (anything with `transcribe(wav [B, T] at 16 kHz)`: the CTC judge, `SphinxJudge`) hears in a
    reply waveform [T] or [C, T] at `sample_rate` ("" for no audio)."""
    if waveform.numel() == 0:  # no speech at all (an empty reply)
        return ""
    wav = waveform.reshape(-1, waveform.shape[-1]) if waveform.dim() > 1 else waveform[None]
    wav = audio_io.prepare(wav[None].float(), sample_rate, JUDGE_RATE)[0]  # [1, T] at 16 kHz, mono
    if wav.shape[-1] < MIN_JUDGE_SAMPLES:
        return ""
    device = next(judge.parameters()).device if isinstance(judge, torch.nn.Module) else torch.device("cpu")
    return judge.transcribe(wav.to(device))[0]


# ---------------------------------------------------------------------- one run over a manifest
def _question_waveform(manifest: Path, rows: list[dict], index: int, mode: str | None, noise_db: float | None = None):
    """The question audio of rows[index] as shortcut `mode` replaces it, or with white noise at `noise_db` dB SNR:
    (wav [C, T], rate, the other row or None)."""
    wav, rate = audio_io.load(manifest / rows[index]["question_audio"])
    if mode is None:
        from s2s.data.augment import add_noise

        return wav if noise_db is None else add_noise(wav, noise_db, seed=index), rate, None
    other = None
    if mode == "swap":
        other = rows[(index + 1) % len(rows)]
        other_wav, rate = audio_io.load(manifest / other["question_audio"])
        return shortcut_modes.replaced_question(mode, wav, other_wav), rate, other
    generator = torch.Generator().manual_seed(index)  # the same noise on every run
    return shortcut_modes.replaced_question(mode, wav, generator=generator), rate, other


def _thought_tokens(pipeline, thought: str) -> int:
    tokenizer = getattr(getattr(pipeline, "model", None), "tokenizer", None)
    if tokenizer is None:
        return len(thought.split())
    return len(tokenizer(thought, add_special_tokens=False)["input_ids"])


def scores(examples: list[dict]) -> dict:
    """Accuracy of the thought's, the reply text's and (with a judge) the heard answers; reply WER/CER; length."""
    answers = [e["answer"] for e in examples]
    abstained = sum(e.get("abstained", False) for e in examples)
    declined = sum(e.get("declined", False) for e in examples)
    figures = {"n": len(examples), "abstained": abstained / max(1, len(examples)),
               "declined": declined / max(1, len(examples))}  # "out of scope" said, a share of all questions
    for name, field in (("accuracy_thought", "thought_answer"), ("accuracy_reply_text", "reply_text_answer")):
        metric = AnswerAccuracy()
        metric.update([e[field] for e in examples], answers)
        figures[name] = float(metric.compute())
    second = [e for e in examples if e.get("sphinx_heard") is not None]
    figures["accuracy_spoken_sphinx"] = None
    if second:
        accuracy = AnswerAccuracy()
        accuracy.update([e["sphinx_answer"] for e in second], [e["answer"] for e in second])
        figures["accuracy_spoken_sphinx"] = float(accuracy.compute())
    judged = [e for e in examples if e.get("heard") is not None]
    figures.update(accuracy_spoken=None, wer=None, cer=None)
    if judged:
        accuracy, rates = AnswerAccuracy(), ReplyErrorRates()
        accuracy.update([e["spoken_answer"] for e in judged], [e["answer"] for e in judged])
        rates.update([e["heard"] for e in judged], [e["reply"] or "" for e in judged])  # no reply text: skipped
        errors = rates.compute()
        figures.update(accuracy_spoken=float(accuracy.compute()), wer=_number(errors["wer"]),
                       cer=_number(errors["cer"]))
    # Perception apart from reasoning: what the model's own hearing wrote against the written question.
    heard = [e for e in examples if e.get("question_heard") is not None]
    figures.update(hearing_cer=None, numbers_heard=None, accuracy_when_numbers_heard=None)
    if heard:
        from torchmetrics.text import CharErrorRate

        numbers = NumbersHeard()
        numbers.update([e["question_heard"] for e in heard], [e["question_written"] for e in heard])
        cer = CharErrorRate()
        cer.update([" ".join(e["question_heard"].split()) for e in heard],
                   [" ".join(e["question_written"].split()) for e in heard])
        right = [e for e in heard if NumbersHeard.right(e["question_heard"], e["question_written"])]
        figures.update(hearing_cer=_number(cer.compute()), numbers_heard=float(numbers.compute()),
                       accuracy_when_numbers_heard=(sum(e["thought_correct"] for e in right) / len(right)
                                                    if right else None))
    figures.update(listener_scores(examples))
    compared = [e["reply_mcd_db"] for e in examples if e.get("reply_mcd_db") is not None]
    figures["reply_mcd_db"] = statistics.mean(compared) if compared else None
    figures["thought_tokens_mean"] = None
    if examples:
        thought_tokens = MeanMetric()
        thought_tokens.update(torch.tensor([float(e["thought_tokens"]) for e in examples]))
        figures["thought_tokens_mean"] = _number(thought_tokens.compute())
    return figures


def _grouped(examples: list[dict], field: str) -> dict:
    groups = defaultdict(list)
    for example in examples:
        groups[str(example.get(field) or "unknown")].append(example)
    return {name: scores(group) for name, group in sorted(groups.items())}


def read_rows(manifest: str | Path, limit: int | None = None) -> list[dict]:
    """The first `limit` examples of a spoken reasoning manifest, each checked for the fields evaluation reads."""
    rows = read_manifest(manifest)[:limit]
    if not rows:
        raise ValueError(f"{manifest} has no examples to evaluate")
    for n, row in enumerate(rows):
        missing = [name for name in REQUIRED_FIELDS if not row.get(name)]
        if missing:
            raise ValueError(f"{manifest}: example {row.get('id', n)} has no {', '.join(missing)}; s2s evaluate "
                             "needs a spoken reasoning manifest (s2s data synth)")
    return rows


AHEAD = 16  # typed questions a pretrained thinker writes at once in evaluation


def answer_given(reply) -> str | None:
    """The answer a reply gives, written as a corpus row's `answer` is: the thought's answer, or OUT_OF_SCOPE where
    the model declined (declining is the right answer to a question out of scope, and a wrong one elsewhere)."""
    return abstain.OUT_OF_SCOPE if getattr(reply, "abstain_reason", None) == abstain.OUT_OF_SCOPE else reply.answer


def _example(pipeline, row: dict, reply) -> dict:
    """One answered question as `scores` reads it: what was asked and heard, the answers of the thought and the
    reply text (declining is the answer to a question out of scope), whether each is right, and the timings."""
    reply_text_answer = spoken_answer(reply.reply_text, row["answer"])
    declined = getattr(reply, "abstain_reason", None) == abstain.OUT_OF_SCOPE
    answer = answer_given(reply)
    example = {"id": row["id"], "family": row.get("family", "unknown"), "split": row.get("split"),
               "question_voice": row.get("question_voice"), "question_engine": row.get("question_engine"),
               "abstained": getattr(reply, "abstained", False), "answer": row["answer"], "reply": row.get("reply"),
               "question_written": row["question_written"], "question_heard": reply.question_heard,
               "declined": declined, "thought_answer": answer, "reply_text": reply.reply_text,
               "reply_text_answer": abstain.OUT_OF_SCOPE if declined else reply_text_answer,
               "thought_correct": answer == row["answer"],
               "reply_text_correct": (abstain.OUT_OF_SCOPE if declined else reply_text_answer) == row["answer"],
               "thought_chars": len(reply.thought), "thought_tokens": _thought_tokens(pipeline, reply.thought),
               **reply.timings}
    return example


def _listened(listener, reply, answer: str) -> dict:
    """What the independent listener heard in the reply, and in the same words said by the reference voice."""
    heard = hear(listener, reply.waveform, reply.sample_rate)
    reference = hear(listener, *reference_reply(reply.reply_text))
    return {"listened": True, "listener_heard": heard, "listener_answer": spoken_answer(heard, answer),
            "listener_reference_heard": reference, "listener_reference_answer": spoken_answer(reference, answer)}


def evaluate_manifest(pipeline, manifest: str | Path, limit: int | None = None, question: str = "audio",
                      progress: bool = False, judge=None, shortcut: str | None = None, sphinx=None,
                      noise_db: float | None = None, listener=None, **options) -> dict:
    """Answer every question of `manifest` (`question`: "audio" or "text") and score it.

    `judge` (a character CTCRecognizer or its folder) transcribes each reply's
    audio: the spoken answer is parsed from that transcript, and the reply's
    WER and CER are measured against the manifest's `reply` text. Without
    one those figures are None. `sphinx` (a `SphinxJudge`, `s2s/eval/sphinx.py`) is a second, independent
    listener: `accuracy_spoken_sphinx`. `shortcut` ("silence", "noise" or "swap")
    replaces each question's audio first; in swap mode each example records
    the other row's answer as `other_answer`. `noise_db` adds white noise at that SNR to every question.
    `listener` (`s2s/eval/listener.py`) hears each reply and the same reply said by the reference voice.

    Returns {"n", "accuracy_thought", "accuracy_reply_text", "accuracy_spoken", "wer", "cer",
    "thought_tokens_mean", "question", "shortcut", "judge", "per_family", "per_voice", "ttfa_ms_p50",
    "ttfa_ms_p90", "total_ms_p50", "total_ms_p90", "rtf_p50", "rtf_p90", "thought_chars_mean", "examples"}.
    `options` go to the pipeline (temperature, max_thought_tokens ...).
    """
    if question not in ("audio", "text"):
        raise ValueError(f"question must be 'audio' or 'text', got {question!r}")
    if shortcut is not None and (shortcut not in shortcut_modes.MODES or question != "audio"):
        raise ValueError(f"shortcut must be one of {', '.join(shortcut_modes.MODES)} with audio questions, "
                         f"got {shortcut!r} with {question} questions")
    manifest = Path(manifest)
    rows = read_rows(manifest, limit)
    judge = None if judge is None else load_judge(judge)
    mcd = MelCepstralDistortion()  # one cepstral front end for every reply
    examples = []
    for n, row in enumerate(rows):
        other = None
        if question == "text" and n % AHEAD == 0 and hasattr(pipeline, "think_ahead"):  # a thinker: B at once
            pipeline.think_ahead([r["question_written"] for r in rows[n:n + AHEAD]], **options)
        if question == "text":
            reply = pipeline(text=row["question_written"], **options)
        elif shortcut is None and noise_db is None:
            reply = pipeline(manifest.parent / row["question_audio"], **options)
        else:
            wav, rate, other = _question_waveform(manifest.parent, rows, n, shortcut, noise_db)
            reply = pipeline(wav, rate, **options)
        example = _example(pipeline, row, reply)
        if other is not None:
            example["other_answer"] = other["answer"]
        if judge is not None:
            heard = hear(judge, reply.waveform, reply.sample_rate)
            example.update(heard=heard, spoken_answer=spoken_answer(heard, row["answer"]))
            example["spoken_correct"] = example["spoken_answer"] == row["answer"]
        if row.get("reply_audio") and row.get("reply") and reply.waveform.numel() \
                and normalise(reply.reply_text) == normalise(row["reply"]):  # the same words: compare the voices
            reference, rate = audio_io.load(manifest.parent / row["reply_audio"])
            example["reply_mcd_db"] = mcd.distortion_db(reply.waveform[0], reference.mean(0), reply.sample_rate, rate)
        if listener is not None:
            example.update(_listened(listener, reply, row["answer"]))
        if sphinx is not None:
            heard = hear(sphinx, reply.waveform, reply.sample_rate)
            example.update(sphinx_heard=heard, sphinx_answer=spoken_answer(heard, row["answer"]))
        examples.append(example)
        if progress:
            done = sum(e["thought_correct"] for e in examples)
            label = f"{question}" + (f", {shortcut}" if shortcut else "")
            print(f"\r[{label}] {n + 1}/{len(rows)} thought answers right: {done}", end="", flush=True)
    if progress:
        print()

    def timing(field: str) -> list[float]:
        return [e[field] for e in examples if e.get(field) is not None]

    ttfa, total, rtf = timing("ttfa_ms"), timing("total_ms"), timing("rtf")
    return {**scores(examples), "question": question, "shortcut": shortcut, "judge": judge is not None,
            "per_family": _grouped(examples, "family"), "per_voice": _grouped(examples, "question_voice"),
            **{f"{name}_p{q}": value for name, values in (("ttfa_ms", ttfa), ("total_ms", total), ("rtf", rtf))
               for q, value in zip((50, 90), _p50_p90(values))},
            "thought_chars_mean": statistics.mean(e["thought_chars"] for e in examples),
            "examples": examples}


# ---------------------------------------------------------------------- the shortcut test
def shortcut_test(pipeline, manifest: str | Path, limit: int | None = None, progress: bool = False,
                  **options) -> dict:
    """The manifest rerun with its question audio replaced by silence, noise and another question's audio.

    Returns {"chance": mean chance level over the rows' families, "silence": {...}, "noise": {...},
    "swap": {... "follows_audio"}}, each mode with n, accuracy_thought, accuracy_reply_text and chance.
    """
    runs = {mode: evaluate_manifest(pipeline, manifest, limit, "audio", progress=progress, shortcut=mode, **options)
            for mode in shortcut_modes.MODES}
    summaries = {mode: shortcut_modes.summarise(mode, run) for mode, run in runs.items()}
    return {"chance": summaries["silence"]["chance"], **summaries}


# ---------------------------------------------------------------------- everything, as `s2s evaluate` prints it
def _format_name(pipeline) -> str | None:
    return getattr(getattr(getattr(pipeline, "model", None), "format", None), "name", None)


def evaluate(pipeline, manifest: str | Path, limit: int | None = None, judge=None, shortcut: bool = False,
             progress: bool = False, sphinx=None, listener=None, **options) -> dict:
    """Audio and text runs over `manifest` (and the shortcut test when asked), summarised.

    The top level holds the headline figures (accuracy_thought, accuracy_spoken, accuracy_text, wer,
    ttfa_ms_p50, ttfa_ms_p90, shortcut, per_family ...); `runs` holds both runs in full, examples included.
    """
    judge_name = None if judge is None else str(judge) if isinstance(judge, (str, os.PathLike)) else "ctc"
    judge = None if judge is None else load_judge(judge)
    if judge is not None:
        judge_name = describe_judge(judge_name, judge)
    audio = evaluate_manifest(pipeline, manifest, limit, "audio", progress=progress, judge=judge, sphinx=sphinx,
                              listener=listener, **options)
    # The text run is scored on its thought alone (accuracy_text, the modality gap): its speech is not made.
    text = evaluate_manifest(pipeline, manifest, limit, "text", progress=progress,
                             **{**options, "max_speech_frames": 0})
    per_family = {}
    for family, figures in audio["per_family"].items():
        text_figures = text["per_family"].get(family, {})
        chance = shortcut_modes.mean_chance([family])
        per_family[family] = {**figures, "accuracy_text": text_figures.get("accuracy_thought"), "chance": chance}
    return {
        "n": audio["n"],
        "accuracy_thought": audio["accuracy_thought"],
        "accuracy_spoken": audio["accuracy_spoken"],
        "accuracy_spoken_sphinx": audio["accuracy_spoken_sphinx"],
        # The independent listener, among replies whose thought is right: the model's voice, the reference voice.
        "listener": None if listener is None else listener.name,
        **{name: audio[name] for name in ("listener_n", "accuracy_listener", "accuracy_listener_reference",
                                          "listener_ratio")},
        "accuracy_text": text["accuracy_thought"],
        "accuracy_reply_text": audio["accuracy_reply_text"],
        "modality_gap": text["accuracy_thought"] - audio["accuracy_thought"],
        "wer": audio["wer"], "cer": audio["cer"], "reply_mcd_db": audio["reply_mcd_db"],
        "hearing_cer": audio["hearing_cer"], "numbers_heard": audio["numbers_heard"],
        "accuracy_when_numbers_heard": audio["accuracy_when_numbers_heard"],
        "ttfa_ms_p50": audio["ttfa_ms_p50"], "ttfa_ms_p90": audio["ttfa_ms_p90"],
        "total_ms_p50": audio["total_ms_p50"], "total_ms_p90": audio["total_ms_p90"],
        "rtf_p50": audio["rtf_p50"], "rtf_p90": audio["rtf_p90"],
        "thought_tokens_mean": audio["thought_tokens_mean"],
        "chance": shortcut_modes.mean_chance([e["family"] for e in audio["examples"]]),
        "shortcut": shortcut_test(pipeline, manifest, limit, progress, **options) if shortcut else None,
        "per_family": per_family,
        "per_voice": audio["per_voice"],
        "judge": judge_name,
        "calculator": options.get("calculator", True),
        "speech_prior": options.get("speech_prior", 0.0),
        # Whether a word decoder said the reply's words (`s2s/lm/word_decoder.py`): on where the model has one.
        "word_decoder": options.get("word_decoder", True) and
        getattr(getattr(pipeline, "model", None), "word_decoder", None) is not None,
        "format": _format_name(pipeline),
        "manifest": str(manifest),
        # 95 % Wilson intervals: on a few hundred questions a figure is only known to a few points.
        "ci95": {name: wilson_interval(value, n) for name, value, n in (
            ("accuracy_thought", audio["accuracy_thought"], audio["n"]),
            ("accuracy_spoken", audio["accuracy_spoken"], audio["n"]),
            ("accuracy_text", text["accuracy_thought"], text["n"]))},
        "runs": {"audio": audio, "text": text},
    }
