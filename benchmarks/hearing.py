"""Every number heard: each of a model's ears alone, and the two ways of combining them, on spoken question sets.

For `--questions` questions of each `--manifest`, every ear of the model (`--ckpt`, default the shipped one)
hears each question once (`ear.hearing`; the speech alone, as the pipeline gives it: `question_speech`); from
those same hearings it counts the questions whose numbers were all heard right (`NumbersHeard`, the figure
`s2s evaluate` reports) for

  each ear alone;
  in turn       `FallbackHearing` at the model's `hearing_confidence` (the first sure ear, else the first ear):
                the baseline;
  cross-check   `CrossCheckedHearing` at the model's `hearing_cross_check` (each ear scores each ear's
                hypotheses: Whisper's 3 best beams and the CTC ear's transcript);
  either        an oracle that knows which hypothesis was right: the most any choice between them could give;
  w=A,B         with `--weights A,B ...`: the cross-check at other weights, from the same hearings (no timing),
                to choose weights on questions of your own;
  whole         with `--silence S`: each question recorded with S seconds of silence before and after it, as a
                recording started early and stopped late; the ears (cross-checked) given all of the recording
                instead of the speech the VAD found: the baseline for hearing the speech alone.

and the median milliseconds each costs on this CPU (in turn: the second ear only where the first was unsure;
cross-check: as a model hears, every ear at once and the scoring). Held-out sets say how the ears do where
nothing was tuned; the training-engine sets (`dev-*`) are where the weights and thresholds were chosen.

    python benchmarks/hearing.py --manifest data/synth/test/manifest.jsonl data/synth/piper/manifest.jsonl
    python benchmarks/hearing.py --manifest data/synth/test/manifest.jsonl --silence 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s import audio  # noqa: E402
from s2s.asr.whisper import forget_encodings  # noqa: E402
from s2s.data.manifest import read_manifest  # noqa: E402
from s2s.eval.metrics import NumbersHeard  # noqa: E402
from s2s.hearing.ears import CrossCheckedHearing, FallbackHearing, SeveralEars  # noqa: E402
from s2s.lm.model import SpeechReasoningLM  # noqa: E402
from s2s.pipeline import DEFAULT_MODEL, question_speech  # noqa: E402


def hear_all(cross_check: CrossCheckedHearing, rows: list[dict], folder: Path, silence: float = 0.0) -> list[dict]:
    """Each row's question heard by every ear (Whisper's `n_best` beams), and by the cross-checked ears as a
    model hears (the ears at once): [{"hearings": [...], "ms": [...], "cross_check_ms": ..., "written": ...}];
    with `silence` seconds of silence added before and after it, also "whole": the cross-check's text of all of
    the recording."""
    heard = []
    for row in rows:
        recorded, recorded_rate = audio.load(folder / row["question_audio"])
        pause = int(silence * recorded_rate)
        recorded = torch.nn.functional.pad(recorded, (pause, pause))
        # The speech alone, as a model hears it.
        wav, rate = question_speech(recorded, recorded_rate, ear=True) or (recorded, recorded_rate)
        hearings, ms = [], []
        for ear in cross_check.ears:
            forget_encodings()  # each ear alone pays for Whisper's encoder if it reads it
            start = time.perf_counter()
            hearings.append(ear.hearing(wav, rate, cross_check.n_best))
            ms.append((time.perf_counter() - start) * 1000)
        forget_encodings()
        start = time.perf_counter()
        cross_check.listen(wav, rate)
        heard.append({"hearings": hearings, "ms": ms, "cross_check_ms": (time.perf_counter() - start) * 1000,
                      "written": row["question_written"]})
        if silence:
            heard[-1]["whole"] = cross_check.listen(recorded, recorded_rate).text
    return heard


def score(heard: list[dict], names: list[str], in_turn: FallbackHearing, cross_check: CrossCheckedHearing,
          other_weights: tuple[list[float], ...] = ()) -> dict:
    """Questions with every number heard, and median ms, for each ear and each way of combining them (and the
    cross-check at each of `other_weights`)."""
    def right(text: str, one: dict) -> bool:
        return NumbersHeard.right(text, one["written"])

    counts = {name: sum(right(h["hearings"][i].heard.text, h) for h in heard) for i, name in enumerate(names)}
    ms = {name: statistics.median(h["ms"][i] for h in heard) for i, name in enumerate(names)}
    fallback_ms, cross_ms = [], []
    counts["in turn"] = counts["cross-check"] = 0
    for h in heard:
        heards = [hearing.heard for hearing in h["hearings"]]
        counts["in turn"] += right(in_turn.choose(heards).text, h)
        sure = in_turn.first_sure(heards)  # the ears after it are never asked
        fallback_ms.append(sum(h["ms"][:len(heards) if sure is None else sure + 1]))
        counts["cross-check"] += right(cross_check.choose(h["hearings"]).text, h)
        cross_ms.append(h["cross_check_ms"])
    counts["either"] = sum(any(right(hypothesis.heard.text, h) for one in h["hearings"]
                               for hypothesis in one.hypotheses) for h in heard)
    if heard and "whole" in heard[0]:
        counts["whole"] = sum(right(h["whole"], h) for h in heard)
    for weights in other_weights:
        weighed = CrossCheckedHearing(cross_check.ears, weights, cross_check.n_best)
        counts[weight_name(weights)] = sum(right(weighed.choose(h["hearings"]).text, h) for h in heard)
    ms.update({"in turn": statistics.median(fallback_ms), "cross-check": statistics.median(cross_ms)})
    return {"n": len(heard), "heard": counts, "ms": ms}


def weight_name(weights: list[float]) -> str:
    return "w=" + ",".join(f"{w:g}" for w in weights)


def parse_weights(text: str) -> list[float]:
    """"1,0.5" -> [1.0, 0.5]: one positive weight per ear."""
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        weights = []
    if not weights or not all(w > 0 for w in weights):
        raise argparse.ArgumentTypeError(f"--weights takes one positive number per ear, comma-separated (1,0.5), "
                                         f"got {text!r}")
    return weights


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=DEFAULT_MODEL, help="model folder (default: the shipped one)")
    parser.add_argument("--manifest", type=Path, nargs="+", required=True, help="spoken question manifests")
    parser.add_argument("--questions", type=int, default=200, help="questions of each manifest (default 200)")
    parser.add_argument("--weights", type=parse_weights, nargs="+", default=[],
                        help="cross-check weights to compare with the model's, one per ear: 1,1 1,2 ...")
    parser.add_argument("--silence", type=float, default=0.0,
                        help="seconds of silence recorded before and after each question; adds the cross-check "
                             "on the whole recording (column whole) beside the speech alone (default 0: none)")
    args = parser.parse_args(argv)
    if not 0 <= args.silence <= 20:
        sys.exit(f"benchmarks/hearing.py: --silence takes 0 to 20 seconds, got {args.silence}")
    for manifest in args.manifest:
        if not manifest.is_file():
            sys.exit(f"benchmarks/hearing.py: no manifest at {manifest}; render one with `s2s data synth --out "
                     "data/synth/test --n 200 --seed 3 --split test`")
    model = SpeechReasoningLM.from_pretrained(args.ckpt)
    if not isinstance(model.hearing, SeveralEars):
        sys.exit(f"benchmarks/hearing.py: {args.ckpt} hears with one ear; it compares a model's several ears")
    ears, options = list(model.hearing.ears), model.init_args
    in_turn = FallbackHearing(ears, options.get("hearing_confidence") or 0.93)
    cross_check = CrossCheckedHearing(ears, options.get("hearing_cross_check") or [1.0] * len(ears))
    for weights in args.weights:
        if len(weights) != len(ears):
            sys.exit(f"benchmarks/hearing.py: --weights {weight_name(weights)[2:]} gives {len(weights)} weights to "
                     f"{len(ears)} ears; give one per ear, in the order of the model's hearing")
    names = [ear.spec if hasattr(ear, "spec") else "CTC ear" if ear.name == "hearing" else f"CTC ear {ear.name}"
             for ear in ears]
    rows = []
    for manifest in args.manifest:
        questions = read_manifest(manifest)[:args.questions]
        heard = hear_all(cross_check, questions, manifest.parent, args.silence)
        rows.append({"manifest": str(manifest), **score(heard, names, in_turn, cross_check, tuple(args.weights))})
    ways = [*names, "in turn", "cross-check", "either", *(weight_name(w) for w in args.weights),
            *(["whole"] if args.silence else [])]
    recorded = f"; {args.silence:g} s of silence before and after each question" if args.silence else ""
    print(f"\nevery number heard ({args.ckpt.name}: in turn at {in_turn.thresholds}, cross-check weights "
          f"{cross_check.weights}{recorded}), questions right / n, median ms")
    print(f"{'manifest':<44} {'n':>4} " + " ".join(f"{way:>16}" for way in ways))
    for row in rows:
        cells = [f"{row['heard'][way]:>4d}" + (f" {row['ms'][way]:>6.0f} ms" if way in row["ms"] else "")
                 for way in ways]
        print(f"{Path(row['manifest']).parent.name:<44} {row['n']:>4} " + " ".join(f"{cell:>16}" for cell in cells))
    return rows


if __name__ == "__main__":
    main()
