"""Datamodule batches -> LM batches: each example's texts and codes become one row of joint ids.

The datamodule knows nothing of tokenizers or formats (it serves any model:
`question`, `thought`, `reply` texts and padded codes [B, K, F] with their
lengths in frames). This file is the one place that turns such a batch into
what the LM reads: it tokenises the texts, lays out each example with a
sequence format (`s2s/lm/formats/`) and right-pads the rows with `<pad>`.
It is kept apart from the model so it can be read and tested without one.
"""
from __future__ import annotations

import bisect
import re

import torch
from transformers import PreTrainedTokenizerBase

from s2s.data.numbers import says_a_number
from s2s.lm.formats import SPECIAL, Format, Sequence, Turn


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """Text ids of each text, without the tokenizer's own special tokens (the joint vocabulary has its own)."""
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []


def word_token_counts(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """How many of `text`'s ids (as `tokenize` cuts it) belong to each whitespace word of it, in order.

    An id counts with the word its last character lies in (a byte-level id
    carries the space before its word); pieces of one word add up.
    """
    starts = [match.start() for match in re.finditer(r"\S+", text)]
    counts = [0] * len(starts)
    for _, end in tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]:
        counts[max(bisect.bisect_right(starts, end - 1) - 1, 0)] += 1
    return counts


def word_runs(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> list[list[int]]:
    """Text ids cut into their whitespace words, as `word_token_counts` counts them: a new word starts at an
    id whose text starts with whitespace (a byte-level id carries the space before its word)."""
    runs = []
    for id_ in ids:
        if not runs or tokenizer.decode([id_])[:1].isspace():
            runs.append([])
        runs[-1].append(id_)
    return runs


def reply_opening(tokenizer: PreTrainedTokenizerBase, reply: str) -> int:
    """How many of `reply`'s first ids (as `tokenize` cuts it) say no number: the words that may be spoken
    before the thought has found the answer ("The answer is" of "The answer is fourteen.")."""
    opening = 0
    for word, ids in zip(reply.split(), word_token_counts(tokenizer, reply)):
        if says_a_number(word):
            break
        opening += ids
    return opening


def reply_alignment(tokenizer: PreTrainedTokenizerBase, reply: str, word_frames: list[int]) -> list[tuple[int, int]]:
    """(text ids, frames) per word of `reply`, given the frames of each of its whitespace words."""
    counts = word_token_counts(tokenizer, reply)
    if len(counts) != len(word_frames):
        raise ValueError(f"the reply {reply!r} has {len(counts)} words but its alignment {len(word_frames)}: "
                         "was it timed from another text? delete the cached alignment and build it again")
    return list(zip(counts, word_frames))


def batch_turns(batch: dict, tokenizer: PreTrainedTokenizerBase, num_codebooks: int) -> list[Turn]:
    """One Turn per example: the first `num_codebooks` codebooks of each code grid, without the batch padding.

    The question is audio (`question_codes`) when the batch has it, else the
    written question as text. A `voice_codes` entry becomes the voice prompt.
    """
    size = len(batch["thought"])

    def codes(key: str, i: int) -> torch.Tensor | None:
        if key not in batch:
            return None
        grid = batch[key][i].cpu()  # [K_codec, F_max]; layouts are built on the CPU
        if grid.shape[0] < num_codebooks:
            raise ValueError(f"{key} has {grid.shape[0]} codebooks, the LM reads {num_codebooks}: "
                             "tokenize the data with the LM's codec")
        return grid[:num_codebooks, : int(batch[key.replace("_codes", "_lengths")][i])]

    thoughts, replies = tokenize(tokenizer, batch["thought"]), tokenize(tokenizer, batch["reply"])
    questions = [None] * size if "question_codes" in batch else tokenize(tokenizer, batch["question_written"])
    return [Turn(question_codes=codes("question_codes", i), question_text_ids=questions[i],
                 thought_ids=thoughts[i], reply_ids=replies[i], reply_codes=codes("reply_codes", i),
                 voice_codes=codes("voice_codes", i), reply_opening=reply_opening(tokenizer, batch["reply"][i]))
            for i in range(size)]


def pad_sequences(sequences: list[Sequence], pad_id: int) -> dict:
    """Right-pad to ids [B, L] (`pad_id` at pads), segment [B, L] (SPECIAL there), attention_mask [B, L] (0 there)."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    segment = torch.full((len(sequences), length), SPECIAL, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence.ids
        segment[row, : len(sequence)] = sequence.segment
    return {"ids": ids, "segment": segment, "attention_mask": (ids != pad_id).long()}


def encode_batch(batch: dict, tokenizer: PreTrainedTokenizerBase, format: Format) -> dict:
    """A datamodule batch (texts, codes [B, K, F], lengths [B]) -> ids, segment and attention_mask [B, L]."""
    turns = batch_turns(batch, tokenizer, format.vocab.num_codebooks)
    return pad_sequences([format.build(turn) for turn in turns], format.vocab.pad)
