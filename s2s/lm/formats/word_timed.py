"""word_timed: think, write the reply, then read it aloud word by word, each word's length first.
Its layout and its phase rules."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from s2s.lm.formats.base import (
    DURATION,
    READ_ALOUD,
    REPLY_TEXT,
    SPEECH,
    PhaseState,
    Turn,
    _Cursor,
    _Parts,
    _Stop,
    _Writer,
)
from s2s.lm.formats.think_then_speak import ThinkThenSpeak, ThinkThenSpeakPhases
from s2s.lm.vocab import JointVocab


@dataclass
class TimedState(PhaseState):
    """Where a word_timed reply stands: its reply ids (to read aloud), how many are read, the frames owed."""

    reply: list[int] = field(default_factory=list)  # the reply text's ids, as written
    read_tokens: int = 0  # reply ids read aloud so far
    frames_due: int = 0  # frames the last duration id still asks for
    word_open: bool = False  # the last id was a word read aloud: its frames (or the next word) must follow
    last_duration: int = 0  # frames the last duration id said


class WordTimedPhases(ThinkThenSpeakPhases):
    """Think-then-speak up to <speak>; then the reply read aloud: words, durations and exactly their frames.

    After <speak> only the reply's own next id may be read (so what is said
    is what was written); after any read id, a duration d (at most the
    frames left under the cap) or the next id; after a duration, exactly d
    frames, then another duration only if d was the longest (a long word
    is cut into whole chunks first, as `WordTimed.build` cuts it); <eot>
    anywhere but right after a read word (the words after the last frame
    have no speech; the generation loop reads them all while the cap
    allows). A reply without text may speak without words (durations
    straight after <speak>), as `WordTimed.build` writes it.
    """


    @property
    def duration_mask(self) -> torch.Tensor:
        """BoolTensor [V]: every duration id."""
        return self._mask(self.vocab.duration_range)

    def start(self) -> TimedState:
        return TimedState()

    def allowed_mask(self, state: TimedState) -> torch.Tensor:
        vocab = self.vocab
        if state.phase != SPEECH:
            return super().allowed_mask(state)
        inside = self._speech_mask(state)
        if inside is not None:
            return inside
        if state.frames_due:
            return self._mask(vocab.speech_range(0))
        frames_left = self.max_speech_frames - state.speech_tokens // vocab.num_codebooks
        unread = state.read_tokens < len(state.reply)
        allowed = []
        if unread and frames_left:
            allowed.append(state.reply[state.read_tokens])
        # A word's first duration, or one more after a whole chunk (a word longer than one duration says).
        first = state.word_open or (not state.reply and not state.speech_tokens)
        if frames_left and (first or state.last_duration == vocab.durations):
            start = vocab.duration_range.start
            allowed.append(range(start, start + min(frames_left, vocab.durations)))
        if not state.word_open:  # the words not yet read have no speech (the loop reads them all)
            allowed.append(vocab.eot)
        return self._mask(*allowed)

    def _advance(self, state: TimedState, token: int) -> None:
        vocab = self.vocab
        if state.phase == REPLY_TEXT and vocab.is_text(token):
            state.reply.append(token)
        if state.phase != SPEECH or token == vocab.eot:
            super()._advance(state, token)
        elif vocab.is_text(token):
            state.read_tokens, state.word_open = state.read_tokens + 1, True
        elif vocab.is_duration(token):
            state.frames_due, state.word_open = int(vocab.duration_frames(token)), False
            state.last_duration = state.frames_due
        else:
            state.speech_tokens += 1
            if state.speech_tokens % vocab.num_codebooks == 0:
                state.frames_due -= 1

class WordTimed(ThinkThenSpeak):
    """The reply text, then read aloud word by word, each word's length in frames said before its frames.

        <think> t </think> r r r <speak> w1 d1 S(w1) w2 d2 S(w2) ... <eot>     (w: the reply's words again)

    Think-then-speak up to `<speak>`, so the answer is written whole before
    any speech. Then each word of the reply text again (its text ids), a
    duration id `d` (the word lasts d frames, from forced alignment as in
    word_aligned) and exactly d frames. A small LM then says the word it
    has just read rather than the corpus's usual sentence; the duration,
    chosen once per word, is an easy choice to learn (one voice gives each
    word nearly one length), and generation takes exactly d frames, so no
    word is cut short. Generation writes the words for the model (they are
    the reply text's), so it cannot drift from what it wrote. A word longer
    than `max_word_frames` takes several duration ids in a row; a word with
    no frames merges with the next, and words after the last frame (speech
    stopped by its cap) are not read. Rows without speech stop on `<speak>`,
    exactly as think-then-speak's do.
    """

    name = "word_timed"
    phases = WordTimedPhases

    def __init__(self, vocab: JointVocab, max_word_frames: int | None = None):
        """`max_word_frames`: the longest word one duration id says (default: the vocabulary's duration ids,
        which must be exactly that many: `JointVocab(..., durations=WordTimed.durations(...))`)."""
        super().__init__(vocab)
        max_word_frames = vocab.durations if max_word_frames is None else max_word_frames
        if vocab.durations < 1 or vocab.durations != max_word_frames:
            raise ValueError(f"{self.name}: the vocabulary has {vocab.durations} duration ids, the format needs "
                             f"max_word_frames={max_word_frames}: build the vocabulary with "
                             f"durations=WordTimed.durations(max_word_frames=...)")
        self.max_word_frames = max_word_frames

    @staticmethod
    def durations(max_word_frames: int | None = None, **options) -> int:
        """48 frames by default (0.96 s at 50 Hz: the corpus's longest word, with its pause, lasts 41)."""
        max_word_frames = 48 if max_word_frames is None else max_word_frames
        if not isinstance(max_word_frames, int) or max_word_frames < 1:
            raise ValueError(f"word_timed: max_word_frames must be an integer >= 1, got {max_word_frames!r}")
        return max_word_frames

    def _timed_words(self, turn: Turn) -> list[tuple[int, int]] | None:
        """(text ids, frames) of each word of the alignment, a word without text merged into the one before (and
        an empty one dropped); None without an alignment, which only a reply without speech may lack."""
        if turn.reply_alignment is None:
            if turn.reply_codes.shape[1]:
                raise ValueError(f"{self.name}: the turn has reply speech but no reply_alignment (text ids and "
                                 "frames per word); give the datamodule `align_with` (a character CTC judge) to "
                                 "time the words")
            return None
        words = []
        for ids, frames in turn.reply_alignment:
            if words and not ids:
                words[-1] = (words[-1][0], words[-1][1] + frames)
            elif ids or frames:
                words.append((ids, frames))
        if turn.reply_ids and words and not words[0][0]:
            raise ValueError(f"{self.name}: the reply's speech starts {words[0][1]} frames before its first word; "
                             "give every word of the alignment at least one text id")
        return words

    def _alignment(self, turn: Turn) -> list[tuple[int, int]]:
        """The words to read aloud: up to the last word with frames (words after it have nothing to say)."""
        words = self._timed_words(turn) or []
        while words and not words[-1][1]:
            words.pop()
        return words

    def _write_speech(self, writer: _Writer, turn: Turn) -> None:
        done_ids = done_frames = 0
        for ids, frames in self._alignment(turn):
            self._say(writer, turn, (done_ids, done_frames), (ids, frames), READ_ALOUD)
            done_ids, done_frames = done_ids + ids, done_frames + frames

    def _say(self, writer: _Writer, turn: Turn, start: tuple[int, int], word: tuple[int, int], role: int) -> None:
        """One word of `turn`'s reply from `start` (ids, frames done): its text ids as `role`, then a duration
        id and exactly that many frames, several times for a word longer than `max_word_frames`."""
        (done_ids, done_frames), (ids, frames) = start, word
        writer.add(turn.reply_ids[done_ids: done_ids + ids], role)
        for first in range(done_frames, done_frames + frames, self.max_word_frames):
            end = min(first + self.max_word_frames, done_frames + frames)
            writer.add([self.vocab.duration_id(end - first)], DURATION)
            writer.speech(turn.reply_codes[:, first:end], SPEECH)

    def _read_speech(self, cursor: _Cursor, parts: _Parts) -> None:
        spoken = []  # the reply's ids as read aloud: they must be the reply's own
        try:
            while not cursor.done() and (self.vocab.is_text(cursor.ids[cursor.pos]) or
                                         self.vocab.is_duration(cursor.ids[cursor.pos])):
                self._read_word(cursor, parts, spoken)
        except _Stop:
            parts.alignment.clear()  # read aloud only in part: no alignment of the whole reply
            raise
        if not parts.alignment:
            return  # not read aloud at all: a reply without speech
        if len(spoken) < len(parts.reply):
            parts.alignment.append((len(parts.reply) - len(spoken), 0))  # the words after the speech ended

    def _read_word(self, cursor: _Cursor, parts: _Parts, spoken: list[int]) -> None:
        """One word read aloud: its text ids, then duration ids each followed by exactly that many frames."""
        word_start, ids, frames = cursor.pos, len(spoken), 0
        cursor.text(spoken)
        if spoken != parts.reply[:len(spoken)]:
            raise _Stop(f"the words read aloud from position {word_start} are not the reply text's")
        while not cursor.done() and self.vocab.is_duration(cursor.ids[cursor.pos]):
            at, wanted = cursor.pos, int(self.vocab.duration_frames(cursor.ids[cursor.pos]))
            cursor.pos += 1
            cursor.speech(parts.speech)  # a partial frame stops here, with the whole frames before it kept
            got = parts.speech[-1].shape[1]
            frames += got
            if got != wanted:
                raise _Stop(f"the duration id at position {at} says {wanted} frames, {got} follow")
        parts.alignment.append((len(spoken) - ids, frames))
