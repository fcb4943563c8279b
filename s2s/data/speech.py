"""Render a folder of spoken sentences (wavs plus a JSONL manifest) with espeak-ng or festival.

This is the speech the tiny codec trains on; the spoken reasoning corpus
builds on the same renderer. With `read_aloud` the sentences are words in no
order with numbers and times among them (`s2s/data/sentences.py`), and each
row also has `written`, the text with digits as a question writes them: what
an ear that writes digits trains on beside the questions. Each example is rendered from its own seeded
random generator, so the output depends only on (seed, index), not on the
number of worker processes.
"""
from __future__ import annotations

import os
import random
from multiprocessing import Pool
from pathlib import Path

import torch
from tqdm import tqdm

from s2s import audio
from s2s.data import espeak, festival
from s2s.data.manifest import write_manifest
from s2s.data.sentences import random_sentence, read_aloud
from s2s.data.voices import sample_voice

MANIFEST_NAME = "manifest.jsonl"


ENGINES = ("espeak", "festival")


def _render_one(job: tuple[int, int, str, str, bool, str]) -> dict:
    index, seed, split, engine, read_aloud_text, out_dir = job
    # espeak keeps the key it was first released with, so old seeds still give the same corpus.
    key = f"{seed}:{split}:{index}" if engine == "espeak" else f"{seed}:{split}:{engine}:{index}"
    rng = random.Random(key + ":read-aloud" if read_aloud_text else key)
    text, written = read_aloud(rng) if read_aloud_text else (random_sentence(rng), None)
    if engine == "festival":  # an engine no model trains on: every festival voice counts as held out
        voice = {"voice": rng.choice(festival.FESTIVAL_VOICES)}
        samples, rate = festival.render(text, **voice)
    else:
        voice = sample_voice(rng, split)
        samples, rate = espeak.render(text, **voice)
    samples = espeak.trim_silence(samples)
    gain = 10 ** (rng.uniform(-12, 0) / 20)  # loudness varies in real recordings
    example_id = f"{split}-{index:06d}"
    rel_path = f"wavs/{example_id}.wav"
    audio.save(Path(out_dir) / rel_path, torch.from_numpy(samples * gain), rate, overwrite=True)
    row = {"id": example_id, "audio": rel_path, "text": text, "engine": engine, **voice, "split": split,
           "duration_s": round(len(samples) / rate, 3)}
    return row if written is None else {**row, "written": written}


def new_corpus_folder(out_dir: str | os.PathLike, n: int, overwrite: bool) -> Path:
    """Check the request and make `out_dir/wavs`; returns the manifest path (never an existing one by accident)."""
    manifest = Path(out_dir) / MANIFEST_NAME
    if manifest.exists() and not overwrite:
        raise FileExistsError(f"{manifest} already exists; choose another --out or pass --overwrite")
    if n <= 0:
        raise ValueError(f"--n must be a positive number of examples, got {n}")
    espeak.espeak_binary()
    (manifest.parent / "wavs").mkdir(parents=True, exist_ok=True)
    return manifest


def _worker_threads() -> None:
    # A forked child must not reuse the parent's OpenMP thread pool (it can hang, e.g. in a
    # notebook that already ran a codec); one torch thread per worker process is all we need.
    torch.set_num_threads(1)


def render_parallel(render_one, jobs: list[tuple], desc: str, workers: int | None = None,
                    progress: bool = True) -> list[dict]:
    """Run `render_one` over `jobs` on every core, in order, with a progress bar."""
    with Pool(workers or os.cpu_count() or 1, initializer=_worker_threads) as pool:
        return list(tqdm(pool.imap(render_one, jobs, chunksize=16), total=len(jobs), desc=desc,
                         disable=not progress))


def render_speech(out_dir: str | os.PathLike, n: int, seed: int = 0, split: str = "train", engine: str = "espeak",
                  workers: int | None = None, overwrite: bool = False, read_aloud_text: bool = False) -> Path:
    """Render `n` sentences in voices of `split` ("train" or held-out "test"); returns the manifest path.

    `engine` is "espeak" (many voices, the training engine) or "festival" (an
    unseen engine for evaluation; only with split "test"). `read_aloud_text`: words in no order with numbers
    among them, each row with its `written` form (see the module docstring).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "festival" and split != "test":
        raise ValueError("festival speech is for testing only: use --split test with --engine festival")
    manifest = new_corpus_folder(out_dir, n, overwrite)
    jobs = [(i, seed, split, engine, read_aloud_text, str(manifest.parent)) for i in range(n)]
    rows = render_parallel(_render_one, jobs, f"rendering {split}", workers)
    return write_manifest(manifest, rows, overwrite=overwrite)
