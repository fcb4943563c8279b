"""s2s-tiny quality against bitrate, beside two named baselines, for the model card.

For k = 1..K codebooks: STOI, SI-SDR, wide-band PESQ and log-mel distance on
speech in held-out espeak-ng voices and on festival speech (an engine the codec
never heard). Baselines in the same run, on the same clips:
  * Griffin-Lim (32 iterations) on the *true* magnitude spectrogram: a phase-
    reconstruction reference with no quantisation at all;
  * s2s-tiny with its quantiser bypassed: the decoder's own ceiling.
and two oracles that split the remaining error between magnitude and phase:
  * the codec's output magnitude with the *true* phase (what perfect phase would give);
  * the *true* magnitude with the codec's output phase (what perfect magnitude would give).
It also saves a spectrogram of one reconstruction beside its original.

    s2s data speech --out data/codec-speech/test --n 200 --split test
    s2s data speech --out data/codec-speech/festival --n 60 --split test --engine festival
    python benchmarks/tiny_codec_quality.py --limit 100 --figure s2s/assets/codecs/s2s-tiny/spectrogram.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchaudio

from s2s import audio, plots
from s2s.codecs import load_codec
from s2s.data.sources import find_audio_files
from s2s.eval import QualityMetrics
from s2s.eval.codec import evaluate_codec


def baseline(files: list[Path], reconstruct, sample_rate: int) -> dict:
    metrics = QualityMetrics()
    for path in files:
        wav, _ = audio.load(path, sample_rate)
        with torch.inference_mode():
            metrics.update(reconstruct(wav)[None, None], wav[None], sample_rate)
    return metrics.compute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", default="s2s-tiny")
    parser.add_argument("--espeak", default="data/codec-speech/test/manifest.jsonl")
    parser.add_argument("--festival", default="data/codec-speech/festival/manifest.jsonl")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--figure", default=None, help="where to save the spectrogram figure (PNG)")
    args = parser.parse_args()
    torch.manual_seed(0)

    codec = load_codec(args.codec)
    net, rate = codec.net, codec.sample_rate
    griffin_lim = torchaudio.transforms.GriffinLim(n_fft=net.cfg.n_fft, hop_length=net.cfg.stft_hop, power=1.0,
                                                   n_iter=32)
    window = torch.hann_window(net.cfg.n_fft)

    def true_magnitude_griffin_lim(wav: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wav[0], net.cfg.n_fft, net.cfg.stft_hop, window=window, return_complex=True).abs()
        return griffin_lim(spec)[: wav.shape[-1]]

    def quantiser_bypassed(wav: torch.Tensor) -> torch.Tensor:
        return net.decoder(net.latent(wav))[0, : wav.shape[-1]]

    def stft(wav: torch.Tensor) -> torch.Tensor:
        return torch.stft(wav, net.cfg.n_fft, net.cfg.stft_hop, window=window, return_complex=True)

    def swap(magnitude_from_codec: bool):
        def reconstruct(wav: torch.Tensor) -> torch.Tensor:
            coded = codec.decode(codec.encode(wav[None], rate))[0, 0, : wav.shape[-1]]
            true, ours = stft(wav[0]), stft(coded)
            magnitude, phase = (ours, true) if magnitude_from_codec else (true, ours)
            return torch.istft(torch.polar(magnitude.abs(), phase.angle()), net.cfg.n_fft, net.cfg.stft_hop,
                               window=window, length=wav.shape[-1])
        return reconstruct

    print("| test set | codebooks | kbit/s | STOI | SI-SDR (dB) | PESQ-WB | log-mel dist |")
    print("|---|---|---|---|---|---|---|")
    for name, manifest in (("espeak-ng held-out voices", args.espeak), ("festival (unseen engine)", args.festival)):
        files = find_audio_files(manifest)[: args.limit]
        rows = [(f"{k}", evaluate_codec(codec, manifest, num_codebooks=k, limit=args.limit, progress=False))
                for k in range(1, codec.num_codebooks + 1)]
        rows.append(("no quantiser", {**baseline(files, quantiser_bypassed, rate), "bitrate_bps": float("nan")}))
        rows.append(("Griffin-Lim, true magnitude", {**baseline(files, true_magnitude_griffin_lim, rate),
                                                     "bitrate_bps": float("nan")}))
        rows.append(("oracle: codec magnitude + true phase", {**baseline(files, swap(True), rate),
                                                              "bitrate_bps": float("nan")}))
        rows.append(("oracle: true magnitude + codec phase", {**baseline(files, swap(False), rate),
                                                              "bitrate_bps": float("nan")}))
        for label, r in rows:
            pesq = f"{r['pesq_wb']:.2f}" if r.get("pesq_wb") is not None else "n/a"
            print(f"| {name} ({len(files)} clips) | {label} | {r['bitrate_bps'] / 1000:.1f} | {r['stoi']:.3f} | "
                  f"{r['si_sdr']:.1f} | {pesq} | {r['logmel_dist']:.3f} |")

    if args.figure:
        wav, file_rate = audio.load(find_audio_files(args.espeak)[0], rate)
        reconstruction = codec.decode(codec.encode(wav[None], rate))[0, 0]
        fig = plots.plot_spectrograms({"original (held-out voice)": wav[0],
                                       f"s2s-tiny, {codec.bitrate / 1000:g} kbit/s": reconstruction}, rate)
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=80)
        print(f"saved {args.figure}")


if __name__ == "__main__":
    main()
