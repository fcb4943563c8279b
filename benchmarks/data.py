"""Data pipeline throughput: synthesise and tokenise a spoken reasoning corpus on this machine.

Target (issue 4): 20,000 examples synthesised (question and reply audio) and
tokenised with s2s-tiny in under 15 minutes on 2 CPU cores. Baseline printed
beside it: the plain rate of espeak-ng itself on one core, rendering the same
questions without any of our pipeline (manifest, trimming, writing wavs).

    python benchmarks/data.py                 # 20,000 examples (about 15 minutes)
    python benchmarks/data.py --n 500         # a quick look
"""
from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from s2s.codecs import load_codec
from s2s.data import espeak
from s2s.data.problems import generate_problem
from s2s.data.synth import synthesize
from s2s.data.token_cache import tokenize_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--codec", default="s2s-tiny")
    parser.add_argument("--keep", default=None, help="keep the corpus in this folder instead of a temporary one")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="s2s-bench-data-"))

    rng = random.Random(0)
    start = time.perf_counter()
    for _ in range(100):
        espeak.render(generate_problem(rng).question, "en-us")
    raw_rate = 100 / (time.perf_counter() - start)

    start = time.perf_counter()
    manifest = synthesize(work / "corpus", n=args.n, seed=0, split="train")
    synth_s = time.perf_counter() - start
    codec = load_codec(args.codec)
    start = time.perf_counter()
    cache = tokenize_manifest(manifest, codec)
    tokenize_s = time.perf_counter() - start
    total_s = synth_s + tokenize_s

    print(f"baseline: raw espeak-ng, one core          {raw_rate:7.1f} utterances/s")
    print(f"synthesis (question + reply audio, 2 cores) {2 * args.n / synth_s:7.1f} utterances/s "
          f"= {args.n / synth_s:.1f} examples/s ({synth_s:.0f} s)")
    print(f"tokenisation with {codec.name:<10}               {len(cache) / tokenize_s:7.1f} files/s "
          f"({tokenize_s:.0f} s)")
    print(f"total for {args.n} examples: {total_s / 60:.1f} min ({'within' if total_s < 900 else 'over'} the "
          f"15-minute target for 20,000: projected {total_s * 20000 / args.n / 60:.1f} min)")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
