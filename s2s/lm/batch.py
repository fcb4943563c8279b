"""Batched generation: B replies at once, one forward for all of them per step.

Sampling several replies to the same question (self-consistency, RL with verifiable rewards) or answering
several questions at once costs one forward per step instead of B. Each row is a `ReplyGenerator` with its
own phase machine, hooks and random generator, so a row writes exactly the reply it would write alone; only
the forward is shared:

    replies = generate_batch(model, [prompt_a, prompt_b], temperature=0.8, seeds=[0, 1])

Rows take different numbers of ids each step (the prompts differ in length, and ids written for the model
go in with the next id it chooses), so each step's new ids are right-padded and masked, and every row keeps
its own positions: a padded slot is never attended to and shifts no position. Drafts (speculation) are off:
taking drafted ids back would differ row by row. Audio is left to the caller (`codec.decode(reply_codes)`).
"""
from __future__ import annotations

import inspect
import time

import torch

from s2s.lm.generate import Reply, ReplyGenerator, reply_generator


class BatchedForward:
    """B sequences' step function through the backbone's own forward and one cache: (a list of B input vector
    runs [n_b, D], some possibly empty) -> B logits [V] after each row's last id (None for an empty run)."""

    def __init__(self, backbone, batch_size: int):
        self.backbone, self.cache = backbone, None
        parameters = inspect.signature(backbone.forward).parameters
        self.cache_name = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5
        self.lengths = [0] * batch_size  # real ids fed to each row so far: its next position
        self.mask = torch.zeros(batch_size, 0, dtype=torch.long, device=backbone.device)  # [B, slots]: 1 = real

    @torch.no_grad()
    def __call__(self, runs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        width = max(run.shape[0] for run in runs)
        dim, device = runs[0].shape[-1], self.mask.device
        vectors = torch.zeros(len(runs), width, dim, dtype=runs[0].dtype, device=device)
        new_mask = torch.zeros(len(runs), width, dtype=torch.long, device=device)
        for row, run in enumerate(runs):
            vectors[row, : run.shape[0]], new_mask[row, : run.shape[0]] = run, 1
        positions = torch.tensor(self.lengths, device=device)[:, None] + torch.arange(width, device=device)
        self.mask = torch.cat([self.mask, new_mask], dim=1)
        out = self.backbone(inputs_embeds=vectors, attention_mask=self.mask, position_ids=positions, use_cache=True,
                            **{self.cache_name: self.cache})
        self.cache = getattr(out, self.cache_name)
        self.lengths = [length + run.shape[0] for length, run in zip(self.lengths, runs)]
        return [out.logits[row, run.shape[0] - 1] if run.shape[0] else None for row, run in enumerate(runs)]


class BatchReplies:
    """B replies generated together: `step()` writes every unfinished row's next id (the ids written for the
    model first, then one shared forward) and returns (row, kind, value) events; `finish()` the Replies."""

    def __init__(self, rows: list[ReplyGenerator], forward: BatchedForward):
        self.rows, self.forward = rows, forward

    @property
    def done(self) -> bool:
        return all(row.done for row in self.rows)

    def step(self) -> list[tuple[int, str, object]]:
        events = []
        for b, row in enumerate(self.rows):  # ids written for the model need no forward before them
            while not row.done and (token := row.forced_id()) is not None:
                events += [(b, kind, value) for kind, value in row.write(token)]
        choosing = [not row.done for row in self.rows]
        if not any(choosing):
            return events
        runs = [row.pending_vectors() if chooses else _empty(row) for row, chooses in zip(self.rows, choosing)]
        for b, (row, logits) in enumerate(zip(self.rows, self.forward(runs))):
            if choosing[b]:
                row.fed(logits)
                events += [(b, kind, value) for kind, value in row.write(row.chosen_id(logits))]
        return events

    def finish(self) -> list[Reply]:
        return [row.finish()[-1][1] for row in self.rows]


def _empty(row: ReplyGenerator) -> torch.Tensor:
    return torch.zeros(0, row.model.backbone.config.hidden_size, device=row.device)


def generate_batch(model, prompts: list[torch.Tensor], *, heard: list | None = None, seeds: list[int] | None = None,
                   max_thought_tokens: int = 256, max_reply_tokens: int = 128, max_speech_frames: int = 500,
                   temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                   calculator: bool = False, speech_prior: float = 0.0, word_decoder: bool = True) -> list[Reply]:
    """B replies of `model` (in eval mode), one after each prompt [L_b] of `prompts`, generated together.

    `heard[b]` is row b's HeardQuestion (None for typed prompts); `seeds[b]` seeds row b's sampling (default
    0, 1, ..., B-1: several samples of one prompt differ). The other options are `stream`'s; each row's reply
    is the one `stream(..., speculate=0, fast=False)` writes alone with that seed, up to float rounding.
    """
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError("prompts must be a non-empty list of prompt ids [L] (one per reply); make each with "
                         "build_prompt")
    heard = list(heard) if heard is not None else [None] * len(prompts)
    seeds = list(seeds) if seeds is not None else list(range(len(prompts)))
    if len(heard) != len(prompts) or len(seeds) != len(prompts):
        raise ValueError(f"give one heard question and one seed per prompt: {len(prompts)} prompts, {len(heard)} "
                         f"heard, {len(seeds)} seeds")
    caps = {"max_thought_tokens": max_thought_tokens, "max_reply_tokens": max_reply_tokens,
            "max_speech_frames": max_speech_frames}
    sampling, start_s = {"temperature": temperature, "top_k": top_k, "top_p": top_p}, time.perf_counter()
    rows = [reply_generator(model, prompt_ids, None, caps=caps, sampling=sampling, seed=seed, start_s=start_s,
                            heard=question, calculator=calculator, speech_prior=speech_prior, word_decoder=word_decoder)
            for prompt_ids, question, seed in zip(prompts, heard, seeds)]
    replies = BatchReplies(rows, BatchedForward(model.backbone, len(rows)))
    while not replies.done:
        replies.step()
    return replies.finish()
