"""Codec tokenizers: waveform <-> discrete codes [B, K, F], one interface for every backend."""
from s2s.codecs.base import STREAM_TOLERANCE, Codec, CodecError, CodecWeightsNotFound, DecodeStream
from s2s.codecs.loader import available_codecs, load_codec

__all__ = ["Codec", "CodecError", "CodecWeightsNotFound", "DecodeStream", "STREAM_TOLERANCE",
           "available_codecs", "load_codec"]
