"""EnCodec (Meta's `encodec` package) as an s2s `Codec`.

Two pretrained models, both with 1024-entry codebooks and a bandwidth knob
that picks how many residual codebooks encode keeps (`bandwidth` in kbps, or
`num_codebooks` directly; 6 kbps by default):

  encodec_24khz  mono, causal, 75 frames/s;  1.5 / 3 / 6 / 12 / 24 kbps -> 2 / 4 / 8 / 16 / 32 codebooks
  encodec_48khz  stereo, non-causal, 150 frames/s;  3 / 6 / 12 / 24 kbps -> 2 / 4 / 8 / 16 codebooks

The 48 kHz model normalises loudness: it divides each input segment by its RMS
and keeps that `scale` next to the codes. s2s codes must describe the audio on
their own, so here the whole clip is one segment (`segment=None`: one scale
per clip, and a contiguous code grid instead of 1 s chunks overlapping by
1 %), the scale is dropped, and decode plays every clip at `NOMINAL_RMS`.
Loudness *within* a clip survives; the clip's absolute level does not.
Decoded 48 kHz audio is down-mixed to mono, as the `Codec` interface returns
[B, 1, T].

Weights are the package's own files, loaded safely (`weights_only=True`)
into the architecture the package builds: first from torch.hub's cache
(`torch.hub.get_dir()/checkpoints`), else downloaded from Meta's URL.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from encodec.model import ROOT_URL, EncodecModel

from s2s.codecs.base import Codec, CodecError, CodecWeightsNotFound, offline

# Model -> the package's checkpoint file name; "encodec" is the 24 kHz model.
CHECKPOINTS = {
    "encodec_24khz": "encodec_24khz-d7cc33bc.th",
    "encodec_48khz": "encodec_48khz-7e698e3e.th",
}
PRETRAINED = {"encodec": "encodec_24khz", "encodec_24khz": "encodec_24khz", "encodec_48khz": "encodec_48khz"}
DEFAULT_BANDWIDTH_KBPS = 6.0
# Level (RMS, about -20 dBFS) at which the 48 kHz model's scale-free codes are played back.
NOMINAL_RMS = 0.1


class EncodecCodec(Codec):
    """An `encodec.EncodecModel` behind the s2s interface; one subclass per pretrained model."""

    def __init__(self, model: EncodecModel, name: str, bandwidth: float | None = None,
                 num_codebooks: int | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.bandwidth = self._pick_bandwidth(bandwidth, num_codebooks)
        model.set_target_bandwidth(self.bandwidth)
        self.sample_rate = model.sample_rate
        self.hop_samples = int(model.encoder.hop_length)
        self.channels = model.channels
        self.codebook_size = model.quantizer.bins
        self.num_codebooks = model.quantizer.get_num_quantizers_for_bandwidth(model.frame_rate, self.bandwidth)

    def _pick_bandwidth(self, bandwidth: float | None, num_codebooks: int | None) -> float:
        """The model encodes only at its target bandwidths, each a fixed number of codebooks."""
        model = self.model
        codebooks_of = {bw: model.quantizer.get_num_quantizers_for_bandwidth(model.frame_rate, bw)
                        for bw in model.target_bandwidths}
        if num_codebooks is not None:
            if bandwidth is not None:
                raise CodecError(f"{self.name}: pass bandwidth or num_codebooks, not both")
            by_count = {count: bw for bw, count in codebooks_of.items()}
            if num_codebooks not in by_count:
                raise CodecError(f"{self.name} encodes with num_codebooks in {sorted(by_count)}, got {num_codebooks}")
            return by_count[num_codebooks]
        bandwidth = DEFAULT_BANDWIDTH_KBPS if bandwidth is None else bandwidth
        if bandwidth not in codebooks_of:
            choices = ", ".join(f"{bw:g}" for bw in codebooks_of)
            raise CodecError(f"{self.name} supports bandwidth {choices} kbps, got {bandwidth!r}")
        return bandwidth

    @property
    def max_codebooks(self) -> int:
        """Decode accepts up to every codebook the model has (the 24 kbps setting)."""
        return self.model.quantizer.n_q

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, C, T] -> codes [B, K, ceil(T / hop_samples)]; a scale, if any, is dropped."""
        (codes, _scale), = self.model.encode(wav)
        return codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, F] -> wav [B, 1, F * hop_samples]."""
        return self.model.decode([(codes, None)]).mean(dim=1, keepdim=True)


class Encodec24Codec(EncodecCodec):
    """encodec_24khz: a causal decoder, so streaming needs no lookahead."""

    # The context covers the LSTM's fading memory: with random weights the stream
    # matches the full decode to 1e-7 from 16 frames on (trained weights could not
    # be checked offline). One exception, at a stream's start: the full decode's
    # first conv reflect-pads, mirroring up to 6 *later* frames into the first
    # output, which a stream cannot see yet. The first 7 frames (93 ms) therefore
    # differ by ~0.1 % of the signal's peak (measured: 1e-4 on a 0.1 peak); all
    # later ones match within STREAM_TOLERANCE. Waiting 6 frames for them would
    # add 80 ms to every chunk's latency, so the start's error is accepted instead.
    stream_context_frames = 32
    stream_lookahead_frames = 0
    stream_tolerance = 1e-3
    stream_start_frames = 7  # frames after which the match is within STREAM_TOLERANCE


class Encodec48Codec(EncodecCodec):
    """encodec_48khz: one loudness scale per clip, dropped; played back at `NOMINAL_RMS`."""

    # The decoder normalises (GroupNorm) over its whole input window, so every sample
    # depends a little on every frame and streaming cannot match the full decode
    # exactly. Its convolutions reach ~8 frames ahead; 16 frames of lookahead and a
    # 1 s context (the model's training segment) kept the error near 1.5 % of the
    # signal's peak with random weights; trained weights could not be checked offline.
    stream_context_frames = 150
    stream_lookahead_frames = 16
    stream_tolerance = 2e-2

    def __init__(self, model: EncodecModel, name: str, **options) -> None:
        # One scale for the whole clip and a contiguous code grid: see the module docstring.
        model.segment = None
        super().__init__(model, name, **options)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return NOMINAL_RMS * super()._decode(codes)


CODECS = {"encodec_24khz": Encodec24Codec, "encodec_48khz": Encodec48Codec}


# --------------------------------------------------------------------------- loading
def build_model(name: str) -> EncodecModel:
    """The package's architecture for `name`, randomly initialised (no download)."""
    if name == "encodec_24khz":
        return EncodecModel.encodec_model_24khz(pretrained=False)
    return EncodecModel.encodec_model_48khz(pretrained=False)


def load_file(file: Path, name: str, **overrides) -> EncodecCodec:
    """Build `name`'s architecture and fill it from a state-dict file, without unpickling code."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several error types for corrupt or unsafe files
        raise CodecError(f"cannot read {file} as an EnCodec state dict ({str(err).strip().splitlines()[0]})") from None
    model = build_model(name)
    try:
        model.load_state_dict(state)
    except (RuntimeError, AttributeError) as err:
        first = str(err).strip().splitlines()[0]
        raise CodecError(f"{file} does not hold {name} weights ({first})") from None
    return CODECS[name](model, name, **overrides)



def checkpoint_path(name: str) -> Path:
    """The local checkpoint for `name`: torch.hub's cache, downloading it there if allowed."""
    filename = CHECKPOINTS[name]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    file = folder / filename
    if file.is_file():
        return file
    url = ROOT_URL + filename
    missing = CodecWeightsNotFound(f"{name} weights not found: download {url} and put {filename} in {folder} "
                                   "(or pass the file's path to load_codec)")
    if offline():
        raise missing
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The file name carries the first hex digits of its sha256, as in the package.
        torch.hub.download_url_to_file(url, str(file), hash_prefix=filename.split("-")[1].split(".")[0])
    except Exception:  # no network, HTTP error, bad hash: the user's fix is the same
        raise missing from None
    return file


def from_pretrained(name: str, **overrides) -> EncodecCodec:
    """Load `encodec`, `encodec_24khz` or `encodec_48khz`; overrides: `bandwidth` (kbps) or `num_codebooks`."""
    name = PRETRAINED[name]
    return load_file(checkpoint_path(name), name, **overrides)


def from_path(path: str | os.PathLike, **overrides) -> EncodecCodec | None:
    """A folder holding an EnCodec checkpoint, or an `encodec_24khz*` / `encodec_48khz*` .th file."""
    path = Path(path)
    if path.is_dir():
        found = [(name, path / filename) for name, filename in CHECKPOINTS.items() if (path / filename).is_file()]
        if len(found) > 1:
            raise CodecError(f"{path} holds both EnCodec checkpoints; pass the path of the one you want")
        return load_file(found[0][1], found[0][0], **overrides) if found else None
    if path.suffix == ".th":
        for name in CHECKPOINTS:
            if path.name.startswith(name):
                return load_file(path, name, **overrides)
    return None
