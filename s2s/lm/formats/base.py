"""What every sequence format shares: segment labels, `Turn` and `Sequence`, the `Format` base class (layout:
`build` / `parse`) and the `PhaseMachine` base class (generation: which ids may come next). Each format is one
module of this package holding both halves; `s2s/lm/formats/__init__.py` registers them."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from s2s.lm.patterns import FlatPattern
from s2s.lm.vocab import JointVocab

# Segment labels: the role of each position of a Sequence.
# READ_ALOUD: a reply word again, just before its speech (word_timed); DURATION: that word's length in frames.
SPECIAL, QUESTION_AUDIO, QUESTION_TEXT, VOICE, THOUGHT, REPLY_TEXT, SPEECH, STYLE, READ_ALOUD, DURATION = range(10)
SEGMENT_NAMES = ("special", "question_audio", "question_text", "voice", "thought", "reply_text", "speech", "style",
                 "read_aloud", "duration")


def _as_codes(codes, what: str) -> torch.Tensor | None:
    if codes is None:
        return None
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.dtype.is_floating_point:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"{what} must be integer codes [K, F], got {shape}")
    return codes.long()


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    return a == b


@dataclass(eq=False, kw_only=True)
class Turn:
    """One question and its answer: what a format lays out. Give exactly one kind of question."""

    question_codes: torch.Tensor | None = None  # [K, F_question] question audio as codec tokens
    question_text_ids: list[int] | None = None  # or the question as text ids
    heard_length: int | None = None  # or the question as this many heard segments (vectors given beside the ids)
    thought_ids: list[int]
    reply_ids: list[int]
    reply_codes: torch.Tensor  # [K, F_reply] reply speech
    voice_codes: torch.Tensor | None = None  # [K, F_voice] voice prompt
    style_ids: list[int] | None = None  # the style asked for, as text ids ("fast low"), inside the voice prompt
    # How the reply's speech lines up with its text: (text ids, frames) per word, in order (word_aligned
    # lays a reply out by it). Layout, not content: two turns that say the same are equal whatever it is.
    reply_alignment: list[tuple[int, int]] | None = field(default=None, compare=False)
    # How many of the reply's first ids may be said before the thought is whole (they commit to no answer:
    # "The answer is"); word_timed_while_thinking speaks them while it thinks. Layout, not content, too.
    reply_opening: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        questions = (self.question_codes, self.question_text_ids, self.heard_length)
        if sum(q is not None for q in questions) != 1:
            raise ValueError("a Turn needs exactly one question: question_codes (audio tokens), question_text_ids "
                             "(text) or heard_length (heard audio segments)")
        if self.heard_length is not None and (not isinstance(self.heard_length, int) or self.heard_length < 1):
            # An empty heard question would read back as empty question audio: hearing always gives one segment.
            raise ValueError(f"heard_length must be an integer >= 1, got {self.heard_length!r}")
        self.question_codes = _as_codes(self.question_codes, "question_codes")
        self.reply_codes = _as_codes(self.reply_codes, "reply_codes")
        self.voice_codes = _as_codes(self.voice_codes, "voice_codes")
        if self.style_ids is not None:
            self.style_ids = [int(i) for i in self.style_ids] or None  # no words: no style
        if self.style_ids and self.voice_codes is not None and self.voice_codes.shape[1] == 0:
            self.voice_codes = None  # style words alone: `<voice> s s </voice>` reads back without a voice
        if self.question_text_ids is not None:
            self.question_text_ids = [int(i) for i in self.question_text_ids]
        self.thought_ids = [int(i) for i in self.thought_ids]
        self.reply_ids = [int(i) for i in self.reply_ids]
        if not isinstance(self.reply_opening, int) or not 0 <= self.reply_opening <= len(self.reply_ids):
            raise ValueError(f"reply_opening must be an integer from 0 to the reply's {len(self.reply_ids)} ids, "
                             f"got {self.reply_opening!r}")
        if self.reply_alignment is not None:
            self.reply_alignment = [(int(n), int(f)) for n, f in self.reply_alignment]
            ids, frames = sum(n for n, _ in self.reply_alignment), sum(f for _, f in self.reply_alignment)
            if (ids, frames) != (len(self.reply_ids), self.reply_codes.shape[1]) or \
                    any(n < 0 or f < 0 for n, f in self.reply_alignment):
                raise ValueError(f"reply_alignment covers {ids} text ids and {frames} frames, but the reply has "
                                 f"{len(self.reply_ids)} and {self.reply_codes.shape[1]}: give (ids, frames) per "
                                 "word, each >= 0, summing to the reply's")
        codebooks = {c.shape[0] for c in (self.question_codes, self.reply_codes, self.voice_codes) if c is not None}
        if len(codebooks) > 1:
            raise ValueError(f"question, reply and voice codes must have the same number of codebooks, got {codebooks}")

    @property
    def num_codebooks(self) -> int:
        return self.reply_codes.shape[0]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Turn):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self) if f.compare)


@dataclass(eq=False)
class Sequence:
    """A built turn: ids [L] of the joint vocabulary and segment [L], the role of each position."""

    ids: torch.Tensor  # [L] LongTensor
    segment: torch.Tensor  # [L] LongTensor of SPECIAL, QUESTION_AUDIO, ... SPEECH

    def __len__(self) -> int:
        return self.ids.numel()


class _Writer:
    """Appends ids with their segment labels."""

    def __init__(self, vocab: JointVocab, flat: FlatPattern):
        self.vocab, self.flat = vocab, flat
        self.ids: list[int] = []
        self.segment: list[int] = []

    def add(self, ids: list[int], segment: int | list[int]) -> None:
        self.ids += ids
        self.segment += segment if isinstance(segment, list) else [segment] * len(ids)

    def special(self, token: str) -> None:
        self.add([self.vocab.special(token)], SPECIAL)

    def speech(self, codes: torch.Tensor, segment: int) -> None:
        self.add(self.flat.build(codes).tolist(), segment)

    def sequence(self) -> Sequence:
        return Sequence(torch.tensor(self.ids, dtype=torch.long), torch.tensor(self.segment, dtype=torch.long))


class _Stop(Exception):
    """Parsing met something out of place; the message says what and where."""


class _Cursor:
    """Reads ids left to right. Every read either succeeds or raises _Stop."""

    def __init__(self, ids: list[int], vocab: JointVocab, flat: FlatPattern):
        self.ids, self.vocab, self.flat, self.pos = ids, vocab, flat, 0

    def done(self) -> bool:
        return self.pos == len(self.ids)

    def found(self) -> str:
        return "the end of the sequence" if self.done() else self.vocab.describe(self.ids[self.pos])

    def at(self, token: str) -> bool:
        return not self.done() and self.ids[self.pos] == self.vocab.special(token)

    def look(self, *tokens: str) -> str:
        """Which of `tokens` comes next; raises if none does."""
        for token in tokens:
            if self.at(token):
                return token
        either = tokens[0] if len(tokens) == 1 else f"{', '.join(tokens[:-1])} or {tokens[-1]}"
        raise _Stop(f"expected {either} at position {self.pos}, found {self.found()}")

    def take(self, *tokens: str) -> str:
        token = self.look(*tokens)
        self.pos += 1
        return token

    def _run(self, is_kind) -> list[int]:
        start = self.pos
        while not self.done() and is_kind(self.ids[self.pos]):
            self.pos += 1
        return self.ids[start: self.pos]

    def text(self, into: list[int]) -> None:
        """Append the run of text ids that comes next (maybe none) to `into`."""
        into += self._run(self.vocab.is_text)

    def speech(self, into: list[torch.Tensor]) -> None:
        """Append the run of speech ids that comes next as codes [K, f] to `into`; it must be whole frames."""
        start = self.pos
        run = torch.tensor(self._run(self.vocab.is_speech), dtype=torch.long)
        try:
            into.append(self.flat.revert(run))
        except ValueError as error:
            into.append(self.flat.revert(run, strict=False))  # the whole frames before the fault
            raise _Stop(f"{error} (in the speech that starts at position {start})") from None


@dataclass
class _Parts:
    """What parsing has read so far; becomes a Turn even when parsing stopped early (strict=False)."""

    question_codes: list[torch.Tensor] | None = None
    question_text_ids: list[int] | None = None
    heard_length: int | None = None
    voice_codes: list[torch.Tensor] | None = None
    style: list[int] = field(default_factory=list)
    thought: list[int] = field(default_factory=list)
    reply: list[int] = field(default_factory=list)
    speech: list[torch.Tensor] = field(default_factory=list)
    alignment: list[tuple[int, int]] = field(default_factory=list)  # (text ids, frames) runs, interleaved replies
    opening: int = 0  # reply ids said before the thought's last chunk (word_timed_while_thinking)
    prompt_done: bool = False
    saw_reply_marker: bool = False

    def turn(self, num_codebooks: int) -> Turn:
        def codes(pieces):
            return torch.cat(pieces, dim=1) if pieces else torch.zeros(num_codebooks, 0, dtype=torch.long)

        return Turn(question_codes=None if self.question_codes is None else codes(self.question_codes),
                    question_text_ids=self.question_text_ids, heard_length=self.heard_length,
                    thought_ids=self.thought, reply_ids=self.reply,
                    reply_codes=codes(self.speech),
                    voice_codes=None if self.voice_codes is None else codes(self.voice_codes),
                    style_ids=self.style or None,
                    reply_alignment=self.alignment or None, reply_opening=self.opening)


class Format:
    """The shared prompt, the closing <eot>, checks and parsing; subclasses lay out the reply."""

    name = "format"
    phases: type[PhaseMachine] | None = None  # its rules for generation, in the same module as the format
    # Whether the thought pauses for words of the reply text (word_timed_while_thinking): generating a
    # thought alone then still needs room for those words, or a reply of none would close the thought early.
    thought_pauses_for_words = False

    def __init__(self, vocab: JointVocab):
        self.vocab = vocab
        self.flat = FlatPattern(vocab)

    @staticmethod
    def durations(**options) -> int:
        """How many duration ids the vocabulary needs for this format with these options (only word_timed)."""
        return 0

    def build(self, turn: Turn) -> Sequence:
        """Turn -> Sequence (ids [L], segment [L])."""
        self._check(turn)
        writer = _Writer(self.vocab, self.flat)
        if turn.question_codes is not None:
            writer.special("<question>")
            writer.speech(turn.question_codes, QUESTION_AUDIO)
        elif turn.heard_length is not None:
            writer.special("<question>")
            writer.add([self.vocab.heard] * turn.heard_length, QUESTION_AUDIO)
        else:
            writer.special("<text_question>")
            writer.add(turn.question_text_ids, QUESTION_TEXT)
        writer.special("</question>")
        if turn.voice_codes is not None or turn.style_ids:
            writer.special("<voice>")
            writer.add(turn.style_ids or [], STYLE)
            if turn.voice_codes is not None:
                writer.speech(turn.voice_codes, VOICE)
            writer.special("</voice>")
        self._write_reply(writer, turn)
        writer.special("<eot>")
        return writer.sequence()

    def build_without_speech(self, turn: Turn) -> Sequence:
        """The row of a turn whose speech is not given: everything up to where its speech would begin.

        Training rows without speech (reasoning practice, a fifth of the
        positions) must still teach when speech starts, so they end on the
        last id before it, which stays a target. Here: the whole layout with
        no frames, less its <eot> (think-then-speak ends on `<speak>`).
        """
        empty = torch.zeros(turn.num_codebooks, 0, dtype=torch.long)
        turn = Turn(**{f.name: getattr(turn, f.name) for f in fields(turn)} | {"reply_codes": empty,
                                                                              "reply_alignment": None})
        sequence = self.build(turn)
        return Sequence(sequence.ids[:-1], sequence.segment[:-1])

    def parse(self, sequence: Sequence | torch.Tensor, strict: bool = True) -> Turn:
        """Sequence (or ids [L]) -> Turn.

        Strict: the ids must be exactly what `build` makes of some turn, else
        ValueError says what is out of place and where. Not strict (generated
        ids): keep what came before the first fault, and the first <eot> counts
        as one (what follows it is ignored); a trailing partial frame is dropped
        and a part never reached is empty. The prompt (question, voice) must be
        whole in both modes: it was given, not generated.
        """
        ids = sequence.ids if isinstance(sequence, Sequence) else torch.as_tensor(sequence)
        if ids.dim() != 1:
            raise ValueError(f"{self.name}: parse takes ids [L], got shape {tuple(ids.shape)}")
        ids = ids.tolist()
        cursor, parts = _Cursor(ids, self.vocab, self.flat), _Parts()
        try:
            self._read_prompt(cursor, parts)
            self._read_reply(cursor, parts)
            cursor.take("<eot>")
            if not cursor.done():
                raise _Stop(f"{len(ids) - cursor.pos} ids follow the <eot> at position {cursor.pos - 1}")
        except _Stop as stop:
            if strict or not parts.prompt_done:
                raise ValueError(f"{self.name}: {stop}") from None
        turn = parts.turn(self.vocab.num_codebooks)
        if strict:
            self._check_layout(ids, turn)
        return turn

    # ------------------------------------------------------------------ for subclasses
    def _write_reply(self, writer: _Writer, turn: Turn) -> None:
        raise NotImplementedError

    def _read_reply(self, cursor: _Cursor, parts: _Parts) -> None:
        """Read everything between the prompt and the <eot> (which stays unread)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def _read_prompt(self, cursor: _Cursor, parts: _Parts) -> None:
        if cursor.take("<question>", "<text_question>") == "<question>" and cursor.at("<heard>"):
            start = cursor.pos
            while cursor.at("<heard>"):
                cursor.take("<heard>")
            parts.heard_length = cursor.pos - start
        elif self.vocab.question == cursor.ids[cursor.pos - 1]:
            parts.question_codes = []
            cursor.speech(parts.question_codes)
        else:
            parts.question_text_ids = []
            cursor.text(parts.question_text_ids)
        cursor.take("</question>")
        if cursor.at("<voice>"):
            cursor.take("<voice>")
            cursor.text(parts.style)
            parts.voice_codes = []
            cursor.speech(parts.voice_codes)
            if parts.style and not parts.voice_codes[0].shape[1]:
                parts.voice_codes = None  # style words alone
            cursor.take("</voice>")
        parts.prompt_done = True

    def _check(self, turn: Turn) -> None:
        if turn.num_codebooks != self.vocab.num_codebooks:
            raise ValueError(f"{self.name}: the turn has {turn.num_codebooks} codebooks, "
                             f"the vocabulary {self.vocab.num_codebooks}")
        for what in ("question_text_ids", "thought_ids", "reply_ids", "style_ids"):
            outside = [i for i in getattr(turn, what) or [] if not self.vocab.is_text(i)]
            if outside:
                raise ValueError(f"{self.name}: {what} holds {outside[0]}, outside the text ids "
                                 f"[0, {self.vocab.text_vocab_size})")

    def _check_layout(self, ids: list[int], turn: Turn) -> None:
        """Every piece was well formed; the chunk sizes and order must also be the format's own."""
        rebuilt = self.build(turn).ids.tolist()
        if rebuilt != ids:
            at = next((i for i, (a, b) in enumerate(zip(ids, rebuilt)) if a != b), min(len(ids), len(rebuilt)))
            found = self.vocab.describe(ids[at]) if at < len(ids) else "the end"
            wanted = self.vocab.describe(rebuilt[at]) if at < len(rebuilt) else "the end"
            raise ValueError(f"{self.name}: position {at} holds {found} where the layout puts {wanted} "
                             "(chunk sizes or order break the format's rule)")


# ---------------------------------------------------------------------- phases
DONE = -1  # not a segment label: the reply has ended with <eot>


# ---------------------------------------------------------------------- phases
@dataclass
class PhaseState:
    """Where a reply being generated stands: its phase and how much of each part is written."""

    phase: int = THOUGHT  # THOUGHT, REPLY_TEXT, SPEECH (segment labels, above) or DONE
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
            raise ValueError(f"{self.format.name}: the reply has ended; nothing may follow its <eot>")
        if not bool(self.allowed_mask(state)[token]):
            raise ValueError(f"{self.format.name}: {self.vocab.describe(token)} may not come next in the "
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
