"""Where audio comes from: a folder of audio files or a JSONL manifest, one way for every tool."""
from __future__ import annotations

import os
from pathlib import Path

from s2s import audio
from s2s.data.manifest import read_manifest_lines

AUDIO_SUFFIXES = (".wav", ".flac")


def find_audio_files(sources: str | os.PathLike) -> list[Path]:
    """The audio files of a folder (searched recursively, sorted) or of a JSONL manifest, in order.

    A manifest holds one JSON object per line with an `audio` (or `path`)
    field; relative paths are read from the manifest's folder. Blank lines are skipped.
    """
    sources = Path(sources)
    if not sources.exists():
        raise FileNotFoundError(f"{sources} does not exist; pass a folder of .wav/.flac files or a .jsonl manifest")
    if sources.is_dir():
        files = sorted(p for p in sources.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise FileNotFoundError(f"no .wav or .flac files under {sources}; put the evaluation audio there "
                                    "or pass a .jsonl manifest")
        return files
    if sources.suffix.lower() != ".jsonl":
        raise audio.AudioError(f"{sources} is neither a folder nor a .jsonl manifest; pass a folder of "
                               ".wav/.flac files or a manifest with one {{\"audio\": path}} object per line")
    return _read_manifest(sources)


def _read_manifest(manifest: Path) -> list[Path]:
    files = []
    for line_number, row in read_manifest_lines(manifest):
        relative = row.get("audio", row.get("path"))
        if not isinstance(relative, str) or not relative:
            raise audio.AudioError(f"{manifest}:{line_number}: expected an \"audio\" or \"path\" field "
                                   "naming an audio file")
        path = manifest.parent / relative
        if not path.is_file():
            raise FileNotFoundError(f"{manifest}:{line_number}: audio file {path} not found; paths are "
                                    "relative to the manifest's folder")
        files.append(path)
    if not files:
        raise FileNotFoundError(f"{manifest} lists no audio files; add lines like {{\"audio\": \"clip.wav\"}}")
    return files
