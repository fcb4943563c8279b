"""Does it generalise? Answers right for each shift away from what the model trained on, side by side.

A figure on the generator's own voices and sentences says little about a
user's. Each row here is one shift: the generator's held-out voices, each
voice of an engine no model trained on (festival's ked and slt, piper's joe:
the engine split of `s2s/data/engines.py`), questions phrased in ways never
trained on (`s2s data synth --split phrasing`) and sizes just beyond training
(`--split stretch`, `s2s/data/grammar.py`), the first manifest with white
noise at 10 dB SNR, and every question split typed (no hearing at all, the
ceiling of what hearing can reach). Questions outside what the model can work
on (`--families out_of_scope`) get their own rows: for them "right" is the
model declining. For each row: thought answers right, every number heard
right, the ear's CER against the written question, how often it abstained
(heard no question) or declined (said the question is out of scope), and
first audio (p50, hearing included). The worst row is the one to quote.

    s2s evaluate --manifest data/synth/test/manifest.jsonl \\
                 --shifts data/synth/test-festival/manifest.jsonl data/synth/test-piper/manifest.jsonl \\
                          data/synth/phrasing/manifest.jsonl data/synth/stretch/manifest.jsonl
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from s2s.data.problems import OUT_OF_SCOPE_FAMILY
from s2s.data.voices import is_held_out
from s2s.eval.reasoning import evaluate_manifest, read_rows, scores

TEXT_ROW = "typed (no hearing)"  # the typed row of in-distribution questions; other typed rows add their split


def question_label(example: dict) -> str:
    """Which questions an example's are: "" for the generator's in-distribution ones, else its split or scope."""
    if example.get("family") == OUT_OF_SCOPE_FAMILY:
        return "out-of-scope questions"
    split = example.get("split")
    return f"{split} split" if split in ("phrasing", "stretch") else ""


def shift_label(example: dict) -> str:
    """The shift a question belongs to: its engine and, for engines with few voices, its voice; and its
    question split (phrasing, stretch) or scope when those are not the generator's training ones."""
    engine, voice = example.get("question_engine") or "espeak", example.get("question_voice") or "unknown"
    if engine == "espeak":
        heard = "espeak-ng, held-out voices" if is_held_out(voice) else "espeak-ng, training voices"
    else:
        heard = voice if ":" in voice else f"{engine}:{voice}"
    questions = question_label(example)
    return f"{questions}, {heard}" if questions else heard


def _typed_label(example: dict) -> str:
    questions = question_label(example)
    return f"{TEXT_ROW}, {questions}" if questions else TEXT_ROW


def _figures(examples: list[dict]) -> dict:
    ttfa = [e["ttfa_ms"] for e in examples if e.get("ttfa_ms") is not None and not e.get("abstained")]
    figures = scores(examples)
    names = ("n", "accuracy_thought", "numbers_heard", "hearing_cer", "abstained", "declined")
    return {name: figures[name] for name in names} | {"ttfa_ms_p50": statistics.median(ttfa) if ttfa else None}


def generalization(pipeline, manifests: list[str | Path], noise_db: float | None = 10.0, limit: int | None = None,
                   progress: bool = False, heard_limit: int | None = None, **options) -> dict:
    """Every question of `manifests` heard and answered, grouped by shift; the first manifest also with white
    noise at `noise_db` dB SNR; every manifest's questions also typed. `limit`: the first N questions of each
    manifest; `heard_limit`: fewer of them heard (0: typed only, for a slow reasoner). Returns {"rows": {label:
    figures}, "worst": label of the worst heard row of in-scope questions (None when none was heard), "typed":
    the typed labels}."""
    heard = limit if heard_limit is None else heard_limit if limit is None else min(limit, heard_limit)
    groups: dict[str, list[dict]] = defaultdict(list)
    for manifest in manifests if heard != 0 else []:
        for example in evaluate_manifest(pipeline, manifest, heard, "audio", progress, **options)["examples"]:
            groups[shift_label(example)].append(example)
    rows = {label: _figures(examples) for label, examples in groups.items()}
    if noise_db is not None and heard != 0:
        noisy = evaluate_manifest(pipeline, manifests[0], heard, "audio", progress, noise_db=noise_db, **options)
        label = " + ".join(sorted({shift_label(e) for e in noisy["examples"]}))
        rows[f"{label}, white noise {noise_db:g} dB SNR"] = _figures(noisy["examples"])
    in_scope = [label for label in rows if not label.startswith("out-of-scope")]
    worst = min(in_scope or rows, key=lambda label: rows[label]["accuracy_thought"]) if rows else None
    typed: dict[str, list[dict]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for manifest in manifests:
        questions = {(_typed_label(row), row["question_written"]) for row in read_rows(manifest, limit)}
        if questions <= seen:  # another engine's copy of questions already typed
            continue
        seen |= questions
        run = evaluate_manifest(pipeline, manifest, limit, "text", progress, **{**options, "max_speech_frames": 0})
        for example in run["examples"]:
            typed[_typed_label(example)].append(example)
    for label, examples in typed.items():
        rows[label] = _figures(examples)
    return {"rows": rows, "worst": worst, "typed": sorted(typed), "manifests": [str(m) for m in manifests]}


def format_generalization(result: dict) -> str:
    """The table `s2s evaluate --shifts` prints: heard rows worst first, then the typed rows."""
    def pct(value):
        return "-" if value is None else f"{100 * value:.1f} %"

    rows = result["rows"]
    typed = [label for label in rows if label.startswith(TEXT_ROW)]
    heard = sorted((label for label in rows if label not in typed), key=lambda label: rows[label]["accuracy_thought"])
    lines = [f"{'shift':56s} {'n':>4s} {'right':>8s} {'numbers':>8s} {'CER':>6s} {'abstain':>8s} {'decline':>8s} "
             f"{'1st audio':>9s}"]
    for label in heard + sorted(typed):
        f = rows[label]
        cer = "-" if f["hearing_cer"] is None else f"{f['hearing_cer']:.3f}"
        ttfa = "-" if f["ttfa_ms_p50"] is None else f"{f['ttfa_ms_p50']:.0f} ms"
        lines.append(f"{label:56s} {f['n']:4d} {pct(f['accuracy_thought']):>8s} {pct(f['numbers_heard']):>8s} "
                     f"{cer:>6s} {pct(f['abstained']):>8s} {pct(f.get('declined')):>8s} {ttfa:>9s}")
    worst = result["worst"]
    lines.append(("no question heard: typed only" if worst is None else
                  f"worst: {worst} ({pct(rows[worst]['accuracy_thought'])} right)") +
                 '; on out-of-scope rows "right" is declining')
    return "\n".join(lines)
