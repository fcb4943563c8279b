"""Token timelines as text: what a format or a pattern did, readable at a glance.

    draw(sequence, vocab)      -> "<question> Q0 Q1 </question> <think> t t </think> r <speak> S0 S1 <eot>"
    draw_prompt(ids, vocab)    -> "<question> <heard> <heard> </question> <think>": a prompt, before any labels
    draw_grid(steps, vocab)    -> the [K, S] grid of the delay pattern, one row a codebook

Letters name the segment (q question text, s style words, t thought, r reply text, w a reply word
read aloud, d12 a duration of 12 frames) and
audio names its segment and codebook (Q question, V voice, S speech: S1 is a
reply speech id of codebook 1), so a wrong order or a misplaced chunk shows.
The tutorials paste these strings, so the pictures are the code's own.
"""
from __future__ import annotations

import torch

from s2s.lm.formats import (
    DURATION,
    QUESTION_AUDIO,
    QUESTION_TEXT,
    READ_ALOUD,
    REPLY_TEXT,
    SPECIAL,
    SPEECH,
    STYLE,
    THOUGHT,
    VOICE,
    Sequence,
)
from s2s.lm.vocab import JointVocab

_TEXT_LETTERS = {QUESTION_TEXT: "q", STYLE: "s", THOUGHT: "t", REPLY_TEXT: "r", READ_ALOUD: "w"}
_AUDIO_LETTERS = {QUESTION_AUDIO: "Q", VOICE: "V", SPEECH: "S"}


def _symbol(id_: int, segment: int, vocab: JointVocab) -> str:
    if segment in _TEXT_LETTERS and vocab.is_text(id_):
        return _TEXT_LETTERS[segment]
    if segment == QUESTION_AUDIO and id_ == vocab.heard:
        return "H"  # one heard segment: the audio encoder's vector goes here
    if segment in _AUDIO_LETTERS and vocab.is_speech(id_):
        return f"{_AUDIO_LETTERS[segment]}{vocab.speech_code(id_)[0]}"
    if segment == DURATION and vocab.is_duration(id_):
        return f"d{vocab.duration_frames(id_)}"
    if segment == SPECIAL and vocab.is_special(id_):
        return vocab.special_name(id_)
    return f"?{id_}"  # the id does not fit its segment label: show it rather than hide it


def draw(sequence: Sequence, vocab: JointVocab, max_run: int | None = None) -> str:
    """One line, one symbol a position. A run of one segment longer than `max_run` shows its
    first `max_run` symbols, then `…+n` for the n it hides (real sequences hold thousands of ids)."""
    symbols = [_symbol(i, s, vocab) for i, s in zip(sequence.ids.tolist(), sequence.segment.tolist())]
    segments = sequence.segment.tolist()
    out, start = [], 0
    while start < len(symbols):
        end = start + 1
        while end < len(symbols) and segments[end] == segments[start] and segments[start] != SPECIAL:
            end += 1
        run = symbols[start:end]
        if max_run is not None and len(run) > max_run:
            run = run[:max_run] + [f"…+{len(run) - max_run}"]
        out += run
        start = end
    return " ".join(out)


def draw_prompt(ids: torch.Tensor, vocab: JointVocab) -> str:
    """`draw` of prompt ids [L] (what `S2SPipeline.prompt` gives), which carry no segment labels yet: a text id is
    question text, any other id a marker or a `<heard>` segment. A spoken and a written question then draw alike,
    a position per token."""
    is_text = (ids >= vocab.text_range.start) & (ids < vocab.text_range.stop)
    return draw(Sequence(ids, torch.where(is_text, QUESTION_TEXT, SPECIAL)), vocab)


def draw_grid(steps: torch.Tensor, vocab: JointVocab) -> str:
    """A delay-pattern grid [K, S]: one row a codebook, each cell its code, `·` for <speech_pad>."""
    rows = [["·" if i == vocab.speech_pad else str(vocab.speech_code(i)[1]) if vocab.is_speech(i) else f"?{i}"
             for i in row] for row in steps.tolist()]
    width = max([len(cell) for row in rows for cell in row] + [len(str(steps.shape[1] - 1))])
    header = "step " + " ".join(str(s).rjust(width) for s in range(steps.shape[1]))
    return "\n".join([header] + [f"k{k:<3} " + " ".join(c.rjust(width) for c in row) for k, row in enumerate(rows)])
