"""Drafts for speculative decoding: guess the next ids cheaply, let one forward check several.

On a CPU a forward of a few ids costs little more than a forward of one, and
time to first audio is a thought's worth of forwards. So the generation loop
feeds a *draft* of the next ids together with the id it must feed anyway,
keeps the logits after every drafted id, and uses them only while the ids it
chooses agree with the draft. The reply is the one decoding id by id gives,
greedy or sampled (each id is still drawn from the model's own distribution
after the ids really written), in fewer forwards.

Drafts come from two places, neither of them a model:

* `PhraseTable`: the phrases of the corpus's thoughts and replies ("Multiplication
  comes before addition and subtraction.", "So the answer is"): after the last
  n ids, the id that followed them in most of the corpus. Counted once by
  `s2s lm phrases` into the model folder (`phrases.json.gz`).
* prompt lookup (Saxena, 2023; transformers' `prompt_lookup_num_tokens`): a
  thought restates its question ("Ben has 9 stickers"), so the ids that followed
  the last few ids where they occurred earlier, in the question as heard or in
  the reply so far.

The phrase table drafts first (its phrases are long); prompt lookup fills in
where it has nothing. Measured on the shipped model (20 test questions, thought
and reply text, a session script counting `Reply.forwards`): 3.05 ids a forward
against 1.3 with prompt lookup alone; notebook 05 in full mode shows the count.

A word_timed reply's speech is drafted too:

* `WordFrames`: how the corpus says each reply word (one assistant voice says
  a word nearly the same way every time): its usual length in frames, and at
  that length its usual code in each codebook, frame by frame. Counted by
  `s2s lm phrases --align-with JUDGE` (`speech_drafts.json.gz`).
"""
from __future__ import annotations

import itertools
import os
from collections import Counter, defaultdict
from pathlib import Path

import torch

from s2s.files import load_json_gz, save_json_gz
from s2s.lm.word_decoder import word_occurrences  # each word chunk, read as generation reads a row

BREAK = -1  # in a history: stands where a non-text id was (<think>, </think>, speech); no lookup runs across it
FILE_NAME = "phrases.json.gz"
SPEECH_FILE = "speech_drafts.json.gz"


def lookup_context(prompt_ids: torch.Tensor, vocab, heard=None) -> list[int]:
    """The prompt as a draft history: text ids as they are, each `<heard>` id replaced by the top text id heard
    for its segment (`heard`: a HeardQuestion), every other id (speech, special tokens) a BREAK."""
    heard_ids = iter(heard.token_ids[:, 0].tolist()) if heard is not None else iter(())
    history = []
    for token in prompt_ids.tolist():
        if token == vocab.heard:
            history.append(next(heard_ids, BREAK))
        else:
            history.append(token if vocab.is_text(token) else BREAK)
    return history


class PhraseTable:
    """The next id after up to `order` ids of text, where the corpus agreed on one (`from_texts`)."""

    def __init__(self, order: int, text_vocab_size: int, next_ids: dict[tuple[int, ...], int]):
        if order < 2:
            raise ValueError(f"a phrase table needs order >= 2 (ids of context), got {order}")
        self.order, self.text_vocab_size, self.next_ids = order, text_vocab_size, next_ids

    def __len__(self) -> int:
        return len(self.next_ids)

    @classmethod
    def from_texts(cls, pieces: list[list[list[int]]], text_vocab_size: int, order: int = 6, min_count: int = 3,
                   min_share: float = 0.4, prune: bool = True) -> PhraseTable:
        """`pieces`: per example, its texts' ids in order (the thought, then the reply). A context of 2 to
        `order` ids keeps the id that followed it at least `min_count` times and in at least `min_share` of
        its occurrences; with `prune`, a context is dropped where the one an id shorter already gives the same
        id (a lookup then backs off to it: the same answers from a table a fraction of the size)."""
        counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        for example in pieces:
            ids = [BREAK]
            for text in example:
                ids += [*text, BREAK]
            for i in range(2, len(ids)):
                for n in range(2, min(order, i) + 1):
                    counts[tuple(ids[i - n: i])][ids[i]] += 1
        agreed = {}
        for context, following in counts.items():
            token, count = following.most_common(1)[0]
            if token != BREAK and count >= min_count and count >= min_share * sum(following.values()):
                agreed[context] = token
        # A pruned context's shorter suffixes give its id, so lookups in `kept` and in `agreed` always agree.
        kept = {c: t for c, t in agreed.items() if not prune or len(c) == 2 or _backoff(agreed, c[1:]) != t}
        return cls(order, text_vocab_size, kept)

    def next_id(self, history: list[int]) -> int | None:
        """The id the corpus put after the longest context at the end of `history` it knows; None if none."""
        return _backoff(self.next_ids, tuple(history[-self.order:]))

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        return save_json_gz(path, {"order": self.order, "text_vocab_size": self.text_vocab_size,
                                   "entries": [[*context, token] for context, token in self.next_ids.items()]},
                            overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PhraseTable:
        try:
            data = load_json_gz(path)
            return cls(int(data["order"]), int(data["text_vocab_size"]),
                       {tuple(int(i) for i in entry[:-1]): int(entry[-1]) for entry in data["entries"]})
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            raise ValueError(f"{path} is not a phrase table saved by PhraseTable.save ({error}); "
                             "count it again with s2s lm phrases") from None


def _backoff(table: dict, context: tuple[int, ...]) -> int | None:
    """table's id for the longest suffix of `context`, down to 2 ids, that it holds; None if none."""
    for n in range(len(context), 1, -1):
        token = table.get(context[len(context) - n:])
        if token is not None:
            return token
    return None


class Drafter:
    """Up to `max_draft` text ids that may come next: the phrase table's chain of next ids where it has one,
    else what followed the latest earlier occurrence of the history's last n ids (n = 3, 2, 1).
    `append` every id written (non-text ids become BREAKs)."""

    def __init__(self, history: list[int], vocab, phrases: PhraseTable | None = None, max_draft: int = 8,
                 max_ngram: int = 3):
        if max_draft < 1 or max_ngram < 1:
            raise ValueError(f"max_draft and max_ngram must be at least 1, got {max_draft} and {max_ngram}")
        self.history, self.vocab, self.phrases = list(history), vocab, phrases
        self.max_draft, self.max_ngram = max_draft, max_ngram

    def append(self, token: int) -> None:
        self.history.append(token if self.vocab.is_text(token) else BREAK)

    def draft(self) -> list[int]:
        return self.from_phrases() or self.from_lookup()

    def from_phrases(self) -> list[int]:
        if self.phrases is None:
            return []
        history, drafted = self.history[-self.phrases.order:], []
        while len(drafted) < self.max_draft:
            token = self.phrases.next_id(history)
            if token is None:
                break
            drafted.append(token)
            history = history[1:] + [token]
        return drafted

    def from_lookup(self) -> list[int]:
        history = self.history
        for n in range(min(self.max_ngram, len(history) - 1), 0, -1):
            tail = history[-n:]
            if BREAK in tail:
                continue
            for start in range(len(history) - n - 1, -1, -1):  # the latest occurrence before the tail itself
                if history[start: start + n] == tail:
                    follow = history[start + n: start + n + self.max_draft]
                    follow = follow[: follow.index(BREAK)] if BREAK in follow else follow
                    if follow:
                        return follow
        return []


class WordFrames:
    """How the corpus says each reply word: `durations[word]` its most common length in frames (one duration
    id), and `codes[(word, frames)]` the most common code of each frame and codebook at that length ([frames]
    lists of K codes). Words are tuples of text ids, as word_timed reads them aloud."""

    def __init__(self, num_codebooks: int, codebook_size: int, text_vocab_size: int,
                 durations: dict[tuple[int, ...], int], codes: dict[tuple[tuple[int, ...], int], list[list[int]]]):
        self.num_codebooks, self.codebook_size, self.text_vocab_size = num_codebooks, codebook_size, text_vocab_size
        self.durations, self.codes = durations, codes

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def from_rows(cls, rows: list[list[int]], vocab, min_count: int = 2) -> WordFrames:
        """`rows`: word_timed sequences (ids) with their speech. A word's length is kept where it was seen
        `min_count` times, and the codes of each (word, length) seen that often (a long word's later chunks,
        after its first duration id, are not counted), up to its first frame no row said whole."""
        lengths: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        grids: dict[tuple[tuple[int, ...], int], list[list[Counter]]] = {}
        for chunk in word_occurrences(rows, vocab, keep_empty=True):
            if chunk["chunk"]:
                continue
            word, duration = chunk["word"], chunk["duration"]
            lengths[word][duration] += 1
            grid = grids.setdefault((word, duration), [[Counter() for _ in range(vocab.num_codebooks)]
                                                       for _ in range(duration)])
            for frame, codes in enumerate(chunk["codes"]):
                for codebook, code in enumerate(codes):
                    grid[frame][codebook][code] += 1
        durations = {word: counts.most_common(1)[0][0] for word, counts in lengths.items()
                     if counts.most_common(1)[0][1] >= min_count}
        codes = {key: [[counter.most_common(1)[0][0] for counter in frame]
                       for frame in itertools.takewhile(lambda frame: all(frame), grid)]
                 for key, grid in grids.items() if lengths[key[0]][key[1]] >= min_count}
        return cls(vocab.num_codebooks, vocab.codebook_size, vocab.text_vocab_size, durations, codes)

    def draft(self, vocab, word: tuple[int, ...], duration: int | None, frame: int, codebook: int,
              max_draft: int) -> list[int]:
        """Up to `max_draft` ids the word may continue with: from frame `frame`, codebook `codebook` of a word
        of `duration` frames; with `duration` None (the word just read), its usual duration id first."""
        drafted = []
        if duration is None:
            duration = self.durations.get(word)
            if duration is None or duration > vocab.durations:
                return []
            drafted.append(vocab.duration_id(duration))
            frame, codebook = 0, 0
        grid = self.codes.get((word, duration))
        if grid is None:
            return drafted
        while len(drafted) < max_draft and frame < len(grid):
            drafted.append(vocab.speech_id(codebook, grid[frame][codebook]))
            codebook += 1
            if codebook == vocab.num_codebooks:
                frame, codebook = frame + 1, 0
        return drafted

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        return save_json_gz(path, {"num_codebooks": self.num_codebooks, "codebook_size": self.codebook_size,
                                   "text_vocab_size": self.text_vocab_size,
                                   "durations": [[list(word), frames] for word, frames in self.durations.items()],
                                   "codes": [[list(word), frames, grid]
                                             for (word, frames), grid in self.codes.items()]},
                            overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordFrames:
        try:
            data = load_json_gz(path)
            return cls(int(data["num_codebooks"]), int(data["codebook_size"]), int(data["text_vocab_size"]),
                       {tuple(int(i) for i in word): int(frames) for word, frames in data["durations"]},
                       {(tuple(int(i) for i in word), int(frames)): [[int(c) for c in f] for f in grid]
                        for word, frames, grid in data["codes"]})
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            raise ValueError(f"{path} is not a speech draft table saved by WordFrames.save ({error}); "
                             "count it again with s2s lm phrases --align-with JUDGE") from None


def build_for_model(folder: str | os.PathLike, manifests, order: int = 6, min_count: int = 3,
                    min_share: float = 0.4, overwrite: bool = False) -> Path:
    """Count the phrase table of the thoughts and replies of `manifests` with the tokenizer of the model saved
    in `folder`, and save it there (FILE_NAME), where `SpeechReasoningLM.from_pretrained` finds it."""
    from transformers import AutoTokenizer

    from s2s.data.manifest import read_manifest
    from s2s.lm.batching import tokenize

    folder = Path(folder)
    if not (folder / "config.yaml").is_file() or not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder} is not a saved SpeechReasoningLM (config.yaml and tokenizer.json "
                                "missing): give the folder that s2s export or save_pretrained wrote")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = [row for manifest in manifests for row in read_manifest(manifest) if row.get("thought")]
    if not rows:
        raise ValueError(f"no rows of {', '.join(map(str, manifests))} have a thought to count phrases from")
    thoughts = tokenize(tokenizer, [row["thought"] for row in rows])
    replies = tokenize(tokenizer, [row.get("reply") or "" for row in rows])
    pieces = [[thought, reply] if reply else [thought] for thought, reply in zip(thoughts, replies)]
    table = PhraseTable.from_texts(pieces, len(tokenizer), order=order, min_count=min_count, min_share=min_share)
    return table.save(folder / FILE_NAME, overwrite=overwrite)
