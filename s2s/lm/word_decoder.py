"""The word decoder: all the frames of a word read aloud at once, from the word, its neighbours and its length.

A word_timed reply writes a word, its duration d, then d frames of codes.
Generated one code at a time, a small LM says each word perfectly when fed the
corpus's codes (teacher-forced) and drifts when fed its own ("It is five."
heard as "it is fifteen"): exposure bias. Speech decoders that must not drift
predict a unit's frames in parallel instead (FastSpeech's decoder after its
length regulator; LLaMA-Omni's non-autoregressive speech decoder on the LLM's
states). Here the LM still chooses every word and its duration; this decoder
says the word's d frames in one pass, conditioned on

    the word, the word before and the word after (mean text-id embeddings),
    d, each frame's place (from the start and from the end),
    whether the word goes on from an earlier chunk (words over 48 frames),
    the last frame said before it (so the join is smooth),

and generation writes its frames for the LM as it writes the reply's words
(`stream(..., word_decoder=True)`). The LM's KV cache still sees every frame.

Trained on the word occurrences of the corpus's replies (`word_occurrences`):
`s2s fit --config configs/lm/word-decoder.yaml`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from safetensors.torch import load_file, save_file

from s2s.files import atomic_folder
from s2s.lm.vocab import JointVocab

Word = tuple[int, ...]


def word_occurrences(rows: list[list[int]], vocab: JointVocab, keep_empty: bool = False) -> list[dict]:
    """Each chunk of a word said in word_timed `rows` (ids): {"word", "before", "after" (text ids; () at the
    reply's ends), "chunk" (0 for a word's first duration id, 1 for a long word's later ones), "duration" (the
    frames its duration id says), "previous" (the K codes of the frame said just before, or None at the start),
    "codes" ([d][K], whole frames only: fewer than d where a row was cut short)}. Chunks with no whole frame
    are left out unless `keep_empty`."""
    from s2s.lm.word_clock import ClockReader  # reads a row as generation does (frame, codebook, word)

    found = []
    for ids in rows:
        reader, said, frame, last = ClockReader(vocab), [], [], None
        words: list[Word] = []
        for token in ids:
            first = reader.speaking and reader.in_word_text and bool(reader.word)  # right after the word
            at = reader.next_frame()
            reader.push(token)
            if vocab.is_duration(token) and reader.speaking:
                if first:
                    words.append(reader.word)
                said.append({"word": reader.word, "index": len(words) - 1, "chunk": 0 if first else 1,
                             "duration": reader.duration, "previous": last, "codes": []})
            elif at is not None and vocab.is_speech(token) and said:
                frame.append(int(vocab.speech_code(token)[1]))
                if len(frame) == vocab.num_codebooks:
                    said[-1]["codes"].append(frame)
                    last, frame = frame, []
        for chunk in said:
            index = chunk.pop("index")
            chunk["before"] = words[index - 1] if index > 0 else ()
            chunk["after"] = words[index + 1] if index + 1 < len(words) else ()
            if chunk["codes"] or keep_empty:
                found.append(chunk)
    return found


class WordDecoder(nn.Module):
    """Non-autoregressive: logits [B, F, K, C] of every frame of B word chunks of up to F frames."""

    def __init__(self, text_vocab_size: int, num_codebooks: int, codebook_size: int, max_frames: int,
                 dim: int = 256, layers: int = 4, heads: int = 4, dropout: float = 0.1, durations: bool = True):
        super().__init__()
        self.text_vocab_size, self.num_codebooks, self.codebook_size = text_vocab_size, num_codebooks, codebook_size
        self.max_frames, self.predicts_durations = max_frames, durations
        self.config = {"text_vocab_size": text_vocab_size, "num_codebooks": num_codebooks,
                       "codebook_size": codebook_size, "max_frames": max_frames, "dim": dim, "layers": layers,
                       "heads": heads, "dropout": dropout, "durations": durations}
        if durations:  # FastSpeech's duration predictor, from the word and its neighbours only: its own tables
            self.duration_words = nn.ModuleList(
                nn.EmbeddingBag(text_vocab_size + 1, dim, mode="mean", padding_idx=text_vocab_size) for _ in range(3))
            self.duration_head = nn.Sequential(nn.Linear(3 * dim, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                                               nn.Linear(2 * dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, max_frames))
        # One table per role: the word said and its neighbours (mean of the word's text-id vectors).
        self.words = nn.ModuleList(nn.EmbeddingBag(text_vocab_size + 1, dim, mode="mean", padding_idx=text_vocab_size)
                                   for _ in range(3))
        self.length = nn.Embedding(max_frames + 1, dim)
        self.from_start = nn.Embedding(max_frames, dim)
        self.from_end = nn.Embedding(max_frames, dim)
        self.chunk = nn.Embedding(2, dim)
        self.previous = nn.Embedding(num_codebooks * codebook_size + 1, dim)  # the last: no frame before
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, num_codebooks * codebook_size)

    def forward(self, word: torch.Tensor, before: torch.Tensor, after: torch.Tensor, lengths: torch.Tensor,
                chunk: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """word/before/after [B, W] text ids padded with text_vocab_size; lengths [B] frames (1..max_frames);
        chunk [B] 0/1; previous [B, K] codes (-1: none). Returns logits [B, F, K, C], F = lengths.max()."""
        frames = int(lengths.max())
        place = torch.arange(frames, device=lengths.device)
        valid = place[None] < lengths[:, None]  # [B, F]
        from_end = (lengths[:, None] - 1 - place[None]).clamp(min=0)
        offsets = torch.arange(self.num_codebooks, device=previous.device) * self.codebook_size
        none = self.num_codebooks * self.codebook_size
        previous_ids = torch.where(previous < 0, torch.full_like(previous, none), previous + offsets)
        context = (self.words[0](word) + self.words[1](before) + self.words[2](after) + self.length(lengths)
                   + self.chunk(chunk) + self.previous(previous_ids).sum(1))  # [B, D]
        x = context[:, None] + self.from_start(place)[None] + self.from_end(from_end)
        x = self.norm(self.encoder(x, src_key_padding_mask=~valid))
        return self.out(x).view(x.shape[0], frames, self.num_codebooks, self.codebook_size)

    def duration_logits(self, word: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Logits [B, max_frames] of how many frames (1..max_frames) a word's first chunk lasts."""
        if not self.predicts_durations:
            raise ValueError("this word decoder was trained without durations (the LM chooses them); train one "
                             "with durations: true (configs/lm/word-decoder.yaml)")
        words = [table(ids) for table, ids in zip(self.duration_words, (word, before, after))]
        return self.duration_head(torch.cat(words, dim=-1))

    @torch.no_grad()
    def duration(self, word: Word, before: Word, after: Word, allowed: torch.Tensor | None = None) -> int:
        """The likeliest frames of `word` between `before` and `after` (among `allowed` [max_frames] bools: the
        durations the caps leave, index 0 for one frame)."""
        device = self.out.weight.device
        ids = [_pad_words([w], self.text_vocab_size).to(device) for w in (word, before, after)]
        logits = self.duration_logits(*ids)[0]
        if allowed is not None and bool(allowed.any()):
            logits = logits.masked_fill(~allowed.to(device), float("-inf"))
        return int(logits.argmax()) + 1

    @torch.no_grad()
    def say(self, word: Word, before: Word, after: Word, frames: int, chunk: int = 0,
            previous: list[int] | None = None) -> list[list[int]]:
        """The argmax codes [frames][K] of one word chunk."""
        return self.say_with_posteriors(word, before, after, frames, chunk, previous)[0]

    @torch.no_grad()
    def say_with_posteriors(self, word: Word, before: Word, after: Word, frames: int, chunk: int = 0,
                            previous: list[int] | None = None) -> tuple[list[list[int]], torch.Tensor]:
        """`say`'s codes and the probabilities [frames, K, C] they were chosen from. Each frame's K codes are
        chosen apart, so where the decoder wavers the chosen codes are a guess; a codec that decodes posteriors
        (`Codec.decode_step`) says their expected entry instead, which listeners hear more clearly."""
        batch = collate([{"word": word, "before": before, "after": after, "chunk": chunk, "previous": previous,
                          "codes": [[0] * self.num_codebooks] * frames}], self.text_vocab_size, self.num_codebooks)
        device = self.out.weight.device
        batch = {k: v.to(device) for k, v in batch.items() if k != "codes"}
        probs = self(**batch)[0].float().softmax(-1)
        return probs.argmax(-1).tolist(), probs


def _pad_words(words: list[Word], pad: int) -> torch.Tensor:
    width = max(1, max(len(w) for w in words))
    return torch.tensor([list(w) + [pad] * (width - len(w)) for w in words], dtype=torch.long)


def collate(chunks: list[dict], text_vocab_size: int, num_codebooks: int) -> dict:
    """Word chunks (`word_occurrences`) as the WordDecoder's inputs, and "codes" [B, F, K] (-100 past a length)."""
    lengths = torch.tensor([len(c["codes"]) for c in chunks], dtype=torch.long)
    frames = int(lengths.max())
    codes = torch.full((len(chunks), frames, num_codebooks), -100, dtype=torch.long)
    for i, c in enumerate(chunks):
        codes[i, : len(c["codes"])] = torch.tensor(c["codes"], dtype=torch.long)
    previous = torch.tensor([c["previous"] if c["previous"] is not None else [-1] * num_codebooks for c in chunks],
                            dtype=torch.long)
    return {"word": _pad_words([c["word"] for c in chunks], text_vocab_size),
            "before": _pad_words([c["before"] for c in chunks], text_vocab_size),
            "after": _pad_words([c["after"] for c in chunks], text_vocab_size),
            "lengths": lengths, "chunk": torch.tensor([c["chunk"] for c in chunks], dtype=torch.long),
            "previous": previous, "codes": codes}


# ---------------------------------------------------------------------- saved folders
CONFIG_FILE, WEIGHTS_FILE = "config.yaml", "model.safetensors"
FOLDER_NAME = "word_decoder"  # inside a reasoner's folder, where SpeechReasoningLM.from_pretrained finds it


def save_decoder(decoder: WordDecoder, out_dir: str | os.PathLike, overwrite: bool = False,
                 half: bool = False) -> Path:
    """A folder with the decoder's config.yaml and model.safetensors (float16 with `half`)."""
    with atomic_folder(out_dir, overwrite) as tmp:
        save_file({k: (v.half() if half else v).contiguous() for k, v in decoder.state_dict().items()},
                  tmp / WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump({"init_args": decoder.config}, sort_keys=False))
    return Path(out_dir)


def load_decoder(folder: str | os.PathLike, vocab: JointVocab | None = None) -> WordDecoder:
    """The WordDecoder `save_decoder` wrote, in eval mode; with `vocab`, checked to say its words and codes."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a saved word decoder ({CONFIG_FILE} and {WEIGHTS_FILE}): export "
                                "one with s2s export runs/word-decoder/checkpoints/last.ckpt FOLDER")
    config = (yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}).get("init_args", {})
    config.setdefault("durations", False)  # decoders saved before durations leave them to the LM
    decoder = WordDecoder(**config)
    if vocab is not None:
        theirs = (decoder.text_vocab_size, decoder.num_codebooks, decoder.codebook_size, decoder.max_frames)
        ours = (vocab.text_vocab_size, vocab.num_codebooks, vocab.codebook_size, vocab.durations)
        if theirs != ours:
            raise ValueError(f"{folder} says words of {theirs[0]} text ids in {theirs[1]} codebooks of {theirs[2]} "
                             f"codes, up to {theirs[3]} frames; this model has {ours}: train a word decoder for "
                             "it (configs/lm/word-decoder.yaml)")
    decoder.load_state_dict({k: v.float() for k, v in load_file(folder / WEIGHTS_FILE).items()})
    return decoder.eval()
