"""A word_timed reasoner's replies as it would read them aloud, counted from a corpus: the rows the word decoder
trains on (`s2s/lm/word_decoder_training.py`) and the speech drafts (`WordFrames`) a model folder carries.
Both need a saved reasoner, so they live above `s2s.lm.model`, not beside the tables they fill."""
from __future__ import annotations

import os
from pathlib import Path

from s2s.codecs import load_codec
from s2s.data.manifest import read_manifest
from s2s.lm.batching import reply_alignment, tokenize
from s2s.lm.data import reply_codes, reply_word_frames
from s2s.lm.formats import Turn, WordTimed
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.speculate import SPEECH_FILE, WordFrames


def build_speech_drafts_for_model(folder: str | os.PathLike, manifests, judge_dir: str, min_count: int = 2,
                                  overwrite: bool = False) -> Path:
    """Count how the replies of `manifests` say each word (`WordFrames`) for the word_timed model saved in
    `folder` (`reply_speech_rows`), and save it there (SPEECH_FILE)."""
    model = SpeechReasoningLM.from_pretrained(folder)
    table = WordFrames.from_rows(reply_speech_rows(model, manifests, judge_dir), model.vocab, min_count=min_count)
    return table.save(Path(folder) / SPEECH_FILE, overwrite=overwrite)


def reply_speech_rows(model, manifests, judge_dir: str) -> list[list[int]]:
    """Each distinct reply of `manifests` as the word_timed `model` would read it aloud (ids from `<speak>`
    on): its codec's codes of the reply audio, its words timed by forced alignment with the CTC judge in
    `judge_dir` (both cached beside the manifest, as training caches them)."""
    if not isinstance(model.format, WordTimed):
        raise ValueError(f"this is a {model.format.name} model; speech drafts and the word decoder follow words "
                         "said with their durations, which only the word_timed formats have")
    codec, vocab = model.init_args["codec"], model.vocab
    frame_rate = load_codec(codec, num_codebooks=vocab.num_codebooks).frame_rate
    rows = []
    for manifest in map(Path, manifests):
        if not any(row.get("reply_audio") for row in read_manifest(manifest)):
            raise ValueError(f"no rows of {manifest} have reply_audio to read replies aloud from")
        codes = reply_codes(manifest, codec, vocab.num_codebooks)
        frames = reply_word_frames(manifest, codes, frame_rate, judge_dir)
        for reply, grid in codes.items():
            reply_ids = tokenize(model.tokenizer, [reply])[0]
            turn = Turn(heard_length=1, thought_ids=[], reply_ids=reply_ids, reply_codes=grid.long(),
                        reply_alignment=reply_alignment(model.tokenizer, reply, frames[reply]))
            rows.append(model.format.build(turn).ids.tolist())
    return rows
