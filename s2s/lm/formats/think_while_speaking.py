"""think_while_speaking: N thought ids, then M frames of speech, in turn. Its layout and its phase rules."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from s2s.lm.formats.base import (
    DONE,
    REPLY_TEXT,
    SPECIAL,
    SPEECH,
    THOUGHT,
    Format,
    PhaseMachine,
    PhaseState,
    Turn,
    _Cursor,
    _Parts,
    _Stop,
    _Writer,
)
from s2s.lm.vocab import JointVocab


@dataclass
class ChunkState(PhaseState):
    """Where a think-while-speaking reply stands: the phase alone cannot say how big the open chunk may grow."""

    chunk: int = 0  # ids in the open chunk: text ids and the <reply> marker, or speech ids
    previous: int | None = None  # ids in the chunk before it (the other kind); None while there is none
    replied: bool = False  # the <reply> marker is written: the text stream is in the reply
    closed: bool = False  # the text chunk's </think> is written: <speak> or <eot> comes next


class ThinkWhileSpeakingPhases(PhaseMachine):
    """Text chunks `<think> .. </think>` and speech chunks `<speak> ..` in turn, sized as ThinkWhileSpeaking lays them.

    The model chooses where the text stream (thought, <reply>, reply) and
    the speech end; the chunk sizes follow from that choice. So a chunk
    holds exactly N text ids (thought_chunk_tokens) or M frames
    (speech_chunk_frames) unless it is one of the last: a shorter text chunk
    ends the text (its speech chunk, if any, takes all the speech left); a
    shorter speech chunk ends the speech (one text chunk with all the text
    left follows); a longer chunk is the last of the reply. The
    phase is THOUGHT or REPLY_TEXT in a text chunk (before and after
    <reply>), SPEECH in a speech chunk.
    """


    def __init__(self, format: ThinkWhileSpeaking, **caps):
        super().__init__(format, **caps)
        self.text_chunk = format.thought_chunk_tokens
        self.speech_chunk = format.speech_chunk_frames * self.vocab.num_codebooks  # in speech ids

    def start(self) -> ChunkState:
        return ChunkState()  # the prompt's <think> has opened the first text chunk

    def _previous_full(self, state: ChunkState) -> bool:
        """The speech chunk before this text chunk was whole (or there was none): the speech may go on."""
        return state.previous is None or state.previous == self.speech_chunk

    def allowed_mask(self, state: ChunkState) -> torch.Tensor:
        vocab = self.vocab
        if state.phase == DONE:
            raise ValueError(f"{self.format.name}: the reply has ended; no id may come next")
        more_speech = state.speech_tokens < vocab.num_codebooks * self.max_speech_frames
        reply_full = state.reply_tokens >= self.max_reply_tokens
        allowed = []
        if state.phase == SPEECH:
            inside = self._speech_mask(state)
            if inside is not None:
                return inside
            if more_speech and (state.replied or state.chunk < self.speech_chunk):  # past M: the last chunk
                allowed.append(vocab.speech_range(0))
            if state.chunk:
                if state.replied:
                    allowed.append(vocab.eot)
                if state.previous == self.text_chunk and state.chunk <= self.speech_chunk \
                        and not (state.replied and reply_full):  # the text goes on, and has room to
                    allowed.append(vocab.think)
        elif state.closed:
            if state.replied:
                allowed.append(vocab.eot)
            if more_speech and state.chunk <= self.text_chunk and self._previous_full(state):
                allowed.append(vocab.speak)
        else:  # inside a text chunk; past N ids it is the last chunk of both streams
            if not state.replied:
                if state.thought_tokens < self.max_thought_tokens:
                    allowed.append(vocab.text_range)
                allowed.append(vocab.reply)
            elif not reply_full:
                allowed.append(vocab.text_range)
            # Closing short ends the text; closing a whole chunk before the reply needs a speech chunk next.
            if state.chunk and (state.replied or (state.chunk == self.text_chunk and more_speech
                                                  and self._previous_full(state))):
                allowed.append(vocab.end_think)
        return self._mask(*allowed)

    def _advance(self, state: ChunkState, token: int) -> None:
        vocab = self.vocab
        if token == vocab.eot:
            self._end(state)
        elif token in (vocab.think, vocab.speak):
            state.previous, state.chunk, state.closed = state.chunk, 0, False
            state.phase = SPEECH if token == vocab.speak else REPLY_TEXT if state.replied else THOUGHT
        elif token == vocab.end_think:
            state.closed = True
        else:  # text, the <reply> marker or speech: content of the open chunk
            state.chunk += 1
            if token == vocab.reply:
                state.replied, state.phase = True, REPLY_TEXT
                if state.thought_tokens >= self.max_thought_tokens:
                    state.capped.append(THOUGHT)
            else:
                counter = {THOUGHT: "thought_tokens", REPLY_TEXT: "reply_tokens", SPEECH: "speech_tokens"}
                setattr(state, counter[state.phase], getattr(state, counter[state.phase]) + 1)

class ThinkWhileSpeaking(Format):
    """Text chunks alternate with speech chunks, so speech starts before the thinking ends.

    The text stream is the thought, the <reply> marker, then the reply text:
    the reply text comes after the thought, inside the same kind of chunks.
    Rule, starting with text:
      * a text chunk  `<think> .. </think>` holds the next `thought_chunk_tokens`
        ids of the text stream (the marker counts as one);
      * a speech chunk `<speak> ..` holds the next `speech_chunk_frames` frames;
      * once one stream is used up, the next chunk of the other takes all it
        has left; a stream with nothing left gets no chunk.
    With N=2, M=1 and 3 thought ids, 1 reply id, 3 frames:

        <think> t t </think> <speak> S0 S1 <think> t <reply> </think> <speak> S0 S1
        <think> r </think> <speak> S0 S1 <eot>
    """

    name = "think_while_speaking"
    phases = ThinkWhileSpeakingPhases

    def __init__(self, vocab: JointVocab, thought_chunk_tokens: int = 8, speech_chunk_frames: int = 10):
        super().__init__(vocab)
        if thought_chunk_tokens < 1 or speech_chunk_frames < 1:
            raise ValueError(f"{self.name}: chunk sizes must be at least 1, got thought_chunk_tokens="
                             f"{thought_chunk_tokens}, speech_chunk_frames={speech_chunk_frames}")
        self.thought_chunk_tokens, self.speech_chunk_frames = thought_chunk_tokens, speech_chunk_frames

    def _write_reply(self, writer: _Writer, turn: Turn) -> None:
        text = turn.thought_ids + [self.vocab.reply] + turn.reply_ids
        roles = [THOUGHT] * len(turn.thought_ids) + [SPECIAL] + [REPLY_TEXT] * len(turn.reply_ids)
        frames = turn.reply_codes.shape[1]
        done_tokens = done_frames = 0
        while done_tokens < len(text) or done_frames < frames:
            if done_tokens < len(text):
                end = done_tokens + self.thought_chunk_tokens if done_frames < frames else len(text)
                writer.special("<think>")
                writer.add(text[done_tokens:end], roles[done_tokens:end])
                writer.special("</think>")
                done_tokens = min(end, len(text))
            if done_frames < frames:
                end = done_frames + self.speech_chunk_frames if done_tokens < len(text) else frames
                writer.special("<speak>")
                writer.speech(turn.reply_codes[:, done_frames:end], SPEECH)
                done_frames = min(end, frames)

    def _read_reply(self, cursor: _Cursor, parts: _Parts) -> None:
        while (opener := cursor.look("<think>", "<speak>", "<eot>")) != "<eot>":
            cursor.take(opener)
            if opener == "<speak>":
                cursor.speech(parts.speech)
                continue
            while True:
                cursor.text(parts.reply if parts.saw_reply_marker else parts.thought)
                if not cursor.at("<reply>"):
                    break
                if parts.saw_reply_marker:
                    raise _Stop(f"a second <reply> at position {cursor.pos}")
                cursor.take("<reply>")
                parts.saw_reply_marker = True
            cursor.take("</think>")
        if not parts.saw_reply_marker:
            raise _Stop(f"no <reply> marker before the <eot> at position {cursor.pos}")
