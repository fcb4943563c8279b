"""The text tokenizer of the reasoning LM: a small byte-level BPE of our own, or a pretrained backbone's.

A model trained from scratch on the synthetic corpus needs few text ids: the
problems use a small vocabulary, and every text id costs an embedding row
and an output logit next to the speech ids. `train_text_tokenizer` learns a
byte-level BPE of about 1,024 ids from a manifest's texts, with every digit
its own id. Byte level means any
string encodes (no unknown token) and decodes back exactly. It has no special
tokens: the joint vocabulary (`s2s/lm/vocab.py`) adds the LM's own after the
text ids.

A pretrained backbone keeps its own tokenizer, so its text ids keep their
meaning; `load_text_tokenizer` reads either kind through `AutoTokenizer`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from s2s.data.manifest import read_manifest

# The manifest texts the tokenizer learns from: everything the LM reads or writes as text.
TEXT_FIELDS = ("question_written", "question", "thought", "reply")


def manifest_texts(manifest_paths: Iterable[str | os.PathLike]) -> list[str]:
    """The non-empty TEXT_FIELDS of every row, in file order (the order fixes the result)."""
    return [row[field] for path in manifest_paths for row in read_manifest(path)
            for field in TEXT_FIELDS if row.get(field)]


def train_text_tokenizer(manifest_paths: Iterable[str | os.PathLike] | str | os.PathLike,
                         vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Byte-level BPE with at most `vocab_size` ids (256 bytes + merges) on the manifests' texts.

    Deterministic: the same manifests give the same ids. Save it with
    `tokenizer.save_pretrained(folder)` and read it back with `load_text_tokenizer(folder)`.
    """
    if isinstance(manifest_paths, (str, os.PathLike)):
        manifest_paths = [manifest_paths]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet):
        raise ValueError(f"a byte-level tokenizer needs vocab_size >= {len(alphabet)} (one id per byte), "
                         f"got {vocab_size}")
    texts = manifest_texts(manifest_paths)
    if not texts:
        raise ValueError(f"no text to train a tokenizer on in {', '.join(map(str, manifest_paths))}: "
                         f"expected rows with any of the fields {', '.join(TEXT_FIELDS)}")
    tokenizer = Tokenizer(models.BPE())
    # One id per digit (the first keeps the space before it), as in Llama: numbers are then read and added
    # digit by digit, the same way for every number, instead of as merges learned for frequent numbers.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.ByteLevel(add_prefix_space=False),
        pre_tokenizers.Split(Regex(r"\d"), behavior="merged_with_previous")])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, special_tokens=[],
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


def load_text_tokenizer(name_or_dir: str | os.PathLike) -> PreTrainedTokenizerBase:
    """A tokenizer folder (ours, or one saved beside a backbone) or a Hugging Face hub id."""
    try:
        return AutoTokenizer.from_pretrained(str(name_or_dir))
    except (OSError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]  # transformers' first line
        if Path(name_or_dir).is_dir():
            raise ValueError(f"cannot load the text tokenizer {str(name_or_dir)!r}: the folder exists but holds no "
                             f"tokenizer ({reason}); train one with train_text_tokenizer, or give the LM "
                             "`tokenizer_train_manifest`") from None
        raise ValueError(f"cannot load the text tokenizer {str(name_or_dir)!r}: it is neither a folder here nor a hub "
                         f"id that could be downloaded ({reason}); for a pretrained backbone, download it once "
                         "(huggingface-cli download ID) or give a local folder") from None
