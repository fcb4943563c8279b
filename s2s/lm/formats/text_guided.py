"""text_guided: the reply text a few ids ahead of its speech, in chunks. Its layout and its phase rules."""
from __future__ import annotations

from s2s.lm.formats.base import (
    REPLY_TEXT,
    SPEECH,
    THOUGHT,
    Format,
    Turn,
    _Cursor,
    _Parts,
    _Writer,
)
from s2s.lm.formats.word_aligned import GuidedState, WordAlignedPhases, _read_interleaved_reply
from s2s.lm.vocab import JointVocab


class TextGuidedPhases(WordAlignedPhases):
    """<think> t.. </think>, then reply text and speech merged in TextGuided's order, then <eot>.

    After the thought the order of the reply ids and frames is fixed: the
    first offset_tokens ids, then groups of speech_chunk_frames frames and
    text_chunk_tokens ids. When the model writes the other kind of id than
    the one due, the stream that was due has ended (its rest of a group is
    empty, as in `build`); <eot> ends both. Otherwise word-aligned's rules:
    the phase after the thought is the kind of the last id written.
    """


    def __init__(self, format: TextGuided, **caps):
        super().__init__(format, **caps)
        self.offset, self.text_chunk = format.offset_tokens, format.text_chunk_tokens
        self.speech_chunk = format.speech_chunk_frames

    def start(self) -> GuidedState:
        return GuidedState()

    def _frame_due(self, state: GuidedState) -> bool:
        """Whether the next frame comes before the next reply id in the layout (between frames)."""
        text_group = -1 if state.reply_tokens < self.offset else (state.reply_tokens - self.offset) // self.text_chunk
        frame_group = state.speech_tokens // self.vocab.num_codebooks // self.speech_chunk
        return frame_group <= text_group  # in one group the frames come first

    def _text_open(self, state: GuidedState) -> bool:
        return not state.text_ended and super()._text_open(state)

    def _speech_open(self, state: GuidedState) -> bool:
        return not state.speech_ended and super()._speech_open(state)

    def _took_text(self, state: GuidedState) -> None:
        state.speech_ended |= self._frame_due(state)  # a reply id where a frame was due: no speech is left

    def _took_frame(self, state: GuidedState) -> None:
        state.text_ended |= not self._frame_due(state)  # a new frame where a reply id was due: no text left

class TextGuided(Format):
    """After the thought, the reply text leads its speech by a fixed offset (GLM-4-Voice, Mini-Omni).

    Rule, after `<think> thought </think>`: the first `offset_tokens` reply
    ids; then, while anything is left, the next `speech_chunk_frames` frames
    followed by the next `text_chunk_tokens` reply ids (a group is empty once
    its stream is used up, so the rest of the longer stream follows). No
    markers: text and speech ids are told apart by their range. Set the ratio
    so text is spent faster than speech needs it (GLM-4-Voice: 13 text : 26
    speech at 12.5 Hz, 6.5 text tokens a second of speech; our default 1 : 6
    at 50 Hz is 8.3), or speech overtakes the words it says.
    With offset 2, N=1, M=1, 3 reply ids and 3 frames:

        <think> t </think> r r S0 S1 r S0 S1 S0 S1 <eot>
    """

    name = "text_guided"
    phases = TextGuidedPhases

    def __init__(self, vocab: JointVocab, offset_tokens: int = 4, text_chunk_tokens: int = 1,
                 speech_chunk_frames: int = 6):
        super().__init__(vocab)
        if offset_tokens < 0 or text_chunk_tokens < 1 or speech_chunk_frames < 1:
            raise ValueError(f"{self.name}: need offset_tokens >= 0 and chunk sizes >= 1, got offset_tokens="
                             f"{offset_tokens}, text_chunk_tokens={text_chunk_tokens}, "
                             f"speech_chunk_frames={speech_chunk_frames}")
        self.offset_tokens, self.text_chunk_tokens = offset_tokens, text_chunk_tokens
        self.speech_chunk_frames = speech_chunk_frames

    def _write_reply(self, writer: _Writer, turn: Turn) -> None:
        writer.special("<think>")
        writer.add(turn.thought_ids, THOUGHT)
        writer.special("</think>")
        reply, frames = turn.reply_ids, turn.reply_codes.shape[1]
        done_tokens, done_frames = min(self.offset_tokens, len(reply)), 0
        writer.add(reply[:done_tokens], REPLY_TEXT)
        while done_tokens < len(reply) or done_frames < frames:
            writer.speech(turn.reply_codes[:, done_frames: done_frames + self.speech_chunk_frames], SPEECH)
            writer.add(reply[done_tokens: done_tokens + self.text_chunk_tokens], REPLY_TEXT)
            done_frames = min(done_frames + self.speech_chunk_frames, frames)
            done_tokens = min(done_tokens + self.text_chunk_tokens, len(reply))

    def _read_reply(self, cursor: _Cursor, parts: _Parts) -> None:
        _read_interleaved_reply(cursor, parts)
