"""Sequence formats: one spoken reasoning turn as one stream of joint-vocabulary ids, and back.

Every format starts with the same prompt, then lays out the reply its own way:

    prompt             <question> Q..Q </question>    (or <text_question> q..q </question>,
                                                      or <question> <heard>..<heard> </question>)
                       [<voice> s..s V..V </voice>]   (optional: style words as text, then a voice prompt)
    think_then_speak   <think> t..t </think> r..r <speak> S..S <eot>
    think_while_speaking
                       <think> N text </think> <speak> M frames <think> N text </think> <speak> ... <eot>
    text_guided        <think> t..t </think> r*offset S*M r*N S*M r*N ... <eot>
    word_aligned       <think> t..t </think> w1 S(w1) w2 S(w2) ... <eot>   (text-guided by word timing)
    word_timed         <think> t..t </think> r..r <speak> w1 d1 S(w1) w2 d2 S(w2) ... <eot>
                                                      (the reply text, then read aloud word by word,
                                                      each word's length d in frames first)
    word_timed_while_thinking
                       <think> N t </think> <speak> w1 d1 S(w1) <think> N t </think> <speak> w2 d2 S(w2)
                       <think> t..t </think> <speak> w3 d3 S(w3) w4 d4 S(w4) ... <eot>
                                                      (the reply's opening words, which commit to no
                                                      answer, one after each N thought ids; the rest
                                                      once the thought is whole)

(t thought, r reply text, s style words such as "fast low", Q/V/S the K ids of each audio frame; a heard question
holds one `<heard>` id per segment the audio encoder heard, and the model puts
that segment's vector there, see `s2s/hearing/ctc.py`; chapter 3 of
the tutorials draws real examples.) `build(turn)` gives a `Sequence`: the ids
and a segment label per position (THOUGHT, SPEECH, ...), so the model can
weight its loss per modality and mask logits per phase. `parse(sequence)`
gives the `Turn` back, exactly; `parse(..., strict=False)` reads generated
sequences, which may stop anywhere.

Audio inside a format is always the FLAT pattern: frame by frame, K ids a
frame, codebook 0 first. A sequence is therefore one 1-D stream with one id a
position, easy to check, draw and parse. A model that uses the delay pattern
needs no other format: it groups the speech of a sequence into delayed steps
and treats each step (K ids) as one position, a job for its input and output
layers, not for the layout of a turn.
"""
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


class ThinkThenSpeak(Format):
    """Chain of modality: the whole thought, then the reply text, then its speech.

        <think> t t t </think> r r <speak> S0 S1 S0 S1 <eot>
    """

    name = "think_then_speak"

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


FORMATS = {"think_then_speak": ThinkThenSpeak, "think_while_speaking": ThinkWhileSpeaking,
           "text_guided": TextGuided, "word_aligned": WordAligned, "word_timed": WordTimed,
           "word_timed_while_thinking": WordTimedWhileThinking}


def format_class(name: str) -> type[Format]:
    """The format class called `name` (a key of FORMATS)."""
    if name not in FORMATS:
        raise ValueError(f"unknown sequence format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def build_format(name: str, vocab: JointVocab, **kwargs) -> Format:
    """The format called `name` (a key of FORMATS), with its options (chunk sizes, offset)."""
    return format_class(name)(vocab, **kwargs)
