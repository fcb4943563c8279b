"""Codebook patterns: how a grid of codes [K, F] becomes sequence steps, and back.

A codec gives K codes a frame; a language model moves one step at a time. A
pattern decides which codes share a step. It is a small named object with
`build` and `revert` that round-trip exactly (the idea of audiocraft's
`codebooks_patterns.py`), so no index arithmetic leaks into the model.

    codes [K=2, F=3]      flat: K*F steps, one id a step     delay: F+K-1 steps, K ids a step
    k0: a0 a1 a2          a0 b0 a1 b1 a2 b2                   step  0  1  2  3
    k1: b0 b1 b2                                              k0    a0 a1 a2 ·
                                                              k1    ·  b0 b1 b2

Flat predicts one code at a time, each conditioned on every code before it:
exact, but the sequence is K times longer. Delay (MusicGen) predicts K codes
a step with K heads, from the sum of the K embeddings of the step before;
codebook k lags k steps, so codebook k of frame f is predicted one step after
codebook k-1 of the same frame was read. MusicGen found it keeps most of the
quality of flat at 1/K of the steps.

Both give joint-vocabulary ids (`JointVocab`): one embedding table reads
either, and the empty cells of the delay pattern hold `<speech_pad>`.
"""
from __future__ import annotations

import torch

from s2s.lm.vocab import JointVocab


def _check_codes(codes: torch.Tensor, num_codebooks: int, pattern: str) -> torch.Tensor:
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.shape[0] != num_codebooks:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"the {pattern} pattern takes codes [K={num_codebooks}, F], got {shape}")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"codes must be integer indices, got dtype {codes.dtype}")
    return codes.long()


class FlatPattern:
    """Frame-major: frame f becomes K consecutive ids, codebook 0 first. codes [K, F] <-> ids [K*F]."""

    name = "flat"

    def __init__(self, vocab: JointVocab):
        self.vocab = vocab

    def steps_for(self, frames: int) -> int:
        """Sequence positions taken by `frames` frames."""
        return self.vocab.num_codebooks * frames

    def build(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> speech ids [K*F]: a0 b0 c0 a1 b1 c1 ..."""
        codes = _check_codes(codes, self.vocab.num_codebooks, self.name)
        codebooks = torch.arange(self.vocab.num_codebooks)[:, None]
        return self.vocab.speech_id(codebooks, codes).T.reshape(-1)

    def revert(self, steps: torch.Tensor, strict: bool = True) -> torch.Tensor:
        """speech ids [L] -> codes [K, L // K].

        Strict: every id must be speech of codebook `position % K` and L a
        multiple of K. Not strict (generated ids): keep the whole frames before
        the first id out of place, dropping a trailing partial frame.
        """
        vocab, k = self.vocab, self.vocab.num_codebooks
        if steps.dim() != 1:
            raise ValueError(f"the flat pattern reverts ids [L], got shape {tuple(steps.shape)}")
        steps = steps.long()
        expected_codebook = torch.arange(steps.numel()) % k
        in_place = vocab.is_speech(steps) & ((steps - vocab.speech_start) // vocab.codebook_size == expected_codebook)
        out_of_place = (~in_place).nonzero()
        first_bad = int(out_of_place[0]) if len(out_of_place) else steps.numel()
        if strict and first_bad < steps.numel():
            raise ValueError(f"flat speech: position {first_bad} should hold codebook {first_bad % k}, "
                             f"found {vocab.describe(steps[first_bad])}")
        if strict and steps.numel() % k:
            raise ValueError(f"flat speech: {steps.numel()} ids end with a partial frame "
                             f"({steps.numel() % k} of {k} codebooks)")
        frames = first_bad // k
        kept = steps[: frames * k].reshape(frames, k).T
        return (kept - vocab.speech_start) % vocab.codebook_size


class DelayPattern:
    """MusicGen delay: codebook k shifted right by k steps. codes [K, F] <-> ids [K, F + K - 1]."""

    name = "delay"

    def __init__(self, vocab: JointVocab):
        self.vocab = vocab

    def steps_for(self, frames: int) -> int:
        """Sequence positions taken by `frames` frames (no frames, no steps: there is nothing to delay)."""
        return frames + self.vocab.num_codebooks - 1 if frames > 0 else 0

    def build(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> ids [K, F+K-1]: codebook k of frame f at step f+k, `<speech_pad>` elsewhere."""
        codes = _check_codes(codes, self.vocab.num_codebooks, self.name)
        frames = codes.shape[1]
        ids = self.vocab.speech_id(torch.arange(codes.shape[0])[:, None], codes)
        steps = torch.full((codes.shape[0], self.steps_for(frames)), self.vocab.speech_pad, dtype=torch.long)
        for k in range(codes.shape[0]):
            steps[k, k: k + frames] = ids[k]
        return steps

    def revert(self, steps: torch.Tensor, strict: bool = True) -> torch.Tensor:
        """ids [K, S] -> codes [K, S - K + 1].

        Strict: every cell must be what `build` puts there (speech of its
        codebook, or `<speech_pad>`). Not strict (generated ids): keep the
        frames before the first frame with a cell out of place, ignore pads,
        and drop frames whose later codebooks were not generated yet.
        """
        vocab, k = self.vocab, self.vocab.num_codebooks
        if steps.dim() != 2 or steps.shape[0] != k:
            raise ValueError(f"the delay pattern reverts ids [K={k}, S], got shape {tuple(steps.shape)}")
        steps, num_steps = steps.long(), steps.shape[1]
        if strict and 0 < num_steps < k:
            raise ValueError(f"delay pattern: {num_steps} steps cannot hold a frame of {k} codebooks "
                             f"(a frame needs {k} steps)")
        frames = max(num_steps - k + 1, 0)
        codebooks = torch.arange(k)[:, None]
        cells = steps.gather(1, torch.arange(frames)[None, :] + codebooks)  # [K, frames]: frame f of codebook k
        in_place = vocab.is_speech(cells) & ((cells - vocab.speech_start) // vocab.codebook_size == codebooks)
        bad_frames = (~in_place.all(0)).nonzero()
        first_bad = int(bad_frames[0]) if len(bad_frames) else frames
        if strict and first_bad < frames:
            row = int((~in_place[:, first_bad]).nonzero()[0])
            raise ValueError(f"delay pattern: step {first_bad + row} of codebook {row} should hold frame {first_bad}, "
                             f"found {vocab.describe(cells[row, first_bad])}")
        if strict:
            pads = torch.ones_like(steps, dtype=torch.bool)
            for row in range(k):
                pads[row, row: row + frames] = False
            wrong = (pads & (steps != vocab.speech_pad)).nonzero()
            if len(wrong):
                row, step = (int(i) for i in wrong[0])
                raise ValueError(f"delay pattern: step {step} of codebook {row} should be <speech_pad>, "
                                 f"found {vocab.describe(steps[row, step])}")
        return (cells[:, :first_bad] - vocab.speech_start) % vocab.codebook_size


PATTERNS = {"flat": FlatPattern, "delay": DelayPattern}
