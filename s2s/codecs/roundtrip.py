"""Encode and decode one audio file, write the reconstruction and measure it."""
from __future__ import annotations

import os
import time
from pathlib import Path

from s2s import audio
from s2s.codecs.loader import load_codec
from s2s.eval.audio_quality import MIN_CLIP_SECONDS, QUALITY_FIGURES, QualityMetrics


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
