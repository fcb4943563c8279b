"""CTC prefix beam search with a character language model (shallow fusion).

Greedy CTC keeps the best label of every frame; the beam keeps the `beam`
best transcripts so far and scores each as

    ln P_ctc(transcript | audio) + alpha * ln P_lm(transcript) + beta * len(transcript)

so a spelling the audio nearly supports and the text model finds far likelier
wins ("fourty" -> "forty"). `beta` pays each character back the cost of the
LM's extra factor, which would otherwise favour short transcripts.
The result comes as greedy_segments gives it, (label, first frame, end frame)
runs, so everything that reads greedy runs (transcripts, the LM's hearing)
reads these too.
"""
from __future__ import annotations

import math
from collections import defaultdict

import torch

from s2s.asr.char_lm import END, CharNgramLM

NEG = -math.inf
_SURE_BLANK = math.log(0.9999)  # frames whose blank is surer than this only carry the beams on


def _add(a: float, b: float) -> float:
    """ln(e^a + e^b)."""
    if a == NEG:
        return b
    if b == NEG:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _offer(paths: dict, prefix: tuple, score: float, starts: tuple) -> None:
    """Keep `starts` as the prefix's label frames if this path to it is the likeliest seen in this frame."""
    if prefix not in paths or score > paths[prefix][0]:
        paths[prefix] = (score, starts)


def beam_segments(log_probs: torch.Tensor, length: int, alphabet: str, lm: CharNgramLM | None = None,
                  beam: int = 8, alpha: float = 0.6, beta: float = 1.0,
                  min_log_prob: float = -10.0, max_labels: int = 8) -> list[tuple[int, int, int]]:
    """The best transcript of one utterance's frames (log-probs [F, 1 + len(alphabet)], blank first) as
    (label, first frame, end frame) runs. In each frame only its `max_labels` likeliest labels above
    `min_log_prob` are tried, and a frame that is almost surely blank only carries the beams on: most frames
    of CTC output are, and skipping them is most of the speed."""
    if log_probs.dim() != 2 or log_probs.shape[1] != len(alphabet) + 1:
        raise ValueError(f"beam_segments takes log-probs [frames, {len(alphabet) + 1}] (blank + the alphabet), "
                         f"got {list(log_probs.shape)}")
    rows = log_probs[:length].float().tolist()
    beams: dict[tuple, list[float]] = {(): [0.0, NEG]}  # prefix -> [ln P ending in blank, ln P ending in its label]
    bonus, texts = {(): 0.0}, {(): ""}
    firsts: dict[tuple, tuple] = {(): ()}  # each label's first frame on the likeliest path to the prefix
    for t, frame in enumerate(rows):
        if frame[0] > _SURE_BLANK:  # almost surely a blank: no label can start or go on here
            beams = {prefix: [_add(blank, label) + frame[0], NEG] for prefix, (blank, label) in beams.items()}
            continue
        tried = sorted((c for c in range(1, len(frame)) if frame[c] > min_log_prob), key=frame.__getitem__,
                       reverse=True)[:max_labels]
        grown: dict[tuple, list[float]] = defaultdict(lambda: [NEG, NEG])
        paths: dict[tuple, tuple[float, tuple]] = {}  # prefix -> (score, firsts) of its likeliest path so far

        for prefix, (blank, label) in beams.items():
            total = _add(blank, label)
            same = grown[prefix]
            same[0] = _add(same[0], total + frame[0])
            _offer(paths, prefix, total + frame[0], firsts[prefix])
            last = prefix[-1] if prefix else None
            for c in tried:
                if c == last:  # the label goes on, or (after a blank) says the letter again
                    same[1] = _add(same[1], label + frame[c])
                    _offer(paths, prefix, label + frame[c], firsts[prefix])
                    longer_score = blank + frame[c]
                else:
                    longer_score = total + frame[c]
                if longer_score == NEG:
                    continue
                longer = prefix + (c,)
                if longer not in bonus:
                    char = alphabet[c - 1]
                    fused = alpha * lm.log_prob(texts[prefix], char) + beta if lm is not None else 0.0
                    bonus[longer], texts[longer] = bonus[prefix] + fused, texts[prefix] + char
                entry = grown[longer]
                entry[1] = _add(entry[1], longer_score)
                _offer(paths, longer, longer_score, firsts[prefix] + (t,))
        ranked = sorted(grown.items(), key=lambda item: _add(*item[1]) + bonus[item[0]], reverse=True)
        beams = dict(ranked[:beam])
        firsts = {prefix: paths[prefix][1] for prefix in beams}

    def final(prefix: tuple) -> float:
        ending = alpha * lm.log_prob(texts[prefix], END) if lm is not None else 0.0
        return _add(*beams[prefix]) + bonus[prefix] + ending

    best = max(beams, key=final)
    starts = firsts[best]
    return [(label, first, starts[i + 1] if i + 1 < len(starts) else max(length, first + 1))
            for i, (label, first) in enumerate(zip(best, starts))]
