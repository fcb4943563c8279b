"""TinyCodec: s2s-tiny behind the common `Codec` interface, saved as safetensors + config.yaml.

A saved codec is a folder:
    config.yaml          codec: s2s-tiny, plus every TinyCodecConfig field
    model.safetensors    encoder, decoder and codebook weights (float16 on disk, float32 in memory)
    README.md            the model card (optional)
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from s2s.codecs.base import Codec, CodecError, CodecWeightsNotFound
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.files import atomic_folder

CODEC_NAME = "s2s-tiny"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "assets" / "codecs" / CODEC_NAME
PRETRAINED = {CODEC_NAME: SHIPPED_DIR}
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.yaml"
# Training-only EMA statistics are not needed to encode or decode.
_TRAINING_BUFFERS = ("embed_sum", "cluster_size", "initialized")


class TinyCodec(Codec):
    name = CODEC_NAME
    decodes_posteriors = True

    def __init__(self, net: TinyCodecNet, num_codebooks: int | None = None):
        super().__init__()
        self.net = net.eval()
        cfg = net.cfg
        if num_codebooks is not None and not 1 <= num_codebooks <= cfg.num_codebooks:
            raise CodecError(f"num_codebooks must be between 1 and {cfg.num_codebooks}, got {num_codebooks}")
        self.sample_rate, self.hop_samples = cfg.sample_rate, cfg.hop_samples
        self.num_codebooks = num_codebooks or cfg.num_codebooks
        self.codebook_size = cfg.codebook_size
        # Decoder reach, in code frames: the causal input conv (2), each block's left
        # kernel side, and one frame of iSTFT overlap on each side.
        left = 2 + sum(cfg.kernel_size - 1 - int(i < cfg.decoder_lookahead_frames) for i in range(cfg.decoder_layers))
        self.stream_context_frames = left + 1
        self.stream_lookahead_frames = cfg.decoder_lookahead_frames + 1

    @property
    def max_codebooks(self) -> int:
        return self.net.cfg.num_codebooks

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.net.encode(wav[:, 0], self.num_codebooks)

    def encoding_state_dict(self) -> dict[str, torch.Tensor]:
        """Encoder and codebooks only: a decoder fine-tune (configs/codec/tiny-decoder.yaml) keeps every code."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("net.decoder.")}

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net.decode(codes)[:, None]

    def _decode_posteriors(self, posteriors: torch.Tensor) -> torch.Tensor:
        return self.net.decode_posteriors(posteriors)[:, None]

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
        return save_net(self.net, out_dir, overwrite)


def save_net(net: TinyCodecNet, out_dir: str | os.PathLike, overwrite: bool = False,
             model_card: str | None = None) -> Path:
    """Write the folder atomically: files land in a temporary sibling that is renamed into place."""
    state = {k: v.detach().half().contiguous() if v.is_floating_point() else v.contiguous()
             for k, v in net.state_dict().items() if k.rsplit(".", 1)[-1] not in _TRAINING_BUFFERS}
    with atomic_folder(out_dir, overwrite) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump({"codec": CODEC_NAME, **net.cfg.to_dict()}, sort_keys=False))
        if model_card:
            (tmp / "README.md").write_text(model_card)
    return out_dir


def load_net(folder: Path) -> TinyCodecNet:
    meta = yaml.safe_load((folder / CONFIG_FILE).read_text())
    known = {f.name for f in fields(TinyCodecConfig)}
    unknown = set(meta) - known - {"codec"}
    if unknown:
        raise CodecError(f"{folder / CONFIG_FILE}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    net = TinyCodecNet(TinyCodecConfig(**{k: v for k, v in meta.items() if k in known}))
    if not (folder / WEIGHTS_FILE).is_file():
        raise CodecWeightsNotFound(f"{folder / WEIGHTS_FILE} is missing; export the codec with `s2s codec export`")
    state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k.rsplit(".", 1)[-1] not in _TRAINING_BUFFERS]
    if missing or unexpected:
        raise CodecError(f"{folder / WEIGHTS_FILE} does not match its config: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for codebook in net.quantizer.codebooks:  # training statistics were not saved: reset them deterministically
        codebook.initialized.fill_(True)
        codebook.embed_sum.copy_(codebook.embed)
        codebook.cluster_size.fill_(1.0)
    return net.eval()


def _is_tiny_folder(path: Path) -> bool:
    config = path / CONFIG_FILE
    if not (path.is_dir() and config.is_file()):
        return False
    try:
        return (yaml.safe_load(config.read_text()) or {}).get("codec") == CODEC_NAME
    except yaml.YAMLError:
        return False


def from_path(path: Path, num_codebooks: int | None = None, **overrides) -> TinyCodec | None:
    if not _is_tiny_folder(Path(path)):
        return None
    if overrides:
        raise CodecError(f"s2s-tiny takes only num_codebooks as an option, got {sorted(overrides)}")
    return TinyCodec(load_net(Path(path)), num_codebooks)


def from_pretrained(name: str, **overrides) -> TinyCodec:
    folder = PRETRAINED[name]
    if not (folder / WEIGHTS_FILE).is_file():
        raise CodecWeightsNotFound(f"{name}: {folder / WEIGHTS_FILE} is missing; reinstall s2s or train and export "
                                   f"one with `s2s fit --config configs/codec/tiny.yaml`")
    return from_path(folder, **overrides)
