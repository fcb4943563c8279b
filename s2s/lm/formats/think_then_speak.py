"""think_then_speak: think, write the reply, then say it. Its layout and its phase rules."""
from __future__ import annotations

import torch

from s2s.lm.formats.base import (
    DONE,
    REPLY_TEXT,
    SPEECH,
    THOUGHT,
    Format,
    PhaseMachine,
    PhaseState,
    Turn,
    _Cursor,
    _Parts,
    _Writer,
)


class ThinkThenSpeakPhases(PhaseMachine):
    """<think> t.. </think> r.. <speak> S.. <eot>, every part capped, so generation always ends.

    At most max_thought_tokens + max_reply_tokens + K * max_speech_frames + 3 ids follow the prompt.
    """


    def allowed_mask(self, state: PhaseState) -> torch.Tensor:
        vocab = self.vocab
        if state.phase == THOUGHT:
            return self._thought_mask(state)
        if state.phase == REPLY_TEXT:
            if state.reply_tokens >= self.max_reply_tokens:
                return self._mask(vocab.speak)
            return self._mask(vocab.text_range, vocab.speak)
        if state.phase == SPEECH:
            inside = self._speech_mask(state)
            if inside is not None:
                return inside
            if state.speech_tokens >= vocab.num_codebooks * self.max_speech_frames:
                return self._mask(vocab.eot)
            return self._mask(vocab.speech_range(0), vocab.eot)
        raise ValueError(f"{self.format.name}: the reply has ended; no id may come next")

    def _advance(self, state: PhaseState, token: int) -> None:
        vocab, phase = self.vocab, state.phase
        if phase == THOUGHT and token == vocab.end_think:
            state.phase = REPLY_TEXT
            capped = state.thought_tokens >= self.max_thought_tokens
        elif phase == REPLY_TEXT and token == vocab.speak:
            state.phase = SPEECH
            capped = state.reply_tokens >= self.max_reply_tokens
        elif phase == SPEECH and token == vocab.eot:
            state.phase = DONE
            capped = state.speech_tokens >= vocab.num_codebooks * self.max_speech_frames
        else:  # content of the current phase
            counter = {THOUGHT: "thought_tokens", REPLY_TEXT: "reply_tokens", SPEECH: "speech_tokens"}[phase]
            setattr(state, counter, getattr(state, counter) + 1)
            return
        if capped:
            state.capped.append(phase)

class ThinkThenSpeak(Format):
    """Chain of modality: the whole thought, then the reply text, then its speech.

        <think> t t t </think> r r <speak> S0 S1 S0 S1 <eot>
    """

    name = "think_then_speak"
    phases = ThinkThenSpeakPhases

    def _write_reply(self, writer: _Writer, turn: Turn) -> None:
        writer.special("<think>")
        writer.add(turn.thought_ids, THOUGHT)
        writer.special("</think>")
        writer.add(turn.reply_ids, REPLY_TEXT)
        writer.special("<speak>")
        self._write_speech(writer, turn)

    def _write_speech(self, writer: _Writer, turn: Turn) -> None:
        """What follows `<speak>` (up to the `<eot>`): the reply's frames."""
        writer.speech(turn.reply_codes, SPEECH)

    def _read_reply(self, cursor: _Cursor, parts: _Parts) -> None:
        cursor.take("<think>")
        cursor.text(parts.thought)
        cursor.take("</think>")
        cursor.text(parts.reply)
        cursor.take("<speak>")
        self._read_speech(cursor, parts)

    def _read_speech(self, cursor: _Cursor, parts: _Parts) -> None:
        cursor.speech(parts.speech)
