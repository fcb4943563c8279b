"""Turn speech corpora on disk into s2s manifests: a folder of wav+txt pairs, or LibriSpeech.

No audio is copied: each row's `audio` is the original file's path relative
to the manifest's folder (`os.path.relpath`), so the manifest can live
anywhere beside a read-only corpus. An importer fails, naming the first few
culprits, on anything that would silently drop or mislabel examples (audio
without a transcript, a transcript line without audio): a corpus that is
quietly smaller than the user thinks is worse than an error. Audio is only
opened for its header (duration); `s2s data validate` checks the result.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import soundfile as sf

from s2s.data.manifest import check_writable, write_manifest


def import_wav_txt_folder(src: str | os.PathLike, out_manifest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a manifest for every `NAME.wav` under `src` (recursively) with its transcript `NAME.txt` beside it.

    Rows: `id` (the path below `src` without suffix, `/` replaced by `-`),
    `audio`, `text` (the .txt, UTF-8, stripped), `speaker` (the wav's folder
    name, `src`'s own name for files at the top) and `duration_s`. A .txt
    without a .wav is not audio and is ignored. Returns the manifest path.
    """
    src = _folder(src, "a folder of NAME.wav + NAME.txt pairs")
    out = Path(out_manifest)
    check_writable(out, overwrite)
    wavs = sorted(p for p in src.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs:
        raise FileNotFoundError(f"no .wav files under {src}; expected NAME.wav + NAME.txt pairs")
    lonely = [w.relative_to(src) for w in wavs if not w.with_suffix(".txt").is_file()]
    if lonely:
        raise FileNotFoundError(f"{len(lonely)} of {len(wavs)} wav files have no .txt transcript beside them: "
                                f"{_few(lonely)}; add NAME.txt next to each NAME.wav or move the wav away")
    texts = [_read_text(w.with_suffix(".txt")) for w in wavs]
    silent = [w.with_suffix(".txt").relative_to(src) for w, text in zip(wavs, texts) if not text]
    if silent:
        raise ValueError(f"{len(silent)} transcripts are empty: {_few(silent)}; write what is said in each")
    ids = [w.relative_to(src).with_suffix("").as_posix().replace("/", "-") for w in wavs]
    _check_unique(ids, "an id is the path with / replaced by -, so a/b.wav and a-b.wav collide; rename one of each")
    rows = [{"id": example_id, "audio": _relative_to(out, wav), "text": text, "speaker": wav.parent.name,
             "duration_s": _duration_s(wav)} for example_id, wav, text in zip(ids, wavs, texts)]
    return write_manifest(out, rows, overwrite=overwrite)


def import_librispeech(root: str | os.PathLike, out_manifest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a manifest for a LibriSpeech split: `root/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`.

    Transcripts come from `root/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt`,
    one `UTTERANCE-ID TRANSCRIPT WORDS` per line. Rows: `id` (the utterance
    id), `audio`, `text` exactly as LibriSpeech ships it (upper case, no
    punctuation; normalise it where you compare text, not here), `speaker`
    and `chapter` (folder names, as strings) and `duration_s`. Transcripts
    are found at any depth, so `root` may also be the `LibriSpeech` folder
    holding several splits. Returns the manifest path.
    """
    root = _folder(root, "a LibriSpeech split folder such as LibriSpeech/dev-clean")
    out = Path(out_manifest)
    check_writable(out, overwrite)
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise FileNotFoundError(f"no *.trans.txt transcripts under {root}; expected the LibriSpeech layout "
                                "SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt beside SPEAKER-CHAPTER-UTT.flac files")
    utterances, missing = [], []  # utterances: (id, text, flac path)
    for transcript in transcripts:
        for line_number, line in enumerate(_read_text(transcript).splitlines(), start=1):
            if not line.strip():
                continue
            utterance_id, _, text = line.strip().partition(" ")
            if not text.strip():
                raise ValueError(f"{transcript}:{line_number}: expected 'UTTERANCE-ID TRANSCRIPT WORDS', "
                                 f"got {line.strip()[:60]!r}")
            flac = transcript.parent / f"{utterance_id}.flac"
            if flac.is_file():
                utterances.append((utterance_id, text.strip(), flac))
            else:
                missing.append(utterance_id)
    if missing:
        raise FileNotFoundError(f"{len(missing)} utterances in the transcripts have no .flac file: {_few(missing)}; "
                                "is the download complete? (unpack the whole archive again)")
    _check_unique([utterance_id for utterance_id, _, _ in utterances], "a transcript repeats them; delete the repeats")
    listed = {flac for _, _, flac in utterances}
    unlisted = sorted(p.relative_to(root) for p in root.rglob("*.flac") if p not in listed)
    if unlisted:
        raise ValueError(f"{len(unlisted)} .flac files are in no transcript: {_few(unlisted)}; move them away "
                         "or restore their SPEAKER-CHAPTER.trans.txt")
    rows = [{"id": utterance_id, "audio": _relative_to(out, flac), "text": text, "speaker": flac.parent.parent.name,
             "chapter": flac.parent.name, "duration_s": _duration_s(flac)} for utterance_id, text, flac in utterances]
    return write_manifest(out, rows, overwrite=overwrite)


# The `s2s data import --format` choices.
IMPORTERS = {"wav-txt": import_wav_txt_folder, "librispeech": import_librispeech}


def _folder(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{path} {state}; pass {what}")
    return path


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: transcripts saved by Windows editors start with a byte-order mark that is not text.
        return path.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None


def _duration_s(path: Path) -> float:
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises its own error types for every corrupt header
        reason = getattr(err, "error_string", None) or str(err).strip().splitlines()[0]
        raise ValueError(f"cannot read {path} as audio ({reason}); replace or remove the file") from None
    return round(info.frames / info.samplerate, 3)


def _relative_to(manifest: Path, audio_path: Path) -> str:
    """`audio_path` as the manifest stores it: relative to the manifest's folder, with / on every OS."""
    return Path(os.path.relpath(os.path.abspath(audio_path), os.path.abspath(manifest.parent))).as_posix()


def _check_unique(ids: list[str], advice: str) -> None:
    repeated = [example_id for example_id, count in Counter(ids).items() if count > 1]
    if repeated:
        raise ValueError(f"{len(repeated)} ids are used more than once: {_few(repeated)}; {advice}")


def _few(names: list, shown: int = 3) -> str:
    """The first `shown` names, then how many more: errors name culprits without flooding the terminal."""
    listed = ", ".join(str(name) for name in names[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"
