"""word_aligned: each reply word just before its own frames, timed by forced alignment.
Its layout and its phase rules."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from s2s.lm.formats.base import (
    DONE,
    REPLY_TEXT,
    SPEECH,
    THOUGHT,
    Format,
    PhaseMachine,
    PhaseState,
    Sequence,
    Turn,
    _Cursor,
    _Parts,
    _Writer,
)


def _read_interleaved_reply(cursor: _Cursor, parts: _Parts) -> None:
    """`<think> t.. </think>`, then runs of reply text and speech in any order (text_guided, word_aligned).

    Each (text run, speech run) pair read is noted in `parts.alignment`: the word_aligned layout's words.
    """
    def frames() -> int:
        return sum(piece.shape[1] for piece in parts.speech)

    cursor.take("<think>")
    cursor.text(parts.thought)
    cursor.take("</think>")
    start = None
    while start != cursor.pos:
        start = cursor.pos
        ids, done = len(parts.reply), frames()
        try:
            cursor.text(parts.reply)
            cursor.speech(parts.speech)
        finally:  # a run cut short (generated ids) still counts with the whole frames it had
            if cursor.pos != start:
                parts.alignment.append((len(parts.reply) - ids, frames() - done))


def even_alignment(reply_ids: int, frames: int, words: list[int] | None = None) -> list[tuple[int, int]] | None:
    """A stand-in `Turn.reply_alignment` for layouts drawn or timed without audio: the reply's words (`words`:
    ids per word, as `batching.word_runs` cuts them; default: each id its own word), the frames shared out as
    evenly as they go (None for an empty reply)."""
    if not reply_ids:
        return None
    words = words if words is not None else [1] * reply_ids
    if sum(words) != reply_ids or min(words) < 1:
        raise ValueError(f"words {words} must be sizes >= 1 adding up to the reply's {reply_ids} ids")
    return [(n, frames // len(words) + (i < frames % len(words))) for i, n in enumerate(words)]

@dataclass
class GuidedState(PhaseState):
    """Where a text-guided reply stands: which stream the model has already ended."""

    text_ended: bool = False
    speech_ended: bool = False


class WordAlignedPhases(PhaseMachine):
    """<think> t.. </think>, then words and their frames in any order the model picks (WordAligned), then <eot>.

    Between frames the model may write a reply id (the next word, or more of
    this one), start a frame, or end with <eot>; inside a frame only its
    next codebook. Each stream closes at its cap; the phase is the kind of
    the last id written. TextGuidedPhases adds its fixed order on top.
    """


    def _text_open(self, state: PhaseState) -> bool:
        return state.reply_tokens < self.max_reply_tokens

    def _speech_open(self, state: PhaseState) -> bool:
        return state.speech_tokens < self.vocab.num_codebooks * self.max_speech_frames

    def _took_text(self, state: PhaseState) -> None:
        """A reply id is about to be counted (a hook for rules that depend on the order)."""

    def _took_frame(self, state: PhaseState) -> None:
        """A new frame is about to be counted (a hook for rules that depend on the order)."""

    def allowed_mask(self, state: PhaseState) -> torch.Tensor:
        vocab = self.vocab
        if state.phase == THOUGHT:
            return self._thought_mask(state)
        if state.phase == DONE:
            raise ValueError(f"{self.format.name}: the reply has ended; no id may come next")
        inside = self._speech_mask(state)
        if inside is not None:
            return inside
        allowed = []
        if self._text_open(state):
            allowed.append(vocab.text_range)
        if self._speech_open(state):
            allowed.append(vocab.speech_range(0))
        return self._mask(*allowed, vocab.eot)

    def _advance(self, state: PhaseState, token: int) -> None:
        vocab = self.vocab
        if state.phase == THOUGHT:
            if token == vocab.end_think:
                state.phase = REPLY_TEXT
                if state.thought_tokens >= self.max_thought_tokens:
                    state.capped.append(THOUGHT)
            else:
                state.thought_tokens += 1
        elif token == vocab.eot:
            self._end(state)
        elif vocab.is_text(token):
            self._took_text(state)
            state.reply_tokens, state.phase = state.reply_tokens + 1, REPLY_TEXT
        else:
            if state.speech_tokens % vocab.num_codebooks == 0:
                self._took_frame(state)
            state.speech_tokens, state.phase = state.speech_tokens + 1, SPEECH

class WordAligned(Format):
    """Text-guided by word timing: each word of the reply text, then the frames that say it.

        <think> t </think> w1 S(w1) w2 S(w2) ... <eot>

    A fixed text:speech ratio (text_guided) puts a word's speech wherever the
    ratio falls, so a small model must still learn where in the text it is
    speaking. Here the speech right after a word is that word (timed by
    forced alignment, `s2s/asr/align.py`, from `Turn.reply_alignment`: text
    ids and frames per word), so the model says what it has just written, as
    word-level interleaving does in Spirit LM. Generation lets the model
    choose where each word ends; no markers are needed, since text and
    speech ids are told apart by their range. A word without frames merges
    with the next in the layout.
    """

    name = "word_aligned"
    phases = WordAlignedPhases

    def _alignment(self, turn: Turn) -> list[tuple[int, int]]:
        if turn.reply_alignment is not None:
            return turn.reply_alignment
        if turn.reply_codes.shape[1]:
            raise ValueError(f"{self.name}: the turn has reply speech but no reply_alignment (text ids and frames "
                             "per word); give the datamodule `align_with` (a character CTC judge) to time the words")
        return [(len(turn.reply_ids), 0)]

    def build_without_speech(self, turn: Turn) -> Sequence:
        """Up to the end of the first word, where its speech would begin (see `Format.build_without_speech`)."""
        first = (turn.reply_alignment or [(len(turn.reply_ids), 0)])[0][0]
        return super().build_without_speech(Turn(**{f.name: getattr(turn, f.name) for f in fields(turn)} | {
            "reply_ids": turn.reply_ids[:first], "reply_alignment": None, "reply_opening": 0}))

    def _write_reply(self, writer: _Writer, turn: Turn) -> None:
        writer.special("<think>")
        writer.add(turn.thought_ids, THOUGHT)
        writer.special("</think>")
        done_ids = done_frames = 0
        for ids, frames in self._alignment(turn):
            writer.add(turn.reply_ids[done_ids: done_ids + ids], REPLY_TEXT)
            writer.speech(turn.reply_codes[:, done_frames: done_frames + frames], SPEECH)
            done_ids, done_frames = done_ids + ids, done_frames + frames

    def _read_reply(self, cursor: _Cursor, parts: _Parts) -> None:
        _read_interleaved_reply(cursor, parts)
