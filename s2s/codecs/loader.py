"""`load_codec`: the one way to get a codec, by pretrained name or by local path.

Each backend module exposes three functions:
  PRETRAINED: dict of the names it answers to
  from_pretrained(name, **overrides) -> Codec   (local cache first, then download)
  from_path(path, **overrides) -> Codec | None  (None when the folder is not its format)
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from s2s.codecs.base import Codec, CodecError

# Backend modules, tried in this order when recognising a local path.
BACKENDS = ("s2s.codecs.tiny.codec", "s2s.codecs.encodec", "s2s.codecs.dac", "s2s.codecs.hf")


def _backends():
    for module_name in BACKENDS:
        yield importlib.import_module(module_name)


def available_codecs() -> list[str]:
    """Every pretrained name `load_codec` understands."""
    return sorted(name for backend in _backends() for name in backend.PRETRAINED)


def load_codec(name_or_path: str | os.PathLike, **overrides) -> Codec:
    """Load a codec from a pretrained name (see `available_codecs()`) or a saved folder/file.

    `overrides` are backend options such as `bandwidth=6.0` (encodec) or
    `num_codebooks=4` (any backend with residual codebooks).
    """
    try:
        return _load(name_or_path, **overrides)
    except TypeError as err:  # an option the backend does not take
        if "unexpected keyword argument" not in str(err):
            raise
        option = str(err).split("() ")[-1]
        raise CodecError(f"{name_or_path}: {option}; see the backend's options in README.md") from None


def _load(name_or_path: str | os.PathLike, **overrides) -> Codec:
    path = Path(name_or_path)
    if path.exists():
        for backend in _backends():
            codec = backend.from_path(path, **overrides)
            if codec is not None:
                return codec.eval()
        raise CodecError(f"{path} is not a codec checkpoint s2s recognises: expected an s2s-tiny folder "
                         "(config.yaml + model.safetensors), an encodec .th, a DAC .pth or a transformers folder")
    name = str(name_or_path)
    for backend in _backends():
        if name in backend.PRETRAINED:
            return backend.from_pretrained(name, **overrides).eval()
    raise CodecError(f"unknown codec {name!r}; choose one of {', '.join(available_codecs())} "
                     "or pass the path of a saved codec")
