"""word_timed_while_thinking: the reply's opening words said while the thought goes on.
Its layout and its phase rules."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from s2s.lm.formats.base import (
    DONE,
    REPLY_TEXT,
    SPEECH,
    THOUGHT,
    PhaseMachine,
    PhaseState,
    Sequence,
    Turn,
    _Cursor,
    _Parts,
    _Stop,
    _Writer,
)
from s2s.lm.formats.word_timed import WordTimed
from s2s.lm.vocab import JointVocab


@dataclass
class SaidState(PhaseState):
    """Where a word_timed_while_thinking reply stands: the phase says which stream; these say where in it."""

    closed: bool = False  # a thought chunk's </think> is written: its <speak> comes next
    chunk: int = 0  # thought ids in the open (or last) chunk
    chunks: int = 1  # thought chunks opened (the prompt's <think> opens the first)
    whole: bool = False  # the thought is whole: no <think> may come again
    words: int = 0  # words begun since the last <speak> (a word: text ids, then its durations and frames)
    word_ids: int = 0  # text ids of the word being written (0 where none is)
    wordless: bool = False  # speech with no words (a reply of no text): nothing but its frames may follow
    frames_due: int = 0  # frames the last duration id still asks for
    last_duration: int = 0  # frames the last duration id said


class WordTimedWhileThinkingPhases(PhaseMachine):
    """Thought chunks, and words said with their durations between them, in the order of the format.

        THOUGHT     text ids or </think>, only </think> at the thought's cap (a chunk after the first
                    holds at least one id); then <speak>, forced
        REPLY_TEXT  a word's text ids; then, with speech left, its duration d (at most the frames left)
        SPEECH      exactly d frames; then one more duration after a longest one (a long word's next
                    chunk), the next word, <think> or <eot>

    The model chooses how long each thought chunk is and which words it says
    before the thought is whole: a chunk followed by one word and then
    <think> pauses the thought; a second word in a row (or <eot>) says the
    thought was whole, and no <think> may come after it; at least one word
    follows the last chunk when words came before it. Training shows chunks
    of exactly N ids (the format's layout), but where a word is said with
    frames the machine does not hold the model to N: the calculator writes
    whole results, which can carry a chunk past N, and a thought refused its
    next chunk would go on as reply text. Without speech a word has no end
    the machine can see, so there only an N-id chunk may pause. Every layout
    of the format is a path, and every path parses (leniently) into a turn
    of it. Every <think> needs room for one more thought id and one more
    word, so generation ends.
    """


    def start(self) -> SaidState:
        return SaidState()

    def forced(self, state: SaidState) -> int | None:
        """The one id that may come next where it needs no choice (<speak> after </think>), else None."""
        return self.vocab.speak if state.phase == THOUGHT and state.closed else None

    def allowed_mask(self, state: SaidState) -> torch.Tensor:
        vocab = self.vocab
        if state.phase == DONE:
            raise ValueError(f"{self.format.name}: the reply has ended; no id may come next")
        if state.phase == THOUGHT:
            if state.closed:
                return self._mask(vocab.speak)
            if state.thought_tokens >= self.max_thought_tokens:
                return self._mask(vocab.end_think)
            if state.chunk == 0 and state.chunks > 1:  # a chunk after a word holds at least one id
                return self._mask(vocab.text_range)
            return self._mask(vocab.text_range, vocab.end_think)
        if state.phase == SPEECH and (state.speech_tokens % vocab.num_codebooks or state.frames_due):
            return self._speech_mask(state) if state.speech_tokens % vocab.num_codebooks else \
                self._mask(vocab.speech_range(0))
        frames_left = self.max_speech_frames - state.speech_tokens // vocab.num_codebooks
        words_left = state.reply_tokens < self.max_reply_tokens
        durations = range(vocab.duration_range.start, vocab.duration_range.start + min(frames_left, vocab.durations))
        if state.wordless:  # speech of a reply with no words: more of it (after a longest chunk) or the end
            more = frames_left and state.last_duration == vocab.durations
            return self._mask(durations, vocab.eot) if more else self._mask(vocab.eot)
        if state.phase == REPLY_TEXT and not state.word_ids:  # right after <speak>
            if state.reply_tokens:  # words came before the thought was whole: at least one follows it
                return self._mask(vocab.text_range)
            allowed = [vocab.text_range] if words_left else []
            if frames_left:
                allowed.append(durations)  # a reply of no words may still speak (as the format lays it out)
            return self._mask(*allowed, vocab.eot)
        allowed = [vocab.text_range] if words_left else []
        if frames_left and (state.phase == REPLY_TEXT or state.last_duration == vocab.durations):
            allowed.append(durations)
        if state.phase == SPEECH or not frames_left:  # a word said whole (or no speech left to say it with)
            # One word after a chunk: the thought may go on. A word said with frames may pause a chunk of any
            # length; a word without (no speech left) only one of exactly N ids, as in training, since there a
            # "word" is every text id after <speak> and the model would otherwise think again after its reply.
            said_aloud = state.phase == SPEECH
            pause = not state.whole and state.words == 1 and (
                said_aloud or state.chunk == self.format.thought_chunk_tokens)
            if pause and words_left and state.thought_tokens < self.max_thought_tokens:
                allowed.append(vocab.think)
            allowed.append(vocab.eot)
        return self._mask(*allowed)

    def _advance(self, state: SaidState, token: int) -> None:
        vocab = self.vocab
        if state.phase == THOUGHT:
            if token == vocab.speak:
                state.phase, state.closed, state.words, state.word_ids = REPLY_TEXT, False, 0, 0
            elif token == vocab.end_think:
                state.closed = True
                at_cap = state.thought_tokens >= self.max_thought_tokens
                state.whole |= at_cap
                if at_cap:
                    state.capped.append(THOUGHT)
            else:
                state.thought_tokens, state.chunk = state.thought_tokens + 1, state.chunk + 1
        elif token == vocab.eot:
            self._end(state)
        elif token == vocab.think:
            state.phase, state.chunk, state.chunks = THOUGHT, 0, state.chunks + 1
        elif vocab.is_text(token):
            if not state.word_ids:  # a new word; a second in one speak chunk means the thought was whole
                state.words += 1
                state.whole |= state.words > 1
            state.phase, state.word_ids, state.reply_tokens = REPLY_TEXT, state.word_ids + 1, state.reply_tokens + 1
        elif vocab.is_duration(token):
            state.wordless |= state.phase == REPLY_TEXT and not state.word_ids
            state.whole |= state.wordless
            state.phase, state.word_ids = SPEECH, 0
            state.frames_due = state.last_duration = int(vocab.duration_frames(token))
        else:
            state.speech_tokens += 1
            if state.speech_tokens % vocab.num_codebooks == 0:
                state.frames_due -= 1

class WordTimedWhileThinking(WordTimed):
    """Think while speaking, word-timed: the reply opens while the thought goes on, and says the answer after it.

        <think> t*N </think> <speak> w1 d1 S(w1) <think> t*N </think> <speak> w2 d2 S(w2)
        <think> t..t </think> <speak> w3 d3 S(w3) w4 d4 S(w4) ... <eot>

    Chunked think-while-speaking (`think_while_speaking`) speaks frames in
    step with the thought's ids, so a reply says its answer before the thought
    has worked it out. Here the unit of speech is a word, said as word_timed
    says it (its text, its duration d, exactly d frames, the word clock), and
    only the reply's opening (`Turn.reply_opening`: the first ids, which
    commit to no answer, such as "The answer is") is spoken while the thought
    goes on, one word after each `thought_chunk_tokens` thought ids. Once the
    opening is said (or the thought would end in the next chunk), one chunk
    holds the rest of the thought and the reply's other words follow it (the
    last word always waits for the whole thought). The
    first audio then waits for N thought ids and one word, not for the whole
    thought and reply text. The words are the reply text (written once, as
    they are said, and trained as reply text); a word without frames (a row
    without speech) is its text alone.
    """

    name = "word_timed_while_thinking"
    phases = WordTimedWhileThinkingPhases
    thought_pauses_for_words = True

    def __init__(self, vocab: JointVocab, max_word_frames: int | None = None, thought_chunk_tokens: int = 8):
        super().__init__(vocab, max_word_frames)
        if not isinstance(thought_chunk_tokens, int) or thought_chunk_tokens < 1:
            raise ValueError(f"{self.name}: thought_chunk_tokens must be an integer >= 1, got {thought_chunk_tokens!r}")
        self.thought_chunk_tokens = thought_chunk_tokens

    def _words(self, turn: Turn) -> list[tuple[int, int]]:
        """(text ids, frames) of each word said, words after the speech included (text alone); without an
        alignment (and without speech) the whole reply is one word."""
        words = self._timed_words(turn)
        if words is None:
            return [(len(turn.reply_ids), 0)] if turn.reply_ids else []
        return words

    def build_without_speech(self, turn: Turn) -> Sequence:
        """The whole layout with its words and no frames, less the <eot> (where the last word's speech would be)."""
        words = [(ids, 0) for ids, _ in turn.reply_alignment] if turn.reply_alignment else None
        sequence = self.build(Turn(**{f.name: getattr(turn, f.name) for f in fields(turn)} | {
            "reply_codes": torch.zeros(turn.num_codebooks, 0, dtype=torch.long), "reply_alignment": words}))
        return Sequence(sequence.ids[:-1], sequence.segment[:-1])

    def _write_reply(self, writer: _Writer, turn: Turn) -> None:
        thought, chunk = turn.thought_ids, self.thought_chunk_tokens
        words, said, done, ids_said, frames_said = self._words(turn), 0, 0, 0, 0

        def say(ids: int, frames: int) -> None:
            nonlocal ids_said, frames_said
            self._say(writer, turn, (ids_said, frames_said), (ids, frames), REPLY_TEXT)
            ids_said, frames_said = ids_said + ids, frames_said + frames

        # An opening word after each chunk of N thought ids, while the thought goes on past that chunk; the last
        # word always waits for the whole thought.
        while said + 1 < len(words) and ids_said + words[said][0] <= turn.reply_opening and \
                done + chunk < len(thought):
            writer.special("<think>")
            writer.add(thought[done: done + chunk], THOUGHT)
            writer.special("</think>")
            writer.special("<speak>")
            say(*words[said])
            said, done = said + 1, done + chunk
        writer.special("<think>")
        writer.add(thought[done:], THOUGHT)
        writer.special("</think>")
        writer.special("<speak>")
        for word in words[said:]:
            say(*word)

    def _read_reply(self, cursor: _Cursor, parts: _Parts) -> None:
        while True:
            cursor.take("<think>")
            cursor.text(parts.thought)
            cursor.take("</think>")
            cursor.take("<speak>")
            while not cursor.done() and (self.vocab.is_text(cursor.ids[cursor.pos]) or
                                         self.vocab.is_duration(cursor.ids[cursor.pos])):
                self._read_said_word(cursor, parts)
            if not cursor.at("<think>"):
                return
            parts.opening = len(parts.reply)

    def _read_said_word(self, cursor: _Cursor, parts: _Parts) -> None:
        """One word said: its text ids (maybe none, right after a long word's chunk), then its durations and
        exactly that many frames each."""
        def frames_read() -> int:
            return sum(piece.shape[1] for piece in parts.speech)

        ids, before = len(parts.reply), frames_read()
        cursor.text(parts.reply)
        try:
            while not cursor.done() and self.vocab.is_duration(cursor.ids[cursor.pos]):
                at, wanted = cursor.pos, int(self.vocab.duration_frames(cursor.ids[cursor.pos]))
                cursor.pos += 1
                cursor.speech(parts.speech)
                got = parts.speech[-1].shape[1]
                if got != wanted:
                    raise _Stop(f"the duration id at position {at} says {wanted} frames, {got} follow")
        finally:  # a word cut short (generated ids) still counts with the whole frames it had
            frames = frames_read() - before
            if parts.alignment and not (len(parts.reply) - ids):
                parts.alignment[-1] = (parts.alignment[-1][0], parts.alignment[-1][1] + frames)
            else:
                parts.alignment.append((len(parts.reply) - ids, frames))
