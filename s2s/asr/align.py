"""Forced alignment: where each word of a known transcript is spoken, from a CTC recogniser's frames.

Why: a reply's speech is laid out word by word in the `word_aligned` format
(`s2s/lm/formats/word_aligned.py`), each word's text just ahead of its own frames, so a small
LM only has to say the word it has just written. The words' timing comes from
the judge (`s2s-judge-tiny`, a character CTC model) by Viterbi alignment: the
most likely CTC path that spells exactly the transcript.
"""
from __future__ import annotations

import torch

from s2s import audio

NEG_INF = float("-inf")


def ctc_align(log_probs: torch.Tensor, targets: list[int], blank: int = 0) -> list[int]:
    """The Viterbi CTC path of `targets` through log_probs [F, C]: for each frame, the index in `targets` of the
    label it emits, or -1 where it emits a blank. Raises ValueError when F frames cannot spell the targets."""
    frames, labels = log_probs.shape[0], len(targets)
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if frames < labels + repeats:
        raise ValueError(f"{frames} frames cannot spell {labels} labels ({repeats} repeated): the audio is too "
                         "short for its transcript")
    if labels == 0:
        return [-1] * frames
    extended = torch.full((2 * labels + 1,), blank, dtype=torch.long)  # blank, t1, blank, t2, ..., blank
    extended[1::2] = torch.tensor(targets)
    states = extended.numel()
    # A label may be reached from two states back when it differs from the label there (no blank needed).
    skip = torch.zeros(states, dtype=torch.bool)
    skip[3::2] = extended[3::2] != extended[1:-2:2]
    emit = log_probs.float()[:, extended]  # [F, S]
    score = torch.full((states,), NEG_INF)
    score[:2] = emit[0, :2]
    came_from = torch.zeros(frames, states, dtype=torch.long)
    index = torch.arange(states)
    for t in range(1, frames):
        stay = score
        step = torch.cat([score.new_full((1,), NEG_INF), score[:-1]])
        jump = torch.cat([score.new_full((2,), NEG_INF), score[:-2]])
        jump = torch.where(skip, jump, score.new_full((), NEG_INF))
        options = torch.stack([stay, step, jump])  # [3, S]
        best, move = options.max(0)
        score = best + emit[t]
        came_from[t] = index - move
    state = states - 1 if score[-1] >= score[-2] else states - 2
    if score[state] == NEG_INF:
        raise ValueError("no CTC path spells the transcript in these frames")
    path = [0] * frames
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state = int(came_from[t, state])
    return [s // 2 if s % 2 else -1 for s in path]


def word_starts(log_probs: torch.Tensor, words: list[list[int]], separator: int | None = None,
                blank: int = 0) -> list[float]:
    """Where each word starts, in frames (fractional), given log_probs [F, C] and each word's labels.

    The transcript aligned is the words joined by `separator` (the space
    label of a character recogniser, which it was trained to write between
    words). Word i > 0 starts halfway between the last frame of word i-1's
    labels and the first frame of its own, so the pause between them is
    shared; the first word starts at frame 0, with any silence before it. A
    word with no labels (nothing audible, such as "&" for a character judge)
    starts where the next one does, so it gets no frames. Where the frames
    are too few to spell the transcript, the words share them in proportion
    to their labels.
    """
    targets, spans = [], []  # spans: (index of the word's first label, of its last) in targets, or None
    for word in words:
        if not word:
            spans.append(None)
            continue
        if targets and separator is not None:
            targets.append(separator)
        spans.append((len(targets), len(targets) + len(word) - 1))
        targets += word
    try:
        path = ctc_align(log_probs, targets, blank)
    except ValueError:  # too few frames to spell it (very fast or cut speech): share them by letters
        sizes = [len(word) for word in words]
        total = sum(sizes) or 1
        return [log_probs.shape[0] * sum(sizes[:i]) / total for i in range(len(words))]
    first, last = {}, {}
    for t, target in enumerate(path):
        if target >= 0:
            first.setdefault(target, t)
            last[target] = t
    starts: list[float | None] = []
    previous_end = None
    for span in spans:
        if span is None:
            starts.append(None)
            continue
        starts.append(0.0 if previous_end is None else (previous_end + first[span[0]]) / 2)
        previous_end = last[span[1]]
    following = float(log_probs.shape[0])
    for i in range(len(starts) - 1, -1, -1):  # a wordless entry takes the next word's start (or the end)
        if starts[i] is None:
            starts[i] = following
        following = starts[i]
    return starts


@torch.no_grad()
def word_spans(recognizer, wav: torch.Tensor, sample_rate: int, text: str) -> list[tuple[str, float, float]]:
    """(word, start, end) in seconds for every whitespace word of `text` spoken in wav [T] (mono).

    `recognizer` is a `CTCRecognizer` with character labels (the judge); the
    spans tile the whole recording, so the last word ends at its end.
    """
    if recognizer.labels.kind != "chars":
        raise ValueError(f"forced alignment needs a recogniser with character labels, not {recognizer.labels.kind!r}")
    wav16 = audio.prepare(audio.as_batch(wav), sample_rate, 16000)[:, 0]  # [1, T]
    _, log_probs, lengths = recognizer(wav16, torch.tensor([wav16.shape[1]], device=wav16.device))
    frames = int(lengths[0])
    words = text.split()
    labels = [recognizer.labels.encode(word) for word in words]
    starts = word_starts(log_probs[0, :frames], labels, separator=recognizer.labels.index[" "])
    seconds = wav.numel() / sample_rate / frames
    ends = starts[1:] + [float(frames)]
    return [(word, start * seconds, end * seconds) for word, start, end in zip(words, starts, ends)]


def frames_per_word(spans: list[tuple[str, float, float]], frame_rate: float, total_frames: int) -> list[int]:
    """How many of a recording's `total_frames` codec frames (at `frame_rate`) each word of `spans` (from
    `word_spans`) covers: each word from its start, rounded to a frame, to the next word's; they add up."""
    starts = [min(total_frames, max(0, round(start * frame_rate))) for _, start, _ in spans[1:]]
    bounds = [0, *starts, total_frames]
    return [max(0, b - a) for a, b in zip(bounds, bounds[1:])] if spans else []
