"""Descript Audio Codec (the `descript-audio-codec` package, `dac`) as an s2s `Codec`.

Three pretrained 8 kbps models, mono, 1024-entry codebooks:

  dac_16khz  hop 320 (50 frames/s),  12 codebooks
  dac_24khz  hop 320 (75 frames/s),  32 codebooks
  dac_44khz  hop 512 (~86 frames/s),  9 codebooks   ("dac" is this one)

`num_codebooks` keeps the first K residual codebooks (default: all).

Weights are the package's own files (`{"state_dict", "metadata": {"kwargs"}}`,
as `DAC.save(path, package=False)` writes them) in the package's own cache,
`~/.cache/descript/dac/weights_{type}_{bitrate}_{tag}.pth`. They are read with
`weights_only=True` and `dac.DAC(**kwargs)` is built here, so no pickled code
ever runs (the package's own `DAC.load` unpickles whatever the file holds).
"""
from __future__ import annotations

import inspect
import os
import zipfile
from pathlib import Path

import torch
from dac.model import DAC
from dac.utils import __MODEL_LATEST_TAGS__ as LATEST_TAGS
from dac.utils import __MODEL_URLS__ as MODEL_URLS
from torch.nn import functional as F

from s2s.codecs.base import Codec, CodecError, CodecWeightsNotFound, offline

# Pretrained name -> model type in the package's URL table; all are its 8 kbps releases.
PRETRAINED = {"dac": "44khz", "dac_16khz": "16khz", "dac_24khz": "24khz", "dac_44khz": "44khz"}
BITRATE = "8kbps"


class DACCodec(Codec):
    """A `dac.DAC` behind the s2s interface."""

    def __init__(self, model: DAC, name: str, num_codebooks: int | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.sample_rate = int(model.sample_rate)
        self.hop_samples = int(model.hop_length)
        self.codebook_size = int(model.codebook_size)
        total = int(model.n_codebooks)
        self.num_codebooks = total if num_codebooks is None else num_codebooks
        if not 1 <= self.num_codebooks <= total:
            raise CodecError(f"{name} encodes with num_codebooks in [1, {total}], got {num_codebooks}")
        # The decoder is non-causal: a sample needs `lookahead` later frames and
        # `context` earlier ones (computed from its layers; the tests measure it).
        reach = receptive_field_frames(model.decoder, self.hop_samples)
        self.stream_lookahead_frames, self.stream_context_frames = reach

    @property
    def max_codebooks(self) -> int:
        """Decode accepts any prefix of the model's codebooks."""
        return int(self.model.n_codebooks)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, 1, T] -> codes [B, K, ceil(T / hop_samples)] (the model right-pads to a whole hop)."""
        wav = self.model.preprocess(wav, self.sample_rate)
        _, codes, *_ = self.model.encode(wav, n_quantizers=self.num_codebooks)
        return codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, F] -> wav [B, 1, F * hop_samples]."""
        z, _, _ = self.model.quantizer.from_codes(codes)
        wav = self.model.decoder(z)
        # Odd upsampling strides (5 in the 16/24 kHz models) lose a few samples at the end.
        return F.pad(wav, (0, codes.shape[-1] * self.hop_samples - wav.shape[-1]))


def receptive_field_frames(decoder: torch.nn.Module, hop_samples: int) -> tuple[int, int]:
    """(later frames, earlier frames) that a sample from a DAC-style decoder depends on.

    Follows the span of output samples one code frame reaches, layer by layer:
    a conv (kernel k, dilation d, padding p) moves [lo, hi] to [lo + p - (k-1)d, hi + p];
    a transposed conv (stride s) to [lo*s - p, hi*s - p + k - 1]. Residual adds
    stay inside that span because the paddings are symmetric.
    """
    lo, hi = 0, 0  # span of samples, relative to the frame's first, that one frame changes
    for layer in decoder.modules():  # registration order is forward order in both DAC decoders
        if isinstance(layer, torch.nn.ConvTranspose1d):
            kernel, stride, padding = layer.kernel_size[0], layer.stride[0], layer.padding[0]
            lo, hi = lo * stride - padding, hi * stride - padding + kernel - 1
        elif isinstance(layer, torch.nn.Conv1d):
            kernel, dilation, padding = layer.kernel_size[0], layer.dilation[0], layer.padding[0]
            lo, hi = lo + padding - (kernel - 1) * dilation, hi + padding
    return (hop_samples - 1 - lo) // hop_samples, hi // hop_samples


# --------------------------------------------------------------------------- loading
def read_checkpoint(file: Path) -> dict | None:
    """The package-format dict in `file` (loaded with weights_only=True), or None if it is not one."""
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # torch raises several error types for other formats, packages or unsafe pickles
        return None
    is_dac = (isinstance(checkpoint, dict) and "state_dict" in checkpoint
              and isinstance(checkpoint.get("metadata"), dict) and "kwargs" in checkpoint["metadata"])
    return checkpoint if is_dac else None


def build(checkpoint: dict, name: str, **overrides) -> DACCodec:
    """`dac.DAC(**kwargs)` from the checkpoint's own kwargs, filled with its weights."""
    known = inspect.signature(DAC).parameters
    kwargs = {key: value for key, value in checkpoint["metadata"]["kwargs"].items() if key in known}
    model = DAC(**kwargs)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CodecError(f"{name}: the weights do not fit the file's own DAC kwargs ({first})") from None
    return DACCodec(model, name, **overrides)



def checkpoint_path(name: str) -> Path:
    """The package's cached weights for `name`, downloading them there if allowed."""
    model_type = PRETRAINED[name]
    tag = LATEST_TAGS[(model_type, BITRATE)]
    url = MODEL_URLS[(model_type, tag, BITRATE)]
    file = Path.home() / ".cache" / "descript" / "dac" / f"weights_{model_type}_{BITRATE}_{tag}.pth"
    if file.is_file():
        return file
    missing = CodecWeightsNotFound(f"{name} weights not found: download {url} and save it as {file.name} "
                                   f"in {file.parent} (or pass the file's path to load_codec)")
    if offline():
        raise missing
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(file), progress=True)
    except Exception:  # no network or an HTTP error: the user's fix is the same
        raise missing from None
    return file


def from_pretrained(name: str, **overrides) -> DACCodec:
    """Load `dac`, `dac_16khz`, `dac_24khz` or `dac_44khz`; overrides: `num_codebooks`."""
    file = checkpoint_path(name)
    checkpoint = read_checkpoint(file)
    if checkpoint is None:
        raise CodecError(f"{file} is not a DAC weights file; delete it so that it is downloaded again")
    return build(checkpoint, name, **overrides)


def from_path(path: str | os.PathLike, **overrides) -> DACCodec | None:
    """A DAC weights .pth (as `DAC.save(path, package=False)` writes), or a folder holding exactly one."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.pth"))
        if len(files) != 1:
            return None
        path = files[0]
    if path.suffix != ".pth" or not path.is_file():
        return None
    checkpoint = read_checkpoint(path)
    if checkpoint is None and is_dac_package(path):
        raise CodecError(f"{path} is a DAC torch.package, whose loading runs pickled code; "
                         "re-save it as weights with DAC.save(path, package=False)")
    return None if checkpoint is None else build(checkpoint, path.stem, **overrides)


def is_dac_package(file: Path) -> bool:
    """Whether `file` is what `DAC.save(path)` writes by default (package=True)."""
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return any(member.endswith("/DAC/DAC.pth") for member in archive.namelist())
