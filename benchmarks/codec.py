"""Codec speed on this machine: encode and decode real-time factor, and what our wrapper costs.

For each backend, at its real pretrained size but with random weights (built
offline, so nothing is downloaded): EnCodec 24 kHz, DAC 44.1 kHz (`DAC()`),
Mimi (`MimiConfig()`), plus s2s-tiny when its weights are installed.

Real-time factor (RTF) = seconds of compute / seconds of audio; below 1 is
faster than real time. The baseline, in the same run and on the same input,
is the model's own library called directly (`encodec`, `dac`, transformers);
`ours / direct` is our wrapper's time over that (the target is within 5 %).
Times are the best of `--repeats` runs, wrapper and direct interleaved.

    python benchmarks/codec.py                       # ~5 s of audio, 3 repeats: a couple of minutes
    python benchmarks/codec.py --seconds 1 --repeats 1 --threads 1   # smoke run
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import torch

from s2s.codecs import CodecWeightsNotFound, load_codec
from s2s.codecs.base import Codec, CodecError


def speech_like(seconds: float, sample_rate: int) -> torch.Tensor:
    """A harmonic tone with a moving pitch and syllable envelope: wav [1, 1, T]."""
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    f0_hz = 120 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0_hz, 0) / sample_rate
    wav = sum(torch.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)).abs()
    return (0.2 * wav)[None, None]


def best_time_s(run: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


# ------------------------------------------------------------------ the backends, each beside its own library
def encodec_24khz() -> tuple[Codec, Callable, Callable]:
    from encodec.model import EncodecModel

    from s2s.codecs.encodec import Encodec24Codec

    model = EncodecModel.encodec_model_24khz(pretrained=False)
    codec = Encodec24Codec(model, "encodec_24khz")  # sets the model's bandwidth (6 kbps) for both paths
    return codec, lambda wav: model.encode(wav)[0][0], lambda codes: model.decode([(codes, None)])


def dac_44khz() -> tuple[Codec, Callable, Callable]:
    from dac.model import DAC

    from s2s.codecs.dac import DACCodec

    model = DAC().eval()
    codec = DACCodec(model, "dac_44khz")

    def encode(wav):
        return model.encode(model.preprocess(wav, model.sample_rate))[1]

    def decode(codes):
        return model.decode(model.quantizer.from_codes(codes)[0])

    return codec, encode, decode


def mimi() -> tuple[Codec, Callable, Callable]:
    from transformers import MimiConfig, MimiModel

    from s2s.codecs.hf import MimiCodec

    model = MimiModel(MimiConfig()).eval()
    codec = MimiCodec(model, "mimi")
    return codec, lambda wav: model.encode(wav).audio_codes, lambda codes: model.decode(codes).audio_values


# name -> (the library it is compared with, builder)
BACKENDS = {"encodec_24khz": ("encodec", encodec_24khz), "dac_44khz": ("dac", dac_44khz),
            "mimi": ("transformers", mimi)}


def measure(codec: Codec, seconds: float, repeats: int, direct: tuple[Callable, Callable] | None) -> dict:
    """RTFs of our encode/decode and, when given, the direct library calls' times on the same input."""
    wav = speech_like(seconds, codec.sample_rate)
    codes = codec.encode(wav, codec.sample_rate)  # warm-up, and the codes decode uses
    codec.decode(codes)
    row = {"params_m": sum(p.numel() for p in codec.parameters()) / 1e6}
    ours_encode = ours_decode = direct_encode = direct_decode = math.inf
    with torch.inference_mode():
        for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
            ours_encode = min(ours_encode, best_time_s(lambda: codec.encode(wav, codec.sample_rate), 1))
            ours_decode = min(ours_decode, best_time_s(lambda: codec.decode(codes), 1))
            if direct:
                direct_encode = min(direct_encode, best_time_s(lambda: direct[0](wav), 1))
                direct_decode = min(direct_decode, best_time_s(lambda: direct[1](codes), 1))
    row.update(encode_rtf=ours_encode / seconds, decode_rtf=ours_decode / seconds)
    if direct:
        row.update(encode_ratio=ours_encode / direct_encode, decode_ratio=ours_decode / direct_decode)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="audio length per call (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the best counts")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"CPU, {torch.get_num_threads()} torch threads, {args.seconds:g} s of audio, best of {args.repeats}")
    print(f"{'codec':<14} {'params':>8} {'encode RTF':>11} {'decode RTF':>11}   ours / direct library (enc, dec)")

    for name, (library, build) in BACKENDS.items():
        codec, encode, decode = build()
        row = measure(codec, args.seconds, args.repeats, (encode, decode))
        print(f"{name:<14} {row['params_m']:>7.1f}M {row['encode_rtf']:>11.3f} {row['decode_rtf']:>11.3f}   "
              f"{row['encode_ratio']:.3f}, {row['decode_ratio']:.3f}  vs {library}")
        del codec, encode, decode

    try:
        tiny = load_codec("s2s-tiny")
    except (CodecWeightsNotFound, CodecError) as err:
        print(f"{'s2s-tiny':<14} skipped: {err}")
    else:
        row = measure(tiny, args.seconds, args.repeats, None)
        print(f"{'s2s-tiny':<14} {row['params_m']:>7.1f}M {row['encode_rtf']:>11.3f} {row['decode_rtf']:>11.3f}   "
              "(no other library)")


if __name__ == "__main__":
    main()
