"""The joint vocabulary of the reasoning LM: text ids, special ids and speech ids in one range.

One embedding table and one output layer serve text and speech, so every
token the model reads or writes needs one id. The ids are laid out in blocks:

    0            T            T+S              T+S+C                    T+S+K*C              size
    |  text ids  |  specials  |  codebook 0    |  codebook 1  | ... |  codebook K-1  | durations |
    |<--- T ---->|<--- S ---->|<----- C ------>|<---- C ----->|     |<----- C ------>|<--- D --->|

    T = text_vocab_size (the text tokenizer's ids, unchanged, so its ids need no mapping)
    S = len(SPECIAL_TOKENS)
    C = codebook_size, K = num_codebooks
    D = durations: "the next word lasts n frames", n = 1..D (only the word_timed format has them;
        they come last, so a vocabulary without them keeps every other id)

Code `c` of codebook `k` has id `T + S + k * C + c`. Each codebook has its own
block (rather than sharing one block of C ids) so an id alone says which
codebook it belongs to: a format can check codebook order, and a flat
sequence never confuses codebook 0's code 5 with codebook 3's code 5.

Methods take a Python int or a LongTensor of any shape and answer in kind
(masks for `is_*`), so the same call serves one token and a whole batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# The order fixes the ids: append new tokens at the end, or saved models break.
SPECIAL_TOKENS = (
    "<pad>",  # batch padding, never a target
    "<eot>",  # end of turn: generation stops here
    "<question>",  # question audio starts
    "<text_question>",  # the question is given as text instead
    "</question>",  # either kind of question ends
    "<voice>",  # voice prompt audio starts (style control for the reply)
    "</voice>",
    "<think>",  # thought text starts (a chunk of it, in think-while-speaking)
    "</think>",
    "<reply>",  # reply text starts inside the text stream (think-while-speaking)
    "<speak>",  # reply speech starts (a chunk of it, in think-while-speaking)
    "<speech_pad>",  # the empty cells of the delay pattern
    "<heard>",  # one heard segment of question audio: the model puts the audio encoder's vector here
)
_SPECIAL_INDEX = {token: i for i, token in enumerate(SPECIAL_TOKENS)}


def _special(token: str) -> property:
    return property(lambda self: self.special(token), doc=f"The id of {token}.")


def _within(ids, low: int, high: int):
    """Mask (or bool) of ids in [low, high)."""
    return (ids >= low) & (ids < high)


def _all_within(values, low: int, high: int) -> bool:
    if isinstance(values, torch.Tensor):
        return values.numel() == 0 or (int(values.min()) >= low and int(values.max()) < high)
    return low <= values < high


def _span(values) -> str:
    """How an out-of-range argument reads in an error: the value, or a tensor's range."""
    if isinstance(values, torch.Tensor) and values.numel() > 1:
        return f"values in [{int(values.min())}, {int(values.max())}]"
    return str(int(values))


@dataclass(frozen=True)
class JointVocab:
    """Text ids, then SPECIAL_TOKENS, then one block of `codebook_size` ids per codebook."""

    text_vocab_size: int  # T: text ids are 0 .. T-1
    num_codebooks: int  # K
    codebook_size: int  # C: codes are 0 .. C-1
    durations: int = 0  # D: duration ids for words of 1 .. D frames (word_timed), none by default

    def __post_init__(self) -> None:
        for name in ("text_vocab_size", "num_codebooks", "codebook_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"JointVocab needs a positive integer {name}, got {value!r}")
        if not isinstance(self.durations, int) or self.durations < 0:
            raise ValueError(f"JointVocab needs an integer durations >= 0, got {self.durations!r}")

    pad = _special("<pad>")
    eot = _special("<eot>")
    question = _special("<question>")
    text_question = _special("<text_question>")
    end_question = _special("</question>")
    voice = _special("<voice>")
    end_voice = _special("</voice>")
    think = _special("<think>")
    end_think = _special("</think>")
    reply = _special("<reply>")
    speak = _special("<speak>")
    speech_pad = _special("<speech_pad>")
    heard = _special("<heard>")

    # ------------------------------------------------------------------ ranges
    @property
    def size(self) -> int:
        """Number of ids: the rows of the embedding table."""
        return self.speech_end + self.durations

    @property
    def speech_end(self) -> int:
        """One past the last speech id: where the duration ids start."""
        return self.speech_start + self.num_codebooks * self.codebook_size

    @property
    def speech_start(self) -> int:
        """First speech id (codebook 0, code 0)."""
        return self.text_vocab_size + len(SPECIAL_TOKENS)

    @property
    def text_range(self) -> range:
        return range(0, self.text_vocab_size)

    @property
    def special_range(self) -> range:
        return range(self.text_vocab_size, self.speech_start)

    def speech_range(self, codebook: int | None = None) -> range:
        """Ids of one codebook, or of all speech when `codebook` is None."""
        if codebook is None:
            return range(self.speech_start, self.speech_end)
        if not 0 <= codebook < self.num_codebooks:
            raise ValueError(f"codebook must lie in [0, {self.num_codebooks}), got {codebook}")
        start = self.speech_start + codebook * self.codebook_size
        return range(start, start + self.codebook_size)

    # ------------------------------------------------------------------ special tokens
    def special(self, token: str) -> int:
        """The id of a special token, by its name as written in SPECIAL_TOKENS ("<think>")."""
        if token not in _SPECIAL_INDEX:
            raise KeyError(f"no special token {token!r}; the special tokens are {', '.join(SPECIAL_TOKENS)}")
        return self.text_vocab_size + _SPECIAL_INDEX[token]

    def special_name(self, id_: int) -> str:
        """The name of a special id ("<think>")."""
        if not self.is_special(id_):
            raise ValueError(f"id {id_} is not a special token ({self.describe(id_)})")
        return SPECIAL_TOKENS[id_ - self.text_vocab_size]

    # ------------------------------------------------------------------ speech ids
    def speech_id(self, codebook, code):
        """Joint id of `code` in `codebook`; ints or broadcastable LongTensors."""
        if not _all_within(codebook, 0, self.num_codebooks):
            raise ValueError(f"codebook must lie in [0, {self.num_codebooks}), got {_span(codebook)}")
        if not _all_within(code, 0, self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got {_span(code)}")
        return self.speech_start + codebook * self.codebook_size + code

    def speech_code(self, ids):
        """(codebook, code) of speech ids; ints or LongTensors. Raises if any id is not speech."""
        if not _all_within(ids, self.speech_start, self.speech_end):
            raise ValueError(f"speech ids must lie in [{self.speech_start}, {self.speech_end}), got {_span(ids)}")
        offset = ids - self.speech_start
        return offset // self.codebook_size, offset % self.codebook_size

    # ------------------------------------------------------------------ duration ids
    @property
    def duration_range(self) -> range:
        return range(self.speech_end, self.size)

    def duration_id(self, frames):
        """The id that says "the next word lasts `frames` frames" (1 .. durations); int or LongTensor."""
        if not _all_within(frames, 1, self.durations + 1):
            raise ValueError(f"a word's frames must lie in [1, {self.durations}] for a duration id, got "
                             f"{_span(frames)}" + ("" if self.durations else " (this vocabulary has no durations)"))
        return self.speech_end + frames - 1

    def duration_frames(self, ids):
        """The frames a duration id stands for; int or LongTensor. Raises if any id is not a duration."""
        if not _all_within(ids, self.speech_end, self.size):
            raise ValueError(f"duration ids must lie in [{self.speech_end}, {self.size}), got {_span(ids)}")
        return ids - self.speech_end + 1

    # ------------------------------------------------------------------ masks
    def is_text(self, ids):
        return _within(ids, 0, self.text_vocab_size)

    def is_special(self, ids):
        return _within(ids, self.text_vocab_size, self.speech_start)

    def is_speech(self, ids, codebook: int | None = None):
        """Mask of speech ids, of any codebook or of one."""
        span = self.speech_range(codebook)
        return _within(ids, span.start, span.stop)

    def is_duration(self, ids):
        return _within(ids, self.speech_end, self.size)

    def describe(self, id_: int) -> str:
        """A short human name of one id, for error messages: "text 17", "<think>", "codebook 2 code 5"."""
        id_ = int(id_)
        if self.is_text(id_):
            return f"text {id_}"
        if self.is_special(id_):
            return self.special_name(id_)
        if self.is_speech(id_):
            codebook, code = self.speech_code(id_)
            return f"codebook {codebook} code {code}"
        if self.is_duration(id_):
            return f"duration {self.duration_frames(id_)} frames"
        return f"id {id_} (outside the vocabulary of {self.size})"

    def describe_mask(self, mask) -> str:
        """A mask over the vocabulary [V] in words, for reading a phase machine: "all text | </think>", "S0 | <eot>"
        (Sk: codebook k's ids; durations counted)."""
        parts, text = [], int(mask[: self.text_vocab_size].sum())
        if text:
            parts.append("all text" if text == self.text_vocab_size else f"{text} text")
        parts += [self.special_name(i) for i in self.special_range if mask[i]]
        parts += [f"S{k}" for k in range(self.num_codebooks)
                  if mask[self.speech_range(k).start: self.speech_range(k).stop].any()]
        durations = int(mask[self.speech_end:].sum())
        return " | ".join(parts + ([f"{durations} durations"] if durations else []))

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        """Plain JSON/YAML data, saved beside the weights; the special tokens are kept to catch a mismatch."""
        return {"text_vocab_size": self.text_vocab_size, "num_codebooks": self.num_codebooks,
                "codebook_size": self.codebook_size, "durations": self.durations,
                "special_tokens": list(SPECIAL_TOKENS)}

    @classmethod
    def from_dict(cls, data: dict) -> JointVocab:
        saved = tuple(data.get("special_tokens", SPECIAL_TOKENS))
        if saved != SPECIAL_TOKENS:
            raise ValueError(f"the saved vocabulary has special tokens {saved}, this code has {SPECIAL_TOKENS}: "
                             "the ids would not match; load it with the s2s version that saved it")
        return cls(int(data["text_vocab_size"]), int(data["num_codebooks"]), int(data["codebook_size"]),
                   int(data.get("durations", 0)))  # saved before durations existed: none
