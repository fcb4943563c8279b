"""Training data for the reasoning LM: many cheap text questions, fewer spoken ones, some spoken replies.

Reasoning is learned from text (a new problem costs microseconds), hearing
from the spoken corpus, and speaking from the replies' audio. One epoch is

    text_examples   problems drawn fresh (seeded by index), the question as text (a `heard_text` share of
                    them as an ear transcribes it, at the `<heard>` ids: `s2s/data/transcripts.py`)
    + the manifest's spoken questions, `audio_repeats` times, heard by the frozen audio encoder

and each example carries its reply's speech with `speech_probability` when
that speech exists (replies are in one assistant voice, so any problem whose
reply sentence the corpus has spoken gets it). Without speech an example
stops after `<speak>`: still a lesson in when to start speaking, at a fifth
of the positions.

Costly things are computed once and cached beside the manifest, keyed by the
files they depend on: the heard segments of every question (`hearing`) and
the reply codes (`codec`).
"""
from __future__ import annotations

import functools
import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

from s2s import audio
from s2s.data.manifest import read_manifest
from s2s.data.problems import OUT_OF_SCOPE_FAMILY, generate_problem
from s2s.data.resumable import EpochBatchSampler, ResumableDataLoader, trainer_epoch
from s2s.data.transcripts import as_heard
from s2s.hearing.heard import HeardQuestion, text_question

TEXT_FIELDS = ("question_written", "thought", "reply")


def _digest(*paths: Path, text: str = "") -> str:
    """A key for a cache: the bytes of `paths` and `text` (what the cached thing depends on, nothing more)."""
    h = hashlib.sha1(text.encode())
    for path in paths:
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def heard_questions(manifest: Path, hearing_dir: str, tokenizer_dir: str | None = None,
                    batch_size: int = 1) -> list[HeardQuestion]:
    """Every question of `manifest` heard by the recogniser in `hearing_dir` (cached beside the manifest), cut
    into the tokens of the LM's tokenizer in `tokenizer_dir` (needed when the recogniser writes characters).

    One question at a time by default, as `s2s reply` hears: in a padded batch the last frames and the
    per-utterance normalisation shift a little, and training should see exactly what use will.
    """
    from s2s.asr.recognizer import TEXT_LM_FILE, WEIGHTS_FILE, CTCRecognizer
    from s2s.hearing.ctc import CTCHearing
    from s2s.lm.text_tokenizer import load_text_tokenizer

    rows = read_manifest(manifest)
    tokenizer_files = sorted(Path(tokenizer_dir).glob("*.json")) if tokenizer_dir else []
    # Keyed by the question audio (paths, order and bytes), not the whole manifest: rewording a thought
    # (`s2s data rethink`) does not make 12,000 questions be heard again.
    text_lm = [Path(hearing_dir) / TEXT_LM_FILE] if (Path(hearing_dir) / TEXT_LM_FILE).is_file() else []
    sources = [Path(hearing_dir) / WEIGHTS_FILE, *text_lm, *tokenizer_files]  # the beam's text LM changes words
    sources += [manifest.parent / r["question_audio"] for r in rows]
    order = "\n".join(r["question_audio"] for r in rows)
    cache = manifest.parent / "heard" / f"{_digest(*sources, text=order)}.pt"
    if cache.exists():
        return [HeardQuestion(**d) for d in torch.load(cache, weights_only=True)]
    tokenizer = load_text_tokenizer(tokenizer_dir) if tokenizer_dir else None
    hearing = CTCHearing(CTCRecognizer.from_pretrained(hearing_dir), tokenizer)
    waves = [audio.load(manifest.parent / row["question_audio"], 16000)[0].mean(0) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: waves[i].numel())
    heard: list[HeardQuestion | None] = [None] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start: start + batch_size]
        lengths = torch.tensor([waves[i].numel() for i in chunk])
        batch = torch.zeros(len(chunk), int(lengths.max()))
        for row, i in enumerate(chunk):
            batch[row, : lengths[row]] = waves[i]
        for i, question in zip(chunk, hearing(batch, lengths)):
            heard[i] = HeardQuestion(question.token_ids.short(), question.probs.half(), question.hidden.half())
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # DDP ranks may build the same cache at once
    torch.save([q.to_dict() for q in heard], tmp)
    tmp.replace(cache)
    return heard


def _encoded(manifest: Path, codec_name: str, num_codebooks: int, field: str, key: str) -> dict[str, torch.Tensor]:
    """row[key] -> codes [K, F] of the audio in row[field], for every row (cached beside the manifest)."""
    from s2s.codecs import load_codec

    codec = load_codec(codec_name, num_codebooks=num_codebooks)
    rows = read_manifest(manifest)
    sources = [manifest.parent / r[field] for r in rows if r.get(field)]
    keys = "\n".join(f"{r[key]}\t{r[field]}" for r in rows if r.get(field))  # which audio each key names
    cache = manifest.parent / f"{field}-codes" / f"{_digest(*sources, text=keys)}-{codec.fingerprint()[:16]}.pt"
    if cache.exists():
        return torch.load(cache, weights_only=True)
    codes = {}
    with torch.inference_mode():
        for row in rows:
            if row.get(field) and row[key] not in codes:
                wav, rate = audio.load(manifest.parent / row[field])
                codes[row[key]] = codec.encode(wav[None], rate)[0].short().clone()
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # DDP ranks may build the same cache at once
    torch.save(codes, tmp)
    tmp.replace(cache)
    return codes


def reply_codes(manifest: Path, codec_name: str, num_codebooks: int, key: str = "reply") -> dict[str, torch.Tensor]:
    """row[key] -> its reply's speech codes [K, F]: by reply sentence (one assistant voice: a sentence sounds
    the same in every row) or by row id (replies in many voices and styles)."""
    return _encoded(manifest, codec_name, num_codebooks, "reply_audio", key)


def voice_codes(manifest: Path, codec_name: str, num_codebooks: int) -> dict[str, torch.Tensor]:
    """Row id -> the codes [K, F] of its voice prompt (`voice_audio`), for the rows that have one."""
    return _encoded(manifest, codec_name, num_codebooks, "voice_audio", "id")


def reply_word_frames(manifest: Path, codes: dict[str, torch.Tensor], frame_rate: float, judge_dir: str,
                      key: str = "reply") -> dict[str, list[int]]:
    """row[key] (the reply sentence, or the row's id) -> the codec frames of each whitespace word of its reply,
    timed by forced alignment with the character CTC recogniser in `judge_dir` (cached beside the manifest);
    they add up to the frames of its `codes` (`reply_codes` of the same key, at `frame_rate` frames a second)."""
    from s2s.asr.align import frames_per_word, word_spans
    from s2s.asr.recognizer import WEIGHTS_FILE, CTCRecognizer

    rows = {row[key]: row for row in read_manifest(manifest) if row.get("reply_audio")}
    sources = [manifest, Path(judge_dir) / WEIGHTS_FILE] + [manifest.parent / r["reply_audio"] for r in rows.values()]
    cache = manifest.parent / "reply_audio-words" / f"{_digest(*sources)}-{frame_rate:g}-{key}.pt"
    if cache.exists():
        return torch.load(cache, weights_only=True)
    judge = CTCRecognizer.from_pretrained(judge_dir).eval()
    frames = {}
    for name, row in rows.items():
        wav, rate = audio.load(manifest.parent / row["reply_audio"])
        total = codes[name].shape[1]
        frames[name] = frames_per_word(word_spans(judge, wav[0], rate, row["reply"]), frame_rate, total)
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    torch.save(frames, tmp)
    tmp.replace(cache)
    return frames


def question_codes(manifest: Path, codec_name: str, num_codebooks: int) -> list[torch.Tensor]:
    """The codec tokens [K, F] of every question, in manifest order: the other way for audio to reach the LM."""
    by_id = _encoded(manifest, codec_name, num_codebooks, "question_audio", "id")
    return [by_id[row["id"]] for row in read_manifest(manifest)]


class ReasoningDataset(Dataset):
    """Text problems first (index < text_examples), then the manifest's spoken questions, `audio_repeats` times."""

    def __init__(self, rows: list[dict], heard: list[HeardQuestion | torch.Tensor | None] | None,
                 speech: dict[str, torch.Tensor], text_examples: int, audio_repeats: int, speech_probability: float,
                 seed: int, word_frames: dict[str, list[int]] | None = None, speech_key: str = "reply",
                 voices: dict[str, torch.Tensor] | None = None, out_of_scope: float = 0.0,
                 heard_text: float = 0.0, hear_text: Callable[[str], HeardQuestion] | None = None):
        """`heard`: each row's spoken question as a HeardQuestion, as codec tokens [K, F], or None (the row's
        question as text); `heard` None: the rows are left out, text problems only.
        `speech` and `word_frames` (frames per word, for the word_aligned format) are keyed by `speech_key`: the
        reply sentence, or the row id (`voices`, row id -> voice prompt codes, and each row's `reply_style` then
        go with it: a reply in another voice or style needs its prompt).
        `out_of_scope`: the share of text problems that are questions the model must decline.
        `heard_text`: the share of text problems whose question comes as heard, `hear_text` (a transcript's
        HeardQuestion) of the written question as an ear might write it: the heard path then reads every
        phrasing the text path does, not only the spoken corpus's few thousand questions."""
        if heard_text and hear_text is None:
            raise ValueError("heard_text gives text problems as heard questions, which needs hear_text (a "
                             "transcript -> HeardQuestion, such as text_question with the LM's tokenizer)")
        self.rows, self.heard, self.speech, self.word_frames = rows, heard, speech, word_frames
        self.speech_key, self.voices = speech_key, voices or {}
        self.text_examples, self.audio_repeats = text_examples, audio_repeats if heard is not None else 0
        self.speech_probability, self.seed, self.epoch = speech_probability, seed, 0
        self.out_of_scope, self.heard_text, self.hear_text = out_of_scope, heard_text, hear_text

    def __len__(self) -> int:
        return self.text_examples + len(self.rows) * self.audio_repeats

    def _texts(self, index: int) -> tuple[dict, random.Random]:
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        if index < self.text_examples:
            problem = generate_problem(rng, OUT_OF_SCOPE_FAMILY if rng.random() < self.out_of_scope else None)
            key = problem.reply if self.speech_key == "reply" else None  # a fresh problem has no row id
            heard = None
            if self.heard_text and rng.random() < self.heard_text:
                heard = self.hear_text(as_heard(problem.question_written, rng))
            return {"question_written": problem.question_written, "thought": problem.thought,
                    "reply": problem.reply, "heard": heard, "question_codes": None, "speech_key": key}, rng
        i = (index - self.text_examples) % len(self.rows)
        row, spoken = self.rows[i], self.heard[i]
        as_codes = isinstance(spoken, torch.Tensor)
        return {**{k: row[k] for k in TEXT_FIELDS}, "heard": None if as_codes else spoken,
                "question_codes": spoken.long() if as_codes else None, "speech_key": row[self.speech_key]}, rng

    def has_speech(self, index: int) -> bool:
        """Whether example `index` carries its reply's speech this epoch (a pure function of seed, epoch, index)."""
        item, rng = self._texts(index)
        return item["speech_key"] in self.speech and rng.random() < self.speech_probability

    def question_is_codes(self, index: int) -> bool:
        """Whether example `index` is a spoken question given as codec tokens (hundreds of ids, not tens)."""
        return index >= self.text_examples and isinstance(self.heard[(index - self.text_examples) % len(self.rows)],
                                                          torch.Tensor)

    def __getitem__(self, index: int) -> dict:
        item, _ = self._texts(index)
        speaks, key = self.has_speech(index), item.pop("speech_key")
        item["reply_codes"] = self.speech[key].long() if speaks else None
        item["reply_word_frames"] = self.word_frames[key] if speaks and self.word_frames else None
        row = self.rows[(index - self.text_examples) % len(self.rows)] if index >= self.text_examples else {}
        styled = speaks and self.speech_key == "id"  # the prompt says which voice and style the speech is in
        item["voice_codes"] = self.voices[key].long() if styled and key in self.voices else None
        item["style"] = row.get("reply_style") or None if styled else None
        return item


class SpeechApartSampler(EpochBatchSampler):
    """Batches that hold only long rows (reply speech, or a question as codec tokens) or only short ones: a long
    row is five or ten times longer, and one in a batch would pad every other row to its length. Long batches
    are smaller (`speech_batch_size`).

    `epoch`, when given, is asked at the start of every pass (the trainer's current epoch) and set on the
    dataset, so each epoch draws new problems, speech and order without reloading the dataloader; without
    it the dataset's own `epoch` decides."""

    def __init__(self, dataset: ReasoningDataset, batch_size: int, speech_batch_size: int, shuffle: bool, seed: int,
                 epoch: Callable[[], int] | None = None):
        super().__init__(epoch)
        self.dataset, self.batch_size, self.speech_batch_size = dataset, batch_size, speech_batch_size
        self.shuffle, self.seed = shuffle, seed

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        if self.epoch_source is not None:
            self.dataset.epoch = epoch
        order = list(range(len(self.dataset)))
        rng = random.Random(f"{self.seed}:{self.dataset.epoch}")
        if self.shuffle:
            rng.shuffle(order)
        long = [self.dataset.has_speech(i) or self.dataset.question_is_codes(i) for i in range(len(self.dataset))]
        speech = [i for i in order if long[i]]
        text = [i for i in order if not long[i]]
        batches = [text[i: i + self.batch_size] for i in range(0, len(text), self.batch_size)]
        batches += [speech[i: i + self.speech_batch_size] for i in range(0, len(speech), self.speech_batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches


def collate(items: list[dict]) -> dict:
    return {key: [item[key] for item in items] for key in items[0]}


class ReasoningDataModule(L.LightningDataModule):
    """Batches of {question_written, heard, question_codes, thought, reply, reply_codes} lists for the LM.

    `question_input` says how spoken questions reach the LM: "heard" (through
    `hearing`, which must be the LM's own hearing folder: the same recogniser
    hears in training and in use; `tokenizer`, the LM's tokenizer folder,
    cuts what it writes into the LM's tokens) or "codes" (the codec's tokens,
    as Moshi and SpeechGPT do). "heard" without `hearing` leaves spoken
    questions out; "text" gives them as their written text. `align_with` (a character CTC recogniser's folder, such
    as the judge `s2s/assets/models/s2s-judge-tiny`) times every word of the
    replies' speech, which the `word_aligned` format needs. `reply_speech`:
    "sentence" (one assistant voice: any reply sentence the training corpus
    has spoken gets that speech, text problems too) or "row" (a style-transfer
    corpus from `s2s data synth --reply-styles`: each row's own reply, with
    its voice prompt and style words). `out_of_scope`: the share of text problems
    that ask what the model cannot work on (it learns to decline them). `heard_text`: the share of text
    problems given as heard (at the `<heard>` ids, written as an ear might transcribe them), so the heard path
    reads the grammar's every phrasing too; it needs `tokenizer`.
    """

    def __init__(self, train: str, val: str | None = None, hearing: str | None = None,
                 tokenizer: str | None = None, codec: str = "s2s-tiny",
                 num_codebooks: int = 4, text_examples: int = 20000, audio_repeats: int = 1,
                 speech_probability: float = 0.25, val_text_examples: int = 0, batch_size: int = 32,
                 speech_batch_size: int = 8, seed: int = 0, num_workers: int = 0, question_input: str = "heard",
                 align_with: str | None = None, reply_speech: str = "sentence", out_of_scope: float = 0.05,
                 heard_text: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        if question_input not in ("heard", "codes", "text"):
            raise ValueError(f"question_input must be 'heard', 'codes' or 'text', got {question_input!r}")
        if heard_text and not tokenizer:
            raise ValueError("heard_text writes text problems as heard tokens, which needs the LM's tokenizer: set "
                             "tokenizer (the LM's folder) or heard_text: 0")
        if reply_speech not in ("sentence", "row"):
            raise ValueError(f"reply_speech must be 'sentence' or 'row', got {reply_speech!r}")
        for name, value in (("speech_probability", speech_probability), ("out_of_scope", out_of_scope),
                            ("heard_text", heard_text)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.train_set = self.val_set = None

    def _dataset(self, manifest: str, text_examples: int, audio_repeats: int, seed: int) -> ReasoningDataset:
        hp, manifest = self.hparams, Path(manifest)
        rows = read_manifest(manifest)
        if rows and not any(row.get("question") for row in rows):
            raise ValueError(f"{manifest} has no questions (a reply bank from `s2s data replies`?): the LM learns "
                             "from problems (s2s data synth); give reply banks to the word decoder's data.train")
        if hp.question_input == "codes":
            heard = question_codes(manifest, hp.codec, hp.num_codebooks)
        elif hp.question_input == "text":
            heard = [None] * len(rows)
        else:
            heard = heard_questions(manifest, hp.hearing, hp.tokenizer) if hp.hearing else None
        # By sentence: the training replies' one voice serves any manifest. By row: each row's own reply.
        key, source = ("reply", Path(hp.train)) if hp.reply_speech == "sentence" else ("id", manifest)
        speech = reply_codes(source, hp.codec, hp.num_codebooks, key)
        words = None
        if hp.align_with:
            from s2s.codecs import load_codec

            frame_rate = load_codec(hp.codec, num_codebooks=hp.num_codebooks).frame_rate
            words = reply_word_frames(source, speech, frame_rate, hp.align_with, key)
        voices = voice_codes(source, hp.codec, hp.num_codebooks) if key == "id" else None
        hear_text = None
        if hp.heard_text:
            from s2s.lm.text_tokenizer import load_text_tokenizer

            tokenizer = load_text_tokenizer(hp.tokenizer)
            hear_text = functools.partial(text_question, tokenizer=tokenizer)
        return ReasoningDataset(rows, heard, speech, text_examples, audio_repeats, hp.speech_probability, seed, words,
                                key, voices, hp.out_of_scope, hp.heard_text, hear_text)

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = self._dataset(hp.train, hp.text_examples, hp.audio_repeats, hp.seed)
        if self.val_set is None and hp.val:
            self.val_set = self._dataset(hp.val, hp.val_text_examples, 1, hp.seed + 1)

    def _loader(self, dataset: ReasoningDataset, shuffle: bool,
                epoch: Callable[[], int] | None = None) -> ResumableDataLoader:
        hp = self.hparams
        sampler = SpeechApartSampler(dataset, hp.batch_size, hp.speech_batch_size, shuffle, hp.seed, epoch)
        return ResumableDataLoader(dataset, sampler, collate_fn=collate, num_workers=hp.num_workers)

    def train_dataloader(self) -> ResumableDataLoader:
        # Lightning makes this loader once (unless reload_dataloaders_every_n_epochs), so the sampler asks
        # for the epoch at every pass: a fresh draw each epoch, and the same draw again on resuming.
        epoch = trainer_epoch(self)
        self.train_set.epoch = epoch()
        return self._loader(self.train_set, shuffle=True, epoch=epoch)

    def val_dataloader(self) -> ResumableDataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []
