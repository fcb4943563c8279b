"""Does it hear anyone? Answers right for each shift away from the speech the model trained on, side by side.

A figure on the generator's own voices says little about a user's. Each row
here is one shift: the generator's held-out voices, each voice of an engine
no model trained on (festival's ked and slt, piper's joe: the engine split of
`s2s/data/engines.py`), the first manifest with white noise at 10 dB SNR, and
the same questions typed (no hearing at all, the ceiling). For each: thought
answers right, every number heard right, the ear's CER against the written
question, how often it abstained, and first audio (p50, hearing included).
The worst row is the one to quote.

    s2s evaluate --manifest data/synth/test/manifest.jsonl \\
                 --shifts data/synth/test-festival/manifest.jsonl data/synth/test-piper/manifest.jsonl
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from s2s.data.voices import is_held_out
from s2s.eval.reasoning import evaluate_manifest, scores

TEXT_ROW = "typed (no hearing)"


def shift_label(example: dict) -> str:
    """The shift a question's audio belongs to: its engine and, for engines with few voices, its voice."""
    engine, voice = example.get("question_engine") or "espeak", example.get("question_voice") or "unknown"
    if engine == "espeak":
        return "espeak-ng, held-out voices" if is_held_out(voice) else "espeak-ng, training voices"
    return voice if ":" in voice else f"{engine}:{voice}"


def _figures(examples: list[dict]) -> dict:
    ttfa = [e["ttfa_ms"] for e in examples if e.get("ttfa_ms") is not None and not e.get("abstained")]
    figures = scores(examples)
    return {name: figures[name] for name in ("n", "accuracy_thought", "numbers_heard", "hearing_cer", "abstained")} \
        | {"ttfa_ms_p50": statistics.median(ttfa) if ttfa else None}


def generalization(pipeline, manifests: list[str | Path], noise_db: float | None = 10.0, limit: int | None = None,
                   progress: bool = False, **options) -> dict:
    """Every question of `manifests` heard and answered, grouped by shift; the first manifest also with white
    noise at `noise_db` dB SNR and as typed text. Returns {"rows": {label: figures}, "worst": label}."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for manifest in manifests:
        for example in evaluate_manifest(pipeline, manifest, limit, "audio", progress, **options)["examples"]:
            groups[shift_label(example)].append(example)
    rows = {label: _figures(examples) for label, examples in groups.items()}
    if noise_db is not None:
        noisy = evaluate_manifest(pipeline, manifests[0], limit, "audio", progress, noise_db=noise_db, **options)
        label = " + ".join(sorted({shift_label(e) for e in noisy["examples"]}))
        rows[f"{label}, white noise {noise_db:g} dB SNR"] = _figures(noisy["examples"])
    worst = min(rows, key=lambda label: rows[label]["accuracy_thought"])  # of the heard rows: typed comes next
    typed = evaluate_manifest(pipeline, manifests[0], limit, "text", progress, **{**options, "max_speech_frames": 0})
    rows[TEXT_ROW] = _figures(typed["examples"])
    return {"rows": rows, "worst": worst, "manifests": [str(m) for m in manifests]}


def format_generalization(result: dict) -> str:
    """The table `s2s evaluate --shifts` prints, worst shift first, the typed ceiling last."""
    def pct(value):
        return "-" if value is None else f"{100 * value:.1f} %"

    rows = result["rows"]
    order = sorted((label for label in rows if label != TEXT_ROW), key=lambda label: rows[label]["accuracy_thought"])
    lines = [f"{'shift':48s} {'n':>4s} {'right':>8s} {'numbers':>8s} {'CER':>6s} {'abstain':>8s} {'1st audio':>9s}"]
    for label in order + [TEXT_ROW]:
        f = rows[label]
        cer = "-" if f["hearing_cer"] is None else f"{f['hearing_cer']:.3f}"
        ttfa = "-" if f["ttfa_ms_p50"] is None else f"{f['ttfa_ms_p50']:.0f} ms"
        lines.append(f"{label:48s} {f['n']:4d} {pct(f['accuracy_thought']):>8s} {pct(f['numbers_heard']):>8s} "
                     f"{cer:>6s} {pct(f['abstained']):>8s} {ttfa:>9s}")
    lines.append(f"worst: {result['worst']} ({pct(rows[result['worst']]['accuracy_thought'])} right)")
    return "\n".join(lines)
