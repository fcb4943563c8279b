"""Codecs from `transformers`: Mimi (Kyutai), and its ports of EnCodec and DAC.

  mimi               kyutai/mimi              24 kHz, 12.5 frames/s, 32 codebooks of 2048 (Moshi uses 8)
  hf-encodec_24khz   facebook/encodec_24khz   same weights as `encodec_24khz`, 8 codebooks (6 kbps) by default
  hf-dac_16khz / hf-dac_24khz / hf-dac_44khz   descript/dac_*, same weights as `dac_*`

`num_codebooks` keeps the first K residual codebooks. A model folder written
by `save_pretrained` (config.json with model_type mimi / encodec / dac, plus
model.safetensors) loads by path.

Pretrained weights come from the Hugging Face cache, else the Hub. A missing
download fails after one quick request: the Hub client otherwise retries
network errors with back-off for about 20 s before giving up.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from torch.nn import functional as F
from transformers import AutoModel, PreTrainedModel

from s2s.codecs.base import Codec, CodecError, CodecWeightsNotFound, offline
from s2s.codecs.dac import receptive_field_frames
from s2s.codecs.encodec import Encodec24Codec

PRETRAINED = {
    "mimi": "kyutai/mimi",
    "hf-encodec_24khz": "facebook/encodec_24khz",
    "hf-dac_16khz": "descript/dac_16khz",
    "hf-dac_24khz": "descript/dac_24khz",
    "hf-dac_44khz": "descript/dac_44khz",
}
MODEL_TYPES = ("mimi", "encodec", "dac")
HUB_TIMEOUT_S = 10
# Frames the causal convolutions around Mimi's decoder transformer reach back:
# 5 measured with Mimi's kernel sizes and strides, plus margin.
MIMI_CONV_CONTEXT_FRAMES = 8


class HFCodec(Codec):
    """Shared set-up for a transformers audio codec; subclasses adapt encode, decode and the knobs."""

    def __init__(self, model: PreTrainedModel, name: str, num_codebooks: int | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        config = model.config
        self.sample_rate = int(config.sampling_rate)
        self.hop_samples = self.hop_of(config)
        self.codebook_size = int(config.codebook_size)
        self.channels = int(getattr(config, "audio_channels", 1))
        allowed = self.allowed_codebooks()
        self.num_codebooks = self.default_codebooks() if num_codebooks is None else num_codebooks
        if self.num_codebooks not in allowed:
            shown = f"[{allowed[0]}, {allowed[-1]}]" if isinstance(allowed, range) else str(allowed)
            raise CodecError(f"{name} encodes with num_codebooks in {shown}, got {num_codebooks}")
        self.stream_lookahead_frames, self.stream_context_frames = self.stream_frames(config)

    def hop_of(self, config) -> int:
        return int(config.hop_length)

    def stream_frames(self, config) -> tuple[int, int]:
        """(lookahead, context) frames that make streaming decode match the full decode."""
        raise NotImplementedError

    def allowed_codebooks(self) -> range | list[int]:
        return range(1, self.max_codebooks + 1)

    def default_codebooks(self) -> int:
        return self.max_codebooks

    def _fit(self, wav: torch.Tensor, frames: int) -> torch.Tensor:
        """wav [B, C, t] -> [B, 1, frames * hop_samples]: down-mix, then trim or zero-pad the end."""
        wav = wav.mean(dim=1, keepdim=True)[..., : frames * self.hop_samples]
        return F.pad(wav, (0, frames * self.hop_samples - wav.shape[-1]))


class MimiCodec(HFCodec):
    """`MimiModel`: causal SEANet + transformer with a split (semantic + acoustic) RVQ.

    Streaming re-decodes a window of past frames (the `Codec` way), and an exact
    match needs every attention window in it: ~1000 frames for kyutai/mimi, so a
    step costs up to 80 s of decoding once a stream is that long. transformers'
    Mimi decoder keeps no convolution state, so the cheaper stateful stream
    (Moshi's) is not available through it.
    """

    def hop_of(self, config) -> int:
        return round(config.sampling_rate / config.frame_rate)

    def stream_frames(self, config) -> tuple[int, int]:
        # Causal decoder, so no lookahead. Each transformer layer looks `sliding_window`
        # steps back at the upsampled rate, so exact streaming needs every layer's window
        # (1000 frames = 80 s for kyutai/mimi) plus a few frames for the convolutions.
        steps_back = config.num_hidden_layers * config.sliding_window
        return 0, -(-steps_back // config.latent_stride) + MIMI_CONV_CONTEXT_FRAMES

    @property
    def max_codebooks(self) -> int:
        return int(self.model.config.num_quantizers)

    def allowed_codebooks(self) -> range:
        # The split quantizer always keeps its semantic codebooks.
        return range(max(1, int(self.model.config.num_semantic_quantizers)), self.max_codebooks + 1)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model.encode(wav, num_quantizers=self.num_codebooks).audio_codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self._fit(self.model.decode(codes).audio_values, codes.shape[-1])


class EncodecHFCodec(HFCodec):
    """transformers' `EncodecModel`, in its causal un-normalised (24 kHz) form only."""

    # The network of `encodec_24khz`, so its streaming settings and their
    # reflect-padded start (see Encodec24Codec).
    stream_tolerance = Encodec24Codec.stream_tolerance
    stream_start_frames = Encodec24Codec.stream_start_frames

    def __init__(self, model: PreTrainedModel, name: str, num_codebooks: int | None = None) -> None:
        config = model.config
        if config.normalize or config.chunk_length_s is not None or not config.use_causal_conv:
            raise CodecError(f"{name}: s2s reads only the causal 24 kHz form of transformers' EnCodec; "
                             "for 48 kHz use load_codec('encodec_48khz')")
        super().__init__(model, name, num_codebooks)

    def stream_frames(self, config) -> tuple[int, int]:
        return Encodec24Codec.stream_lookahead_frames, Encodec24Codec.stream_context_frames

    @property
    def bandwidth_of(self) -> dict[int, float]:
        """Codebooks -> target bandwidth (kbps): the model encodes only at those."""
        count = self.model.quantizer.get_num_quantizers_for_bandwidth
        return {count(bw): bw for bw in self.model.config.target_bandwidths}

    @property
    def max_codebooks(self) -> int:
        return int(self.model.quantizer.num_quantizers)

    def allowed_codebooks(self) -> list[int]:
        return sorted(self.bandwidth_of)

    def default_codebooks(self) -> int:
        # 6 kbps, as the `encodec` backend, so both give the same codes by default.
        return next((k for k, bw in self.bandwidth_of.items() if bw == 6.0), max(self.bandwidth_of))

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        chunks = self.model.encode(wav, bandwidth=self.bandwidth_of[self.num_codebooks]).audio_codes
        return chunks[0]  # [chunks=1, B, K, F]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self._fit(self.model.decode(codes[None], [None]).audio_values, codes.shape[-1])


class DacHFCodec(HFCodec):
    """transformers' `DacModel`: the same network as the `dac` package."""

    def stream_frames(self, config) -> tuple[int, int]:
        return receptive_field_frames(self.model.decoder, self.hop_samples)

    @property
    def max_codebooks(self) -> int:
        return int(self.model.config.n_codebooks)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        # Right-pad to a whole hop, as the `dac` package's preprocess does.
        wav = F.pad(wav, (0, -wav.shape[-1] % self.hop_samples))
        return self.model.encode(wav, n_quantizers=self.num_codebooks).audio_codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        wav = self.model.decode(audio_codes=codes).audio_values  # [B, T]
        return self._fit(wav[:, None], codes.shape[-1])


CODECS = {"mimi": MimiCodec, "encodec": EncodecHFCodec, "dac": DacHFCodec}


# --------------------------------------------------------------------------- loading
def _wrap(model: PreTrainedModel, name: str, **overrides) -> HFCodec:
    return CODECS[model.config.model_type](model, name, **overrides)


def load_hub_model(hub_id: str, name: str) -> PreTrainedModel:
    """The model from the Hugging Face cache, else downloaded; one quick failure when it can't be."""
    try:
        return AutoModel.from_pretrained(hub_id, local_files_only=True, dtype=torch.float32)
    except OSError:  # not cached
        pass
    missing = CodecWeightsNotFound(
        f"{name} weights not found: download config.json and model.safetensors from https://huggingface.co/{hub_id} "
        f"into a folder and pass that folder to load_codec, or into the Hugging Face cache ({constants.HF_HUB_CACHE})")
    if offline():
        raise missing
    try:
        # One request without retries: tells "no network" apart in seconds.
        get_hf_file_metadata(hf_hub_url(hub_id, "config.json"), timeout=HUB_TIMEOUT_S)
        return AutoModel.from_pretrained(hub_id, dtype=torch.float32)
    except Exception:  # no network, HTTP error, gated repo: the user's fix is the same
        raise missing from None


def from_pretrained(name: str, **overrides) -> HFCodec:
    """Load `mimi`, `hf-encodec_24khz` or `hf-dac_*`; overrides: `num_codebooks`."""
    return _wrap(load_hub_model(PRETRAINED[name], name), name, **overrides)


def from_path(path: str | os.PathLike, **overrides) -> HFCodec | None:
    """A `save_pretrained` folder whose config.json names a Mimi, EnCodec or DAC model."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        return None
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None
    if model_type not in MODEL_TYPES:
        return None
    try:
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    except OSError as err:
        raise CodecError(f"cannot load {path} ({str(err).strip().splitlines()[0]}); "
                         "it needs config.json and model.safetensors") from None
    return _wrap(model, path.name, **overrides)
