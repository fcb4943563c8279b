"""Does the model reason right? Run the pipeline over a manifest and score the answers, per family.

Two answers are scored: the one in the thought ("So the answer is X.") and
the one in the reply text (read back from words, as a listener would). Each
question can be given as audio (heard) or as text, so the two runs together
measure the modality gap. Latency figures come with every run.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from s2s.data.manifest import read_manifest
from s2s.data.numbers import parse_time, words_to_number


def spoken_answer(text: str, expected: str) -> str | None:
    """The answer a listener hears in `text`, in the canonical form of `expected` (a time "9:45", or digits)."""
    if ":" in expected:
        time = parse_time(text)
        return None if time is None else f"{time[0]}:{time[1]:02d}"
    number = words_to_number(text)
    return None if number is None else str(number)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def evaluate_manifest(pipeline, manifest: str | Path, limit: int | None = None, question: str = "audio",
                      progress: bool = False, **options) -> dict:
    """Answer every question of `manifest` (`question`: "audio" or "text") and score it.

    Returns {"accuracy_thought", "accuracy_reply_text", "per_family": {family: {...}}, "ttfa_ms_p50",
    "ttfa_ms_p90", "total_ms_p50", "thought_chars_mean", "examples": [...]}.
    `options` go to the pipeline (temperature, max_thought_tokens ...).
    """
    if question not in ("audio", "text"):
        raise ValueError(f"question must be 'audio' or 'text', got {question!r}")
    manifest = Path(manifest)
    rows = read_manifest(manifest)[:limit]
    examples = []
    for n, row in enumerate(rows):
        if question == "audio":
            reply = pipeline(manifest.parent / row["question_audio"], **options)
        else:
            reply = pipeline(text=row["question_written"], **options)
        examples.append({"id": row["id"], "family": row["family"], "answer": row["answer"],
                         "thought_answer": reply.answer, "reply_text": reply.reply_text,
                         "thought_correct": reply.answer == row["answer"],
                         "reply_text_correct": spoken_answer(reply.reply_text, row["answer"]) == row["answer"],
                         "thought_chars": len(reply.thought), **reply.timings})
        if progress:
            done = sum(e["thought_correct"] for e in examples)
            print(f"\r{n + 1}/{len(rows)} thought answers right: {done}", end="", flush=True)
    if progress:
        print()
    by_family = defaultdict(list)
    for example in examples:
        by_family[example["family"]].append(example)

    def scores(group: list[dict]) -> dict:
        return {"n": len(group),
                "accuracy_thought": sum(e["thought_correct"] for e in group) / len(group),
                "accuracy_reply_text": sum(e["reply_text_correct"] for e in group) / len(group)}

    ttfa = [e["ttfa_ms"] for e in examples if e["ttfa_ms"] is not None]
    return {**scores(examples), "question": question,
            "per_family": {family: scores(group) for family, group in sorted(by_family.items())},
            "ttfa_ms_p50": _percentile(ttfa, 0.5), "ttfa_ms_p90": _percentile(ttfa, 0.9),
            "total_ms_p50": _percentile([e["total_ms"] for e in examples], 0.5),
            "thought_chars_mean": statistics.mean(e["thought_chars"] for e in examples),
            "examples": examples}
