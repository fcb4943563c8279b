"""Sampling several replies at once: batched generation against the same replies one after another.

Self-consistency and RL with verifiable rewards draw several sampled replies (thought, reply text and speech
ids; no audio decoded) to each question. With the shipped default model, for each of `--questions` typed
questions of the generator's test distribution (seed 3), `--samples` replies at temperature 0.8:

  one by one   `generate` per reply, FastDecoder and drafts (the fastest single-reply path), seeds 0..B-1;
  batched      `generate_batch`: all B replies of a question in one batch, one forward per step.

It prints ids per second for each (median over questions, after a warm-up) and checks that the batch wrote
the replies that `generate(..., fast=False, speculate=0)` writes alone (rounding apart, rarely a sampled id
may differ: the count is printed).

    python benchmarks/batch.py                       # 6 questions x 8 samples
    python benchmarks/batch.py --samples 16 --questions 4
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s.data.problems import generate_problem  # noqa: E402
from s2s.lm.batch import generate_batch  # noqa: E402
from s2s.lm.generate import generate  # noqa: E402
from s2s.pipeline import DEFAULT_MODEL, S2SPipeline  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=DEFAULT_MODEL, help="model folder (default: the shipped one)")
    parser.add_argument("--questions", type=int, default=6, help="typed questions (default 6)")
    parser.add_argument("--samples", type=int, default=8, help="replies sampled per question, B (default 8)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    args = parser.parse_args(argv)
    if args.questions < 1 or args.samples < 1:
        sys.exit("benchmarks/batch.py: --questions and --samples must be at least 1")
    pipeline = S2SPipeline.from_pretrained(args.ckpt)
    model, rng = pipeline.model, random.Random(3)
    options = {"temperature": args.temperature, "calculator": True}
    seeds = list(range(args.samples))
    rows = {"one by one": [], "batched": []}
    differing = 0
    for i in range(args.questions + 1):  # the first is a warm-up
        prompt, _ = pipeline.prompt(text=generate_problem(rng).question_written)
        start = time.perf_counter()
        alone = [generate(model, prompt, seed=seed, **options) for seed in seeds]
        one_s = time.perf_counter() - start
        start = time.perf_counter()
        together = generate_batch(model, [prompt] * args.samples, seeds=seeds, **options)
        batch_s = time.perf_counter() - start
        if i == 0:
            continue
        ids = sum(len(reply.generated_ids) for reply in together)
        rows["one by one"].append(sum(len(reply.generated_ids) for reply in alone) / one_s)
        rows["batched"].append(ids / batch_s)
        differing += sum(a.ids.tolist() != b.ids.tolist() for a, b in zip(alone, together))
    print(f"{args.questions} questions x {args.samples} samples at temperature {args.temperature:g}, "
          f"{model.format.name}, {args.ckpt.name}")
    print(f"{'generator':<12} {'ids/s (median)':>15}")
    for name, values in rows.items():
        print(f"{name:<12} {statistics.median(values):>15.0f}")
    print(f"replies that differ from the one-by-one ones (float rounding in sampling): {differing} of "
          f"{args.questions * args.samples}")
    return {name: statistics.median(values) for name, values in rows.items()} | {"differing": differing}


if __name__ == "__main__":
    main()
