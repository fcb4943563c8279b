"""The word clock: at every position of a word said (word_timed formats), which word it is and how many frames are left.

In word_timed a reply word is written, then its duration d, then exactly d
frames that must say that word. A small LM finds the word again only by
attention, and its frames drift to the corpus's usual words ("five" said as
"fifteen"). Duration-based TTS (FastSpeech's length regulator) gives every
frame its phoneme and its place explicitly; the clock does the same inside
the LM. Each input position from a word's duration id to its last frame gets,
added to its token embedding,

    W * mean(E[word's text ids])  +  C[frames left in the word]

(E the LM's own embeddings, W and C learned). W and C start at zero, so a
model fine-tuned with the clock starts exactly where its source stood.

`ClockReader` reads a row id by id, as training (whole rows) and generation
(one id at a time) both do, so both add the same signal at the same place.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from s2s.lm.vocab import JointVocab

Signal = tuple[tuple[int, ...], int]  # (the word's text ids, frames left in it), or None where no word is said


class ClockReader:
    """Reads ids in order and gives each its clock signal: None, or (the word being said, frames left after this id).

    After `<speak>`, text ids are a word read aloud; a duration id d starts
    its frames (frames left: d); the K ids of each frame follow, and the
    last of them counts the frame done. `<eot>` ends the speech, and so does
    `<think>` (word_timed_while_thinking goes back to its thought between words).
    """

    def __init__(self, vocab: JointVocab):
        self.vocab = vocab
        self.speaking = self.in_word_text = False
        self.word: tuple[int, ...] = ()
        self.left: int | None = None  # frames still to come in the word; None before its duration
        self.duration = 0  # frames the word's (last) duration id said
        self.codes = 0  # ids of the current frame seen so far

    def push(self, token: int) -> Signal | None:
        vocab = self.vocab
        if token == vocab.speak:
            self.speaking, self.in_word_text, self.word, self.left = True, False, (), None
            return None
        if not self.speaking:
            return None
        if token == vocab.eot or token == vocab.think:
            self.speaking, self.in_word_text = False, False
            return None
        if vocab.is_text(token):  # a word read aloud (a new one after anything but text)
            self.word = (*self.word, token) if self.in_word_text else (token,)
            self.in_word_text, self.left = True, None
            return None
        self.in_word_text = False
        if vocab.is_duration(token):  # a long word's next chunk keeps its word
            self.left, self.codes = int(vocab.duration_frames(token)), 0
            self.duration = self.left
            return self.word, self.left
        if vocab.is_speech(token) and self.left is not None:
            self.codes += 1
            if self.codes == vocab.num_codebooks:
                self.codes, self.left = 0, max(self.left - 1, 0)
            return self.word, self.left
        return None

    def next_frame(self) -> tuple[int, int] | None:
        """(frame, codebook) of the next id within the word's frames (frame 0 is the first after its
        duration id); None where the next id is not one of them (between words, or before `<speak>`)."""
        if not self.speaking or self.in_word_text or self.left is None or (self.left == 0 and self.codes == 0):
            return None
        return self.duration - self.left, self.codes


def clock_signals(ids: list[int], vocab: JointVocab) -> list[tuple[int, Signal]]:
    """(position, signal) for every position of one row that has one."""
    reader = ClockReader(vocab)
    return [(position, signal) for position, token in enumerate(ids) if (signal := reader.push(token)) is not None]


def word_frame_starts(ids: list[int], vocab: JointVocab) -> list[list[int]]:
    """For every word said in one row (each duration id starts one), the positions of its frames' first ids."""
    reader, words = ClockReader(vocab), []
    for position, token in enumerate(ids):
        at = reader.next_frame()
        reader.push(token)
        if vocab.is_duration(token) and reader.speaking:
            words.append([])
        elif at is not None and at[1] == 0 and vocab.is_speech(token) and words:
            words[-1].append(position)
    return [word for word in words if word]


class WordClock(nn.Module):
    """Signals -> vectors to add to the input embeddings: W (mean of the word's embeddings) + C[frames left]."""

    def __init__(self, dim: int, max_word_frames: int):
        super().__init__()
        self.max_word_frames = max_word_frames
        self.word = nn.Linear(dim, dim, bias=False)
        self.frames_left = nn.Embedding(max_word_frames + 1, dim)
        nn.init.zeros_(self.word.weight)
        nn.init.zeros_(self.frames_left.weight)

    def forward(self, signals: list[Signal], embeddings: nn.Embedding) -> torch.Tensor:
        """[N, D] for N signals, the words' ids embedded with `embeddings` (the LM's own)."""
        device = self.frames_left.weight.device
        words = list(dict.fromkeys(word for word, _ in signals))  # each word embedded once, whatever its frames
        which = {word: index for index, word in enumerate(words)}
        longest = max((len(word) for word in words), default=0)
        ids = torch.zeros(len(words), max(longest, 1), dtype=torch.long, device=device)
        present = torch.zeros(len(words), max(longest, 1), device=device)
        for row, word in enumerate(words):
            ids[row, : len(word)] = torch.tensor(word, dtype=torch.long)
            present[row, : len(word)] = 1.0
        summed = (embeddings(ids) * present[..., None].to(embeddings.weight.dtype)).sum(1)
        means = summed / present.sum(1, keepdim=True).clamp(min=1).to(summed.dtype)  # a word of no ids: zeros
        rows = torch.tensor([which[word] for word, _ in signals], dtype=torch.long, device=device)
        left = torch.tensor([min(frames, self.max_word_frames) for _, frames in signals], device=device)
        return self.word(means[rows].to(self.word.weight.dtype)) + self.frames_left(left)
