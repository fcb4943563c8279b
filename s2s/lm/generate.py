"""Generation: a reply, token by token, with a KV cache, phase masks and streamed audio.

The model writes the reply of a sequence format (`formats.py`) one id at a
time. A phase machine says which ids may come next, so whatever the model
prefers, the ids always make a well-formed reply that ends. For
think-then-speak:

    prompt  <question> Q..Q </question> [<voice> V..V </voice>] <think>     (given: `build_prompt`)
    THOUGHT     text ids or </think>          </think> forced at max_thought_tokens
    REPLY_TEXT  text ids or <speak>           <speak> forced at max_reply_tokens
    SPEECH      codebook k's ids, k = 0..K-1 in turn; <eot> only between frames, forced at max_speech_frames
    DONE

Every format has a machine (`PHASE_MACHINES`) with the same three caps. In
think-while-speaking, text-guided and word-aligned the model still decides where the
thought, the reply text and the speech end, and the machine sizes every
chunk around that choice as the format's `build` would, so a reply it lets
through is exactly the format's layout of some turn. The phases are the
formats' segment labels (THOUGHT, REPLY_TEXT, SPEECH), so the reply's pieces
keep one name from layout to loss to stream. The state of a machine is a
small dataclass (`PhaseState`), as the codec's decode stream is
(`codecs/base.py`): one streaming idea.

`stream` is the one generation loop: one forward over the prompt, then one
forward per new id that reuses the attention keys and values of every id
before it (`past_key_values`). With `calculator=True`, a thought that ends in
an expression and `=` gets its result written for the model (`tools.py`). It yields events as they happen: pieces of the
thought and of the reply text, and audio as soon as whole speech frames have
passed through the codec's streaming decoder; in the formats that
interleave them, text pieces and audio come interleaved too. `generate`
drains it.
"""
from __future__ import annotations

import copy
import inspect
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch

from s2s.lm.batching import word_runs
from s2s.lm.fast_decode import fast_decoder
from s2s.lm.formats import (
    REPLY_TEXT,
    SEGMENT_NAMES,
    SPEECH,
    THOUGHT,
    Format,
    TextGuided,
    ThinkWhileSpeaking,
    Turn,
)
from s2s.lm.speculate import Drafter, lookup_context
from s2s.lm.tools import calculator_result
from s2s.lm.word_clock import ClockReader

DONE = -1  # not a segment label: the reply has ended with <eot>


# ---------------------------------------------------------------------- phases
@dataclass
class PhaseState:
    """Where a reply being generated stands: its phase and how much of each part is written."""

    phase: int = THOUGHT  # THOUGHT, REPLY_TEXT, SPEECH (segment labels of formats.py) or DONE
    thought_tokens: int = 0
    reply_tokens: int = 0
    speech_tokens: int = 0  # speech ids written; a frame is K of them
    capped: list[int] = field(default_factory=list)  # phases closed by their cap rather than by the model


class PhaseMachine:
    """A format's rules for a reply: `start()`, `allowed_mask(state)`, `advance(state, token)`.

    Every machine caps the thought (max_thought_tokens text ids), the reply
    text (max_reply_tokens) and the speech (max_speech_frames frames), so
    generation always ends. Masks are built once per set of allowed ids, on
    `device`, and returned as they are: callers must not change them in place.
    """

    format_name = "format"

    def __init__(self, format: Format, max_thought_tokens: int = 256, max_reply_tokens: int = 128,
                 max_speech_frames: int = 500, device: torch.device | str = "cpu"):
        caps = {"max_thought_tokens": max_thought_tokens, "max_reply_tokens": max_reply_tokens,
                "max_speech_frames": max_speech_frames}
        for name, cap in caps.items():
            if not isinstance(cap, int) or cap < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {cap!r}")
        self.format, self.vocab, self.device = format, format.vocab, torch.device(device)
        self.max_thought_tokens, self.max_reply_tokens = max_thought_tokens, max_reply_tokens
        self.max_speech_frames = max_speech_frames
        self._masks: dict[tuple, torch.Tensor] = {}

    def _mask(self, *allowed: range | int) -> torch.Tensor:
        """BoolTensor [V], True on the given id ranges and ids; kept, as the loop asks for the same few often."""
        if allowed not in self._masks:
            mask = torch.zeros(self.vocab.size, dtype=torch.bool)
            for ids in allowed:
                if isinstance(ids, range):
                    mask[ids.start: ids.stop] = True
                else:
                    mask[ids] = True
            self._masks[allowed] = mask.to(self.device)
        return self._masks[allowed]

    def _thought_mask(self, state: PhaseState) -> torch.Tensor:
        """Inside a (think-then-speak or text-guided) thought: text or </think>, and only </think> at the cap."""
        if state.thought_tokens >= self.max_thought_tokens:
            return self._mask(self.vocab.end_think)
        return self._mask(self.vocab.text_range, self.vocab.end_think)

    def start(self) -> PhaseState:
        return PhaseState()

    def allowed_mask(self, state: PhaseState) -> torch.Tensor:
        """BoolTensor [V]: the ids that may come next."""
        raise NotImplementedError

    def advance(self, state: PhaseState, token: int) -> None:
        """Take `token` into `state` (in place); raises ValueError if the rules do not allow it there."""
        if state.phase == DONE:
            raise ValueError(f"{self.format_name}: the reply has ended; nothing may follow its <eot>")
        if not bool(self.allowed_mask(state)[token]):
            raise ValueError(f"{self.format_name}: {self.vocab.describe(token)} may not come next in the "
                             f"{SEGMENT_NAMES[state.phase]} phase ({state})")
        self._advance(state, int(token))

    def _advance(self, state: PhaseState, token: int) -> None:
        raise NotImplementedError

    def forced(self, state: PhaseState) -> int | None:
        """The one id the rules leave next where the model has no choice to make (None: it chooses)."""
        return None

    def _speech_mask(self, state: PhaseState) -> torch.Tensor | None:
        """Inside a frame only its next codebook may come (the flat pattern); None between frames."""
        codebook = state.speech_tokens % self.vocab.num_codebooks
        return self._mask(self.vocab.speech_range(codebook)) if codebook else None

    def _end(self, state: PhaseState) -> None:
        """<eot>: the reply text and the speech close together; note those that stood at their cap."""
        state.phase = DONE
        if state.reply_tokens >= self.max_reply_tokens:
            state.capped.append(REPLY_TEXT)
        if state.speech_tokens >= self.vocab.num_codebooks * self.max_speech_frames:
            state.capped.append(SPEECH)


class ThinkThenSpeakPhases(PhaseMachine):
    """<think> t.. </think> r.. <speak> S.. <eot>, every part capped, so generation always ends.

    At most max_thought_tokens + max_reply_tokens + K * max_speech_frames + 3 ids follow the prompt.
    """

    format_name = "think_then_speak"

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
        raise ValueError(f"{self.format_name}: the reply has ended; no id may come next")

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

    format_name = "think_while_speaking"

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
            raise ValueError(f"{self.format_name}: the reply has ended; no id may come next")
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

    format_name = "word_aligned"

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
            raise ValueError(f"{self.format_name}: the reply has ended; no id may come next")
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


class TextGuidedPhases(WordAlignedPhases):
    """<think> t.. </think>, then reply text and speech merged in TextGuided's order, then <eot>.

    After the thought the order of the reply ids and frames is fixed: the
    first offset_tokens ids, then groups of speech_chunk_frames frames and
    text_chunk_tokens ids. When the model writes the other kind of id than
    the one due, the stream that was due has ended (its rest of a group is
    empty, as in `build`); <eot> ends both. Otherwise word-aligned's rules:
    the phase after the thought is the kind of the last id written.
    """

    format_name = "text_guided"

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

    format_name = "word_timed"

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

    format_name = "word_timed_while_thinking"

    def start(self) -> SaidState:
        return SaidState()

    def forced(self, state: SaidState) -> int | None:
        """The one id that may come next where it needs no choice (<speak> after </think>), else None."""
        return self.vocab.speak if state.phase == THOUGHT and state.closed else None

    def allowed_mask(self, state: SaidState) -> torch.Tensor:
        vocab = self.vocab
        if state.phase == DONE:
            raise ValueError(f"{self.format_name}: the reply has ended; no id may come next")
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


PHASE_MACHINES = {"think_then_speak": ThinkThenSpeakPhases, "think_while_speaking": ThinkWhileSpeakingPhases,
                  "text_guided": TextGuidedPhases, "word_aligned": WordAlignedPhases, "word_timed": WordTimedPhases,
                  "word_timed_while_thinking": WordTimedWhileThinkingPhases}


def phase_machine(format: Format, device: torch.device | str = "cpu", **caps) -> PhaseMachine:
    """The phase machine of `format` (its chunk sizes come from it), with its caps (max_thought_tokens, ...)."""
    if format.name not in PHASE_MACHINES:
        raise NotImplementedError(f"generation supports the formats {', '.join(PHASE_MACHINES)}, not "
                                  f"{format.name}: its phase machine is still to be written")
    return PHASE_MACHINES[format.name](format, device=device, **caps)


# ---------------------------------------------------------------------- prompt
def build_prompt(format: Format, *, question_codes: torch.Tensor | None = None,
                 question_text_ids: list[int] | None = None, heard_length: int | None = None,
                 voice_codes: torch.Tensor | None = None, style_ids: list[int] | None = None) -> torch.Tensor:
    """The ids a reply is generated after: question, style and voice prompt, and the <think> that opens the reply.

    Every format opens its reply with <think>, and the prompt holds no
    <think> of its own (it is question text or audio), so the prompt is the
    format's own `build` of a turn with an empty reply, cut after its first
    <think>: one layout, written in one place.
    """
    vocab = format.vocab
    empty = torch.zeros(vocab.num_codebooks, 0, dtype=torch.long)
    turn = Turn(question_codes=question_codes, question_text_ids=question_text_ids, heard_length=heard_length,
                voice_codes=voice_codes, style_ids=style_ids, thought_ids=[], reply_ids=[], reply_codes=empty)
    ids = format.build(turn).ids
    opener = int((ids == vocab.think).nonzero()[0])
    return ids[: opener + 1]


# ---------------------------------------------------------------------- sampling
def sample_next(logits: torch.Tensor, allowed: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> int:
    """One id from logits [V], only among `allowed` [V]: greedy at temperature 0, else top-k, then top-p.

    The mask comes first, so top-k and top-p choose among legal ids only.
    """
    logits = logits.float().masked_fill(~allowed, float("-inf"))
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None:
        kth_best = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        # Keep the most likely ids until they hold top_p of the probability; the first is always kept.
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(0) - sorted_probs >= top_p
        probs = probs.scatter(0, order[outside], 0.0)
    return int(torch.multinomial(probs, 1, generator=generator))


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (or None for no limit), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1] (or None for no limit), got {top_p}")


# ---------------------------------------------------------------------- text pieces
class _TextStream:
    """One text (the thought, or the reply text) decoded as its ids arrive; each id gives the new characters.

    Decoding all ids so far, rather than each id alone, gets multi-byte
    characters right: a byte-level BPE may split one character across ids.
    While the text ends in such a half character (U+FFFD) nothing is given.
    """

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.emitted = tokenizer, [], ""

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.text
        if text.endswith("\ufffd"):
            return ""
        piece, self.emitted = text[len(self.emitted):], text
        return piece

    def flush(self) -> str:
        """What is still held back (a half character at the very end)."""
        text = self.text
        piece, self.emitted = text[len(self.emitted):], text
        return piece


# ---------------------------------------------------------------------- generation
@dataclass
class Reply:
    """A generated reply: all ids, what they parse to, and how fast they came."""

    ids: torch.Tensor  # [L] prompt then reply, joint vocabulary, on the CPU
    prompt_length: int  # ids[:prompt_length] is the prompt
    turn: Turn  # the format's lenient parse: thought_ids, reply_ids, reply_codes [K, F]
    thought: str
    reply_text: str
    capped: list[int]  # phases (THOUGHT, REPLY_TEXT, SPEECH) closed by their cap, not by the model
    first_audio_ms: float | None  # from the start of generation to the first audio chunk; None without audio
    total_ms: float
    tokens_per_s: float  # ids generated per second of the whole call (prompt forward and decoding included)
    calculator_calls: int = 0  # results the calculator wrote into the thought
    forwards: int = 0  # model forwards, the prompt's included: fewer than ids where drafts were accepted

    @property
    def reply_codes(self) -> torch.Tensor:
        """[K, F] the reply speech."""
        return self.turn.reply_codes

    @property
    def generated_ids(self) -> torch.Tensor:
        """[L - prompt_length] the ids the model wrote."""
        return self.ids[self.prompt_length:]


def _check_inputs(model, prompt_ids: torch.Tensor, codec, frames_per_chunk: int) -> None:
    vocab = model.vocab
    if not isinstance(prompt_ids, torch.Tensor) or prompt_ids.dim() != 1 or prompt_ids.numel() == 0:
        shape = tuple(prompt_ids.shape) if isinstance(prompt_ids, torch.Tensor) else type(prompt_ids).__name__
        raise ValueError(f"prompt_ids must be ids [L] of one prompt, got {shape}; make them with build_prompt")
    if int(prompt_ids[-1]) != vocab.think:
        raise ValueError(f"prompt_ids must end with the <think> that opens the reply, found "
                         f"{vocab.describe(prompt_ids[-1])}; make them with build_prompt")
    if codec is not None:
        if codec.codebook_size != vocab.codebook_size or codec.max_codebooks < vocab.num_codebooks:
            raise ValueError(f"the codec {codec.name} ({codec.max_codebooks} codebooks of {codec.codebook_size}) "
                             f"cannot decode this LM's speech ({vocab.num_codebooks} codebooks of "
                             f"{vocab.codebook_size}): pass the codec the LM was trained with")
        if frames_per_chunk < 1:
            raise ValueError(f"frames_per_chunk must be at least 1, got {frames_per_chunk}")


def stream(model, prompt_ids: torch.Tensor, codec=None, frames_per_chunk: int = 2, *,
           max_thought_tokens: int = 256, max_reply_tokens: int = 128, max_speech_frames: int = 500,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, seed: int | None = 0,
           heard=None, calculator: bool = False, say: list[list[int]] | None = None, fast: bool = True,
           speculate: int = 8, speech_prior: float = 0.0, word_decoder: bool = True):
    """Generate a reply of `model` (a SpeechReasoningLM, in eval mode) after `prompt_ids` [L], event by event.

    `heard` is the HeardQuestion whose segments fill the prompt's `<heard>` ids (a spoken question heard by
    the model's audio encoder, `s2s/hearing/ctc.py`); None for prompts without them. `calculator` writes the
    result after every "EXPRESSION =" of the thought (`s2s/lm/tools.py`) instead of letting the model guess it.

    Returns an iterator of ("thought", text piece), ("reply_text", text
    piece), ("audio", wav [1, T] at the codec's rate: only with a `codec`,
    every `frames_per_chunk` whole frames go through its streaming decoder)
    and last ("done", Reply). Text pieces still held back (a half character)
    come just before "done". `seed` seeds the sampling (None: a fresh random
    seed). Times run from this call, and include the time the caller spends
    between events. Arguments are checked here, before the first event.

    `say` reads words aloud instead of answering: the ids of each word to
    speak. The thought closes at once. In word_aligned, each time the model
    ends a word (it writes text or <eot>) the next word is written for it, so
    it speaks exactly these words, timed as it likes; after the last, its next
    text id becomes <eot>. In think_then_speak and word_timed the whole reply text is
    written for it, then `<speak>`. Voice conversion is this after a
    recogniser (`s2s/style/convert.py`).

    `fast` (the default) runs llama-family backbones through `FastDecoder`, which gives transformers'
    logits in a fraction of the time per id on a CPU; False keeps transformers' forward throughout.

    `speculate` (FastDecoder only) drafts up to that many ids of the thought and reply text, from the model
    folder's phrase table and from where the last ids occurred before (`speculate.py`), and checks them in
    the forward of the next id: the same reply in fewer forwards. 0 turns it off.

    `speech_prior` (word_timed models with speech drafts, `WordFrames`) mixes how the corpus's voice says
    the word being read into the model's distribution over each speech code, as kNN-LM mixes its datastore
    into an LM (Khandelwal et al., 2020): p = (1 - w) p_model + w [code = the corpus's code for this word,
    length, frame and codebook]. The model keeps the codes it is sure of, and the corpus decides where it
    wavers; 0 (the default) is the model alone.

    `word_decoder` (word_timed models that have one, `s2s/lm/word_decoder.py`): once a word's duration is
    chosen, its word decoder says all of the word's frames at once, and they are written for the model as the
    words read aloud are: the model chooses the words and cannot drift within one. A decoder that predicts
    durations (FastSpeech's duration predictor) chooses each word's duration too; an older one leaves it to
    the model. False lets the model say every code and duration itself.
    """
    start_s = time.perf_counter()
    _check_inputs(model, prompt_ids, codec, frames_per_chunk)
    _check_sampling(temperature, top_k, top_p)
    device = next(model.backbone.parameters()).device
    machine = phase_machine(model.format, device, max_thought_tokens=max_thought_tokens,
                            max_reply_tokens=max_reply_tokens, max_speech_frames=max_speech_frames)
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    sample = partial(sample_next, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    heard_ids = int((prompt_ids == model.vocab.heard).sum())
    if heard_ids and (heard is None or len(heard) != heard_ids):
        raise ValueError(f"the prompt holds {heard_ids} <heard> ids, so it needs the HeardQuestion of as many "
                         f"segments (got {'none' if heard is None else len(heard)}); make both with the pipeline")
    if not isinstance(speculate, int) or speculate < 0:
        raise ValueError(f"speculate must be an integer >= 0 (the most ids drafted a forward; 0 is off), got "
                         f"{speculate!r}")
    if not isinstance(speech_prior, (int, float)) or not 0.0 <= speech_prior <= 1.0:
        raise ValueError(f"speech_prior must lie in [0, 1] (the corpus's weight in each speech code; 0 is the model "
                         f"alone), got {speech_prior!r}")
    if speech_prior and word_decoder and getattr(model, "word_decoder", None) is not None and \
            isinstance(machine, WordTimedPhases):  # where _events uses the decoder
        raise ValueError("speech_prior mixes the corpus into the codes the LM says, but this model's word decoder "
                         "says them: pass word_decoder=False (--no-word-decoder) with a speech prior")
    if say is not None and model.format.name not in ("word_aligned", "think_then_speak", "word_timed"):
        raise ValueError(f"reading words aloud (say) needs a word_aligned, think_then_speak or word_timed model, not "
                         f"{model.format.name}: its reply text must come before the speech that says it")
    return _events(model, prompt_ids, codec, frames_per_chunk, machine, sample, start_s, heard, calculator, say,
                   fast, speculate, float(speech_prior), bool(word_decoder))


@torch.no_grad()  # not inference_mode: the Reply's tensors stay ordinary tensors a caller may change
def _forward(backbone, capacity: int, fast: bool = True):
    """One sequence's step function: (input_ids [1, n] or inputs_embeds [1, n, D]) -> logits [vocab] after its
    last position, keeping the keys and values of every position fed so far. `fast` uses FastDecoder where the
    backbone's layout allows (`fast_decode.py`: the same logits, a fraction of the time per id on a CPU);
    otherwise transformers' own forward with its cache."""
    decoder = fast_decoder(backbone, capacity) if fast else None
    if decoder is not None:
        return decoder
    # transformers 5 renamed the forward's `past_key_values` to `cache`: use the name this backbone takes.
    parameters = inspect.signature(backbone.forward).parameters
    cache_name = "cache" if "cache" in parameters else "past_key_values"
    # Only the last position's logits are needed: skip the output layer over the prompt where the model allows.
    options = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
    cache = None

    def step(input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        nonlocal cache
        out = backbone(input_ids=input_ids, inputs_embeds=inputs_embeds, use_cache=True, **{cache_name: cache},
                       **options)
        cache = getattr(out, cache_name)
        return out.logits[0, -1]

    return step


def _events(model, prompt_ids: torch.Tensor, codec, frames_per_chunk: int, machine: PhaseMachine, sample,
            start_s: float, heard=None, calculator: bool = False, say: list[list[int]] | None = None,
            fast: bool = True, speculate: int = 0, speech_prior: float = 0.0, word_decoder: bool = False):
    """The generation loop behind `stream`."""
    vocab, backbone, device = model.vocab, model.backbone, machine.device
    state, generated = machine.start(), []
    forced, calculator_calls = [], 0  # ids the calculator wrote, taken before the model samples again
    words = [list(word) for word in say if word] if say is not None else None  # words still to read aloud
    if words is not None and model.format.name in ("think_then_speak", "word_timed"):  # all the words, then speak
        forced, words = [vocab.end_think, *(i for word in words for i in word), vocab.speak], None
    # word_timed: after <speak>, the reply's words are read aloud: each is written for the model, which then
    # gives its duration and exactly that many frames.
    timed, reading = isinstance(machine, WordTimedPhases), None
    # A word decoder says each word's frames at once (after its duration): they are written for the model.
    decoder = getattr(model, "word_decoder", None) if timed and word_decoder else None
    said_words, last_frame = [], None  # the words said so far; the last whole frame's codes
    says_words = timed or isinstance(machine, WordTimedWhileThinkingPhases)  # words, durations and their frames
    texts = {THOUGHT: _TextStream(model.tokenizer), REPLY_TEXT: _TextStream(model.tokenizer)}
    frame, frames = [], []  # codes of the frame being written; whole frames not yet decoded
    first_audio_ms = None
    forward = _forward(backbone, prompt_ids.numel() + 256, fast)  # room for 256 new ids before the cache grows
    # Ids not yet fed to the model. A forced id (a calculator result, a word to read) needs no logits before
    # it, so forced runs are fed in one call with the next id the model chooses: fewer steps to first audio.
    pending, logits, forwards = prompt_ids.tolist(), None, 0
    # A model with a word clock (word_clock.py) gets each pending id's signal added to its embedding. The
    # reader also says where a word_timed reply's speech stands, for drafting it (`WordFrames`).
    clocked = getattr(model, "clock", None) is not None
    words_said = getattr(model, "speech_drafts", None) if says_words else None  # WordFrames: how the corpus says words
    speech_drafts = words_said if speculate and decoder is None else None
    prior = speech_prior if words_said is not None else 0.0  # never with a decoder: `stream` refuses both
    clock = ClockReader(vocab) if clocked or speech_drafts is not None or prior or decoder is not None else None
    signals = [clock.push(token) for token in pending] if clock is not None else []
    # Speculation: drafted text ids go into the forward after the pending ids; `drafted` holds each with the
    # logits after it, used while the ids written agree with the draft (then they are already in the cache).
    drafter = None
    if speculate and hasattr(forward, "truncate"):
        drafter = Drafter(lookup_context(prompt_ids, vocab, heard), vocab, phrases=getattr(model, "phrases", None),
                          max_draft=speculate)
    else:
        speech_drafts = None
    drafted = []

    def speech_draft() -> list[int]:
        """The corpus's way of saying the word being read: its duration (right after the word) and frames."""
        if clock.speaking and clock.in_word_text:
            return speech_drafts.draft(vocab, clock.word, None, 0, 0, speculate)
        at = clock.next_frame()
        return [] if at is None else speech_drafts.draft(vocab, clock.word, clock.duration, *at, speculate)

    def with_prior(logits: torch.Tensor) -> torch.Tensor:
        """The model's log-probabilities, with the corpus's code for the next speech id mixed in (`speech_prior`)."""
        at = clock.next_frame() if prior else None
        grid = words_said.codes.get((clock.word, clock.duration)) if at is not None else None
        if grid is None or at[0] >= len(grid):
            return logits
        mixed = (1.0 - prior) * torch.softmax(logits.float(), dim=-1)
        mixed[vocab.speech_id(at[1], grid[at[0]][at[1]])] += prior
        return mixed.log()

    def feed(ids: list[int], fed_signals: list, keep: int | None = None) -> torch.Tensor:
        tensor = torch.tensor([ids], device=device)
        options = {"keep": keep} if keep is not None else {}
        if clocked and any(signal is not None for signal in fed_signals):  # a word's duration or frames: clocked
            return forward(inputs_embeds=model.embed(tensor, signals=fed_signals), **options)
        return forward(input_ids=tensor, **options)

    def logits_now() -> torch.Tensor:
        nonlocal pending, logits, forwards, drafted, signals
        if pending:
            if heard is not None and logits is None:  # the prompt, with the heard segments' vectors in place
                logits = forward(inputs_embeds=model.embed(torch.tensor([pending], device=device), [heard],
                                                           signals=signals or None))
            elif speech_drafts is not None and (state.phase == SPEECH or clock.in_word_text) and \
                    (draft := speech_draft()):  # a word's duration and frames (a word just written, too)
                shadow = copy.copy(clock)  # the drafted ids' signals, without moving the clock itself
                out = feed(pending + draft, signals + [shadow.push(token) for token in draft], keep=len(draft) + 1)
                logits, drafted = out[0], list(zip(draft, out[1:]))
            elif drafter is not None and state.phase in (THOUGHT, REPLY_TEXT) and (draft := drafter.draft()):
                out = feed(pending + draft, signals + [None] * len(draft), keep=len(draft) + 1)
                logits, drafted = out[0], list(zip(draft, out[1:]))
            else:
                logits = feed(pending, signals)
            pending, signals, forwards = [], [], forwards + 1
        return logits

    def written(token: int) -> None:
        """`token` is the reply's next id: already in the cache where it was drafted, else fed next time."""
        nonlocal pending, logits, drafted
        signal = clock.push(token) if clock is not None else None
        if drafter is not None:
            drafter.append(token)
        if drafted and drafted[0][0] == token:
            logits = drafted.pop(0)[1]
            return
        if drafted:  # the draft went wrong here: forget it from this id on
            forward.truncate(forward.length - len(drafted))
            drafted = []
        pending.append(token)
        if clock is not None:
            signals.append(signal if clocked else None)

    with codec.streaming(1) if codec is not None else nullcontext():
        while state.phase != DONE:
            allowed = machine.allowed_mask(state)
            if reading is not None and not forced:
                forced, allowed = read_aloud(machine, state, allowed, reading)
                if not forced and decoder is not None and decoder.predicts_durations and clock.in_word_text:
                    forced = [decoder_duration(decoder, vocab, clock.word, said_words, reading, allowed)]
            if not forced and (only := machine.forced(state)) is not None:
                forced = [only]  # fed with the next id the model chooses: no forward of its own
            if forced and bool(allowed[forced[0]]):
                token = forced.pop(0)
            elif words is not None and state.phase == THOUGHT:
                token = vocab.end_think  # reading aloud: nothing to think
            else:  # nothing forced, or the thought's cap came first
                forced, token = [], sample(with_prior(logits_now()), allowed)
                if words is not None and (vocab.is_text(token) or token == vocab.eot or not state.reply_tokens):
                    forced, token = _next_word(words, allowed, vocab)
            first_chunk = decoder is not None and clock.speaking and clock.in_word_text  # a word's first duration
            machine.advance(state, token)
            generated.append(token)
            written(token)
            if decoder is not None and vocab.is_duration(token) and clock.speaking:
                if first_chunk:
                    said_words.append(clock.word)
                before = said_words[-2] if len(said_words) > 1 else ()
                after = tuple(reading[0]) if reading else ()
                codes = decoder.say(clock.word, before, after, clock.duration, 0 if first_chunk else 1, last_frame)
                forced = [vocab.speech_id(k, code) for frame_codes in codes for k, code in enumerate(frame_codes)]
            if timed and token == vocab.speak:  # the words to read, fed a word a step
                reading = word_runs(model.tokenizer, state.reply)

            if vocab.is_text(token) and state.phase in texts:  # words read aloud (word_timed) are not new text
                piece = texts[state.phase].push(token)
                if piece:
                    yield SEGMENT_NAMES[state.phase], piece
                if calculator and state.phase == THOUGHT and not forced and piece.endswith("="):
                    result = calculator_result(texts[THOUGHT].text)
                    if result is not None:
                        forced = model.tokenizer(result, add_special_tokens=False)["input_ids"]
                        calculator_calls += 1
            elif vocab.is_speech(token):
                frame.append(vocab.speech_code(token)[1])
                if len(frame) == vocab.num_codebooks:
                    frames.append(frame)
                    last_frame, frame = frame, []
            if codec is not None and (len(frames) >= frames_per_chunk or state.phase == DONE):
                codes = torch.tensor(frames, dtype=torch.long).view(-1, vocab.num_codebooks).T[None]  # [1, K, f]
                wav = codec.decode_step(codes)  # [1, 1, t]: the samples now final
                if state.phase == DONE:
                    wav = torch.cat([wav, codec.flush()], dim=-1)
                frames = []
                if wav.shape[-1]:
                    if first_audio_ms is None:
                        first_audio_ms = 1000 * (time.perf_counter() - start_s)
                    yield "audio", wav[0]
    for phase, text in texts.items():
        piece = text.flush()
        if piece:
            yield SEGMENT_NAMES[phase], piece

    ids = torch.cat([prompt_ids.cpu(), torch.tensor(generated, dtype=torch.long)])
    total_s = time.perf_counter() - start_s
    yield "done", Reply(ids=ids, prompt_length=prompt_ids.numel(), turn=model.format.parse(ids, strict=False),
                        thought=texts[THOUGHT].text, reply_text=texts[REPLY_TEXT].text, capped=state.capped,
                        first_audio_ms=first_audio_ms, total_ms=1000 * total_s,
                        tokens_per_s=len(generated) / total_s, calculator_calls=calculator_calls,
                        forwards=forwards)


def read_aloud(machine: WordTimedPhases, state: TimedState, allowed: torch.Tensor,
               reading: list[list[int]]) -> tuple[list[int], torch.Tensor]:
    """How word_timed generation reads its reply aloud, at one step: (ids to write for the model, the ids it may
    choose from). Between words (after <speak> or a word's frames) the next word of `reading` (the reply's
    words, consumed) is written for it, or <eot> when none is left; right after a word only a duration may
    come, where the caps leave one. Elsewhere nothing changes."""
    if state.frames_due or state.speech_tokens % machine.vocab.num_codebooks:
        return [], allowed  # inside a word's frames
    if state.word_open:  # a word was just read: its duration comes next
        durations = allowed & machine.duration_mask
        return [], durations if bool(durations.any()) else allowed
    return (reading.pop(0) if reading else [machine.vocab.eot]), allowed


def decoder_duration(decoder, vocab, word: tuple[int, ...], said_words: list, reading: list[list[int]],
                     allowed: torch.Tensor) -> int:
    """The duration id the word decoder gives `word` (read right after `said_words`, before `reading`'s
    first), among the durations `allowed` leaves (the caps)."""
    durations = allowed[vocab.duration_id(1): vocab.duration_id(vocab.durations) + 1].cpu()
    after = tuple(reading[0]) if reading else ()
    return vocab.duration_id(decoder.duration(word, said_words[-1] if said_words else (), after, durations))


def _next_word(words: list[list[int]], allowed: torch.Tensor, vocab) -> tuple[list[int], int]:
    """Reading aloud, where the model ends a word (or has written none yet): (the rest of the next word, the id
    to write now). With no word left, or no room for one under the caps, the reply ends (<eot>)."""
    if words and bool(allowed[words[0][0]]):
        word = words.pop(0)
        return word[1:], word[0]
    return [], vocab.eot


def generate(model, prompt_ids: torch.Tensor, **options) -> Reply:
    """The whole reply at once: `stream` (same options) drained; decode its `reply_codes` with the codec."""
    return next(value for kind, value in stream(model, prompt_ids, **options) if kind == "done")
