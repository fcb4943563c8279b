"""Training throughput of the LM step: through Lightning against a bare PyTorch loop, same model, same batches.

One SpeechReasoningLM (a llama with random weights, sized like `configs/lm/reasoner-tiny.yaml` unless told
otherwise; codec s2s-tiny's vocabulary) trains `--steps` steps on the same fixed batches twice, from the same
initial weights:

  lightning  `L.Trainer.fit` with the module's own `training_step` and `configure_optimizers`, gradient
             clipping and the per-step LR schedule, as `s2s fit` runs it (no logger, no checkpoints, no
             progress bar: the machinery of a step, not of the run around it);
  bare       a plain loop doing the same work per step: `encode_batch`, `losses`, backward,
             clip_grad_norm_, optimizer.step, scheduler.step, zero_grad.

A batch holds think-then-speak rows of a written question, a thought, a reply and `--reply-frames` speech
frames (K ids each), so the ids per step are what the real corpus gives. Tokens are the non-pad ids of the
batches stepped on; throughput is tokens per second over the steps after `--warmup` steps (the first steps
pay for allocations and lazy initialisation). The target is lightning / bare >= 0.9.

    python benchmarks/train.py                                    # reasoner-tiny size: about 2 minutes here
    python benchmarks/train.py --dim 32 --layers 1 --steps 4 --warmup 1 --batch 2   # smoke run
"""
from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

import lightning as L
import torch

from s2s.data.datamodule import collate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import build_lm  # noqa: E402  (the generation benchmark's model: same sizes, same tokenizer)


def make_batches(n: int, batch_size: int, codebooks: int, codebook_size: int, reply_frames: int,
                 seed: int = 0) -> list[dict]:
    """`n` datamodule-style batches of arithmetic rows with random codes (no audio needed)."""
    rng, g = random.Random(seed), torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        items = []
        for _ in range(batch_size):
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            items.append({"family": "arithmetic", "question": f"what is {a} plus {b}",
                          "question_written": f"What is {a} + {b}?", "answer": str(a + b),
                          "thought": f"{a} + {b} = {a + b}.\nSo the answer is {a + b}.",
                          "reply": f"{a} plus {b} is {a + b}.",
                          "question_codes": torch.randint(0, codebook_size, (codebooks, 2 * reply_frames), generator=g),
                          "reply_codes": torch.randint(0, codebook_size, (codebooks, reply_frames), generator=g)})
        batches.append(collate(items))
    return batches


def count_tokens(lm, batches: list[dict]) -> list[int]:
    return [int(lm.encode_batch(batch)["attention_mask"].sum()) for batch in batches]


class StepClock(L.Callback):
    """Wall-clock of every training step (batch start to batch end, optimizer step included)."""

    def __init__(self):
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seconds.append(time.perf_counter() - self.start)


def run_lightning(lm, batches: list[dict], clip: float) -> list[float]:
    clock = StepClock()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=len(batches), precision="32-true",
                        gradient_clip_val=clip, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[clock])
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    trainer.fit(lm, train_dataloaders=loader)
    return clock.seconds


class StepsOnly:
    """What `time_aware_scheduler` reads of a trainer, for the bare loop: `max_steps` steps, no time limit."""

    def __init__(self, max_steps: int):
        self.max_steps, self.estimated_stepping_batches, self.callbacks = max_steps, max_steps, []


def run_bare(lm, batches: list[dict], clip: float) -> list[float]:
    """The same step as Lightning's: the module's own optimiser and schedule, stepped by hand."""
    lm._trainer = StepsOnly(len(batches))  # configure_optimizers builds its schedule from the run's length
    config = lm.configure_optimizers()
    lm._trainer = None
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lm.train()
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        loss = lm.losses(lm.encode_batch(batch))["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=None, help="default: 3 x dim")
    parser.add_argument("--codebooks", type=int, default=4)
    parser.add_argument("--text-vocab", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reply-frames", type=int, default=50, help="speech frames per reply (1 s of s2s-tiny)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.warmup >= args.steps:
        parser.error(f"--warmup ({args.warmup}) must be below --steps ({args.steps}): some steps must be timed")
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    lm = build_lm(args.dim, args.layers, args.heads, args.codebooks, args.ffn or 3 * args.dim, args.text_vocab,
                  train=True)
    batches = make_batches(args.steps, args.batch, lm.vocab.num_codebooks, lm.vocab.codebook_size, args.reply_frames)
    tokens = count_tokens(lm, batches)
    twin = copy.deepcopy(lm)

    results = {}
    for name, seconds in (("lightning", run_lightning(lm, batches, clip=1.0)),
                          ("bare", run_bare(twin, batches, clip=1.0))):
        timed = slice(args.warmup, None)
        results[name] = {"tokens_per_s": sum(tokens[timed]) / sum(seconds[timed]),
                         "ms_per_step": 1000 * sum(seconds[timed]) / len(seconds[timed])}
    ratio = results["lightning"]["tokens_per_s"] / results["bare"]["tokens_per_s"]
    params = sum(p.numel() for p in lm.parameters()) / 1e6
    print(f"LM training step, {params:.1f} M parameters, batch {args.batch}, "
          f"{sum(tokens) / len(tokens):.0f} tokens a step, {args.steps - args.warmup} timed steps "
          f"after {args.warmup} warm-up, {torch.get_num_threads()} threads")
    print(f"{'loop':<10} {'tokens/s':>10} {'ms/step':>9}")
    for name, row in results.items():
        print(f"{name:<10} {row['tokens_per_s']:>10.0f} {row['ms_per_step']:>9.1f}")
    print(f"ratio lightning / bare: {ratio:.3f} (target >= 0.9)")
    return {**results, "ratio": ratio}


if __name__ == "__main__":
    main()
