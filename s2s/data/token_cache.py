"""Encode the audio of a manifest once, into a sharded on-disk cache of codec tokens.

    cache = tokenize_manifest("data/synth/manifest.jsonl", load_codec("s2s-tiny"))
    codes = cache.get("train-000042", "question_audio")      # LongTensor [K, F]

Layout: `<manifest folder>/tokens/<codec name>-<fingerprint>/shard-00000.safetensors ...`
* Keyed by the codec's fingerprint (name, rates and a hash of every weight),
  so a different or retrained codec gets its own folder and never reads
  stale tokens.
* Each shard holds a fixed slice of the manifest's audio, with a hash of every
  source file in its metadata; a shard is written to a temporary file and
  renamed, so it is either complete or absent. An interrupted run resumes by
  skipping the shards that are complete and still match their sources.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from s2s import audio
from s2s.codecs.base import Codec
from s2s.data.manifest import read_manifest

AUDIO_FIELDS = ("audio", "question_audio", "reply_audio", "voice_prompt_audio")
SHARD_SIZE = 512  # audio files per shard


def file_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def audio_items(manifest: Path) -> list[tuple[str, Path]]:
    """(key, audio path) for every audio field of every row, in manifest order; key is `id:field`."""
    items = []
    for row in read_manifest(manifest):
        for field in AUDIO_FIELDS:
            if row.get(field):
                items.append((f"{row['id']}:{field}", manifest.parent / row[field]))
    return items


def encode_file(codec: Codec, path: Path) -> torch.Tensor:
    """One file -> codes [K, F]: the same call the on-the-fly path makes, so cache and live agree."""
    wav, rate = audio.load(path)
    return codec.encode(wav[None], rate)[0]


class TokenCache:
    """Read access to a finished (or partial) cache folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "cache.json").read_text())
        self._where: dict[str, Path] = {}
        for shard in sorted(self.folder.glob("shard-*.safetensors")):
            with safe_open(shard, "pt") as f:
                for key in f.keys():
                    self._where[key] = shard

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, example_id: str, field: str) -> torch.Tensor:
        key = f"{example_id}:{field}"
        if key not in self._where:
            raise KeyError(f"{key} is not in the token cache {self.folder}; run `s2s data tokenize` again")
        with safe_open(self._where[key], "pt") as f:
            return f.get_tensor(key).long()


def cache_folder(manifest: Path, codec: Codec, cache_root: Path | None = None, fingerprint: str | None = None) -> Path:
    """Where `codec`'s tokens of `manifest` live; pass `fingerprint` when you have it (hashing reads every weight)."""
    root = Path(cache_root) if cache_root else Path(manifest).parent / "tokens"
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in codec.name)
    return root / f"{safe_name}-{(fingerprint or codec.fingerprint())[:16]}"


def _shard_is_current(shard: Path, items: list[tuple[str, Path]], hashes: list[str]) -> bool:
    try:
        with safe_open(shard, "pt") as f:
            sources = json.loads((f.metadata() or {}).get("sources", "{}"))
    except Exception:  # unreadable or foreign file: re-encode it
        return False
    return sources == {key: h for (key, _), h in zip(items, hashes)}


_worker_codec: Codec | None = None


def _init_worker(codec: Codec) -> None:
    global _worker_codec
    torch.set_num_threads(1)  # one process per core beats two threads per process for small encoders
    _worker_codec = codec


def _write_shard(job: tuple[Path, list[tuple[str, Path]], list[str]]) -> int:
    shard, shard_items, hashes = job
    codec = _worker_codec
    dtype = torch.int16 if codec.codebook_size <= 32768 else torch.int32
    tensors = {key: encode_file(codec, path).to(dtype).contiguous() for key, path in shard_items}
    metadata = {"sources": json.dumps({key: h for (key, _), h in zip(shard_items, hashes)})}
    fd, tmp = tempfile.mkstemp(dir=shard.parent, prefix=".shard.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, shard)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(shard_items)


def tokenize_manifest(manifest: str | os.PathLike, codec: Codec, cache_root: str | os.PathLike | None = None,
                      shard_size: int = SHARD_SIZE, workers: int | None = None, progress: bool = True) -> TokenCache:
    """Encode every audio file the manifest names, one shard per task on `workers` processes (default: all
    cores); resumes from complete shards."""
    manifest = Path(manifest)
    items = audio_items(manifest)
    if not items:
        raise ValueError(f"{manifest} names no audio (fields {', '.join(AUDIO_FIELDS)}); nothing to tokenize")
    fingerprint = codec.fingerprint()
    folder = cache_folder(manifest, codec, cache_root, fingerprint)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".shard.*.tmp"):  # a killed run's half-written shard
        leftover.unlink()
    (folder / "cache.json").write_text(json.dumps({
        "codec": codec.name, "fingerprint": fingerprint, "sample_rate": codec.sample_rate,
        "frame_rate": codec.frame_rate, "num_codebooks": codec.num_codebooks, "codebook_size": codec.codebook_size,
        "manifest": str(manifest.resolve()), "shard_size": shard_size}, indent=2))
    bar = tqdm(total=len(items), desc=f"tokenizing with {codec.name}", unit="file", disable=not progress)
    jobs = []
    for start in range(0, len(items), shard_size):
        shard_items = items[start: start + shard_size]
        hashes = [file_hash(path) for _, path in shard_items]
        shard = folder / f"shard-{start // shard_size:05d}.safetensors"
        if shard.exists() and _shard_is_current(shard, shard_items, hashes):
            bar.update(len(shard_items))
        else:
            jobs.append((shard, shard_items, hashes))
    workers = min(workers or os.cpu_count() or 1, max(1, len(jobs)))
    if workers == 1:
        global _worker_codec
        _worker_codec = codec
        for job in jobs:
            bar.update(_write_shard(job))
    else:
        with multiprocessing.get_context("fork").Pool(workers, _init_worker, (codec,)) as pool:
            for done in pool.imap_unordered(_write_shard, jobs):
                bar.update(done)
    bar.close()
    for stale in folder.glob("shard-*.safetensors"):  # shards beyond the manifest's end (it shrank)
        if int(stale.stem.split("-")[1]) * shard_size >= len(items):
            stale.unlink()
    return TokenCache(folder)
