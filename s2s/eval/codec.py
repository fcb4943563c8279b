"""What survives a codec: one file round-tripped (`roundtrip_file`, `s2s codec roundtrip`) or a folder
measured (`evaluate_codec`, `s2s codec eval`). It lives in `s2s.eval`, so the codecs themselves need no
evaluation code.

    results = evaluate_codec(load_codec("s2s-tiny"), "data/eval/", num_codebooks=4)
    print(format_report(results))

Sweeping `num_codebooks` over 1..K gives a bitrate / quality curve from one
codec: decoding only the first n codebooks (`codes[:, :n]`) is what a
residual codec does at a lower bitrate.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from s2s import audio
from s2s.codecs.base import Codec, CodecError
from s2s.codecs.loader import load_codec
from s2s.data.sources import find_audio_files
from s2s.eval.audio_quality import MIN_CLIP_SECONDS, QUALITY_FIGURES, QualityMetrics


def evaluate_codec(codec: Codec, sources: str | os.PathLike, num_codebooks: int | None = None,
                   limit: int | None = None, progress: bool = True) -> dict:
    """Encode and decode every file of `sources` and return the mean quality figures.

    `num_codebooks` keeps only the first n codebooks (default: all of them);
    `limit` keeps only the first files. Returns a dict with `codec`,
    `n_files`, `seconds_audio`, `num_codebooks`, `bitrate_bps` and the
    `QualityMetrics` figures `stoi`, `si_sdr`, `pesq_wb` (None without the
    `pesq` package), `logmel_dist`.
    """
    if not isinstance(codec, Codec):
        raise CodecError(f"evaluate_codec needs a Codec, got {type(codec).__name__}; load one with load_codec(name)")
    num_codebooks = codec.num_codebooks if num_codebooks is None else num_codebooks
    if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int) \
            or not 1 <= num_codebooks <= codec.num_codebooks:
        raise CodecError(f"num_codebooks must be an integer from 1 to {codec.num_codebooks} for {codec.name}, "
                         f"got {num_codebooks!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of files or None, got {limit!r}")

    files = find_audio_files(sources)[:limit]
    metrics = QualityMetrics()
    seconds_audio = 0.0
    for path in tqdm(files, desc=f"evaluating {codec.name}", unit="file", disable=not progress):
        wav, file_rate = audio.load(path)  # [1, T]
        codes = codec.encode(wav[None], file_rate)[:, :num_codebooks]
        reconstruction = codec.decode(codes)
        try:
            metrics.update(reconstruction, wav[None], codec.sample_rate, reference_sample_rate=file_rate)
        except audio.AudioError as err:
            raise audio.AudioError(f"{path}: {err}") from None
        seconds_audio += wav.shape[-1] / file_rate

    bits_per_code = (codec.codebook_size - 1).bit_length()
    return {
        "codec": codec.name,
        "n_files": len(files),
        "seconds_audio": seconds_audio,
        "num_codebooks": num_codebooks,
        "bitrate_bps": codec.frame_rate * num_codebooks * bits_per_code,
        **metrics.compute(),
    }


def format_report(results: dict) -> str:
    """A small two-column table of `evaluate_codec` results, with units and which way is better."""
    def figure(key: str, fmt: str, unit: str = "") -> str:
        value = results.get(key)
        if value is None:
            return "n/a (install the pesq package)" if key == "pesq_wb" else "n/a"
        return f"{value:{fmt}}{unit}"

    rows = [
        ("codec", str(results.get("codec", "?"))),
        ("files", f"{results['n_files']} ({results['seconds_audio']:.1f} s of audio)"),
        ("codebooks", str(results["num_codebooks"])),
        ("bitrate", f"{results['bitrate_bps'] / 1000:.2f} kbps"),
        ("STOI ↑", figure("stoi", ".3f")),
        ("SI-SDR ↑", figure("si_sdr", ".2f", " dB")),
        ("PESQ-WB ↑", figure("pesq_wb", ".2f")),
        ("log-mel dist ↓", figure("logmel_dist", ".3f")),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def roundtrip_file(input_path: str | os.PathLike, out_path: str | os.PathLike, codec_name: str = "s2s-tiny",
                   num_codebooks: int | None = None, overwrite: bool = False) -> dict:
    """Returns bitrate, frame count, timings (ms, real-time factors) and STOI / SI-SDR / PESQ / log-mel figures."""
    if Path(out_path).exists() and not overwrite:
        raise FileExistsError(f"{out_path} already exists; choose another --out or pass --overwrite")
    wav, rate = audio.load(input_path)
    options = {"num_codebooks": num_codebooks} if num_codebooks else {}
    codec = load_codec(codec_name, **options)
    start = time.perf_counter()
    codes = codec.encode(wav[None], rate)
    encoded = time.perf_counter()
    reconstruction = codec.decode(codes)
    decoded = time.perf_counter()
    audio.save(out_path, reconstruction[0], codec.sample_rate, overwrite=overwrite)
    seconds = wav.shape[-1] / rate
    metrics = QualityMetrics()
    if seconds >= MIN_CLIP_SECONDS:
        metrics.update(reconstruction, wav[None], codec.sample_rate, reference_sample_rate=rate)
        quality = metrics.compute()
    else:  # still a reconstruction, but too short for STOI and PESQ to mean anything
        quality = dict.fromkeys(QUALITY_FIGURES)
        quality["note"] = f"quality figures need at least {MIN_CLIP_SECONDS} s of audio"
    return {
        "input": str(input_path),
        "output": str(out_path),
        "codec": codec.name,
        "num_codebooks": codes.shape[1],
        "frames": codes.shape[2],
        "bitrate_bps": codec.frame_rate * codes.shape[1] * (codec.codebook_size - 1).bit_length(),
        "seconds_audio": round(seconds, 3),
        "encode_ms": round(1000 * (encoded - start), 1),
        "decode_ms": round(1000 * (decoded - encoded), 1),
        "rtf": round((decoded - start) / seconds, 4),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in quality.items()},
    }
