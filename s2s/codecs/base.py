"""The one interface every codec backend implements.

A codec turns a waveform into a grid of discrete codes and back:

    encode(wav [B, C, T] at any rate) -> codes [B, K, F]   (K codebooks, F frames)
    decode(codes [B, K, F])           -> wav   [B, 1, F * hop_samples] at codec rate

Backends implement only `_encode` (already checked, resampled, down-mixed
input) and `_decode` (checked codes). Checking lives here, once.

Streaming decode (one idea, moshi style): `with codec.streaming(batch_size):`
opens a `DecodeStream`; `decode_step(codes)` takes a few frames and returns
the samples that are final; `flush()` returns the rest. Each step decodes a
window of `stream_context_frames` past frames plus the new ones and emits
only samples at least `stream_lookahead_frames` behind the newest frame, so a
non-causal decoder still matches its full decode (see `STREAM_TOLERANCE`).
"""
from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2s import audio

# Streaming output matches the full decode to this max absolute difference when
# the context covers the decoder's receptive field (tested per backend).
STREAM_TOLERANCE = 1e-4


def offline() -> bool:
    """True when the network must not be tried (S2S_OFFLINE=1, or the Hugging Face flag)."""
    return os.environ.get("S2S_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


class CodecError(ValueError):
    """Bad codes or a bad codec request: the message says what to do."""


class CodecWeightsNotFound(FileNotFoundError):
    """Pretrained weights are neither local nor downloadable (e.g. offline)."""


@dataclass
class DecodeStream:
    """State of one streaming decode: codes kept for context and what was emitted."""

    batch_size: int
    codes: torch.Tensor  # [B, K, F_kept] the frames still needed for context
    first_frame: int = 0  # absolute index of codes[..., 0]
    emitted_frames: int = 0  # frames whose samples have been returned
    posteriors: torch.Tensor | None = None  # [B, K, F_kept, C] beside codes, once any frame came with them


def certain(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """codes [...] -> posteriors [..., C] certain of each code (one-hot): how frames fed without posteriors count."""
    return F.one_hot(codes.long(), codebook_size).float()


class Codec(nn.Module):
    """Base class: properties, input checks and streaming shared by all backends."""

    name: str = "codec"
    sample_rate: int  # Hz of decoded audio (and of the encoder's input)
    hop_samples: int  # samples per code frame
    num_codebooks: int  # K, codebooks produced by encode
    codebook_size: int  # entries per codebook
    channels: int = 1  # channels the encoder expects (input is down-mixed to this)
    encode_chunk_seconds: float = 60.0  # longer input is encoded in chunks of this length (bounded memory)
    stream_context_frames: int = 32  # past frames re-decoded at each streaming step
    stream_lookahead_frames: int = 2  # frames a sample waits for before it is final
    decodes_posteriors: bool = False  # `decode_step` takes code posteriors (`_decode_posteriors`)

    def __init__(self) -> None:
        super().__init__()
        self._stream: DecodeStream | None = None

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.hop_samples

    @property
    def bitrate(self) -> float:
        """Bits per second of the code stream."""
        return self.frame_rate * self.num_codebooks * (self.codebook_size - 1).bit_length()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encoding_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights that decide the codes (all of them unless a backend knows better)."""
        return self.state_dict()

    def fingerprint(self) -> str:
        """A hash of what decides the codes: name, rates, codebooks and the weights that encode.

        Token caches are keyed by it, so a retrained or reconfigured codec never
        reads tokens another codec wrote, while a codec whose decoder alone was
        retrained keeps reading its caches.
        """
        digest = hashlib.sha256(f"{self.name}|{self.sample_rate}|{self.hop_samples}|{self.num_codebooks}|"
                                f"{self.codebook_size}|{self.channels}".encode())
        for key, tensor in sorted(self.encoding_state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    # ----------------------------------------------------------------- encode / decode
    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """wav [B, C, T] at `sample_rate` Hz -> codes LongTensor [B, K, F].

        Input longer than `encode_chunk_seconds` is encoded a chunk at a time (each a whole number of frames),
        so the network's activations stay bounded however long the audio; the codes are concatenated.
        """
        wav = audio.prepare(wav, sample_rate, self.sample_rate, self.channels)
        chunk = max(1, round(self.encode_chunk_seconds * self.frame_rate)) * self.hop_samples
        if wav.shape[-1] <= chunk:
            return self._encode(wav.to(self.device)).long()
        return torch.cat([self._encode(piece.to(self.device)).long() for piece in wav.split(chunk, dim=-1)], dim=-1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, F] -> wav [B, 1, F * hop_samples] at `self.sample_rate`.

        More than `encode_chunk_seconds` of codes go through the streaming decoder a chunk at a time (its
        output matches the whole decode within the stated tolerance), so memory stays bounded here too.
        """
        self._check_codes(codes)
        chunk = max(1, round(self.encode_chunk_seconds * self.frame_rate))
        if codes.shape[-1] <= chunk or self._stream is not None:
            return self._decode(codes.to(self.device).long()).float()
        with self.streaming(codes.shape[0]):
            pieces = [self.decode_step(piece) for piece in codes.split(chunk, dim=-1)]
            pieces.append(self.flush())
        return torch.cat(pieces, dim=-1).float()

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode_posteriors(self, posteriors: torch.Tensor) -> torch.Tensor:
        """posteriors [B, K, F, C] -> wav [B, 1, F * hop_samples]: each codebook's expected entry decoded."""
        raise NotImplementedError

    def _check_codes(self, codes: torch.Tensor) -> None:
        if not isinstance(codes, torch.Tensor) or codes.dim() != 3:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise CodecError(f"expected codes of shape [B, K, F], got {shape}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise CodecError(f"codes must be integer indices, got dtype {codes.dtype}")
        if codes.shape[0] == 0 or codes.shape[2] == 0:
            raise CodecError(f"codes are empty (shape {tuple(codes.shape)}); encode at least one frame")
        if not 1 <= codes.shape[1] <= self.max_codebooks:
            raise CodecError(f"{self.name} decodes 1 to {self.max_codebooks} codebooks, got K={codes.shape[1]}")
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= self.codebook_size:
            raise CodecError(f"code values must lie in [0, {self.codebook_size}), got range [{low}, {high}]")

    @property
    def max_codebooks(self) -> int:
        """Most codebooks `decode` accepts (backends with variable bitrate override)."""
        return self.num_codebooks

    # ---------------------------------------------------------------------- streaming
    @contextmanager
    def streaming(self, batch_size: int = 1):
        """Open a streaming decode for `batch_size` items; closed on exit."""
        empty = torch.zeros(batch_size, self.num_codebooks, 0, dtype=torch.long, device=self.device)
        self._stream = DecodeStream(batch_size=batch_size, codes=empty)
        try:
            yield self._stream
        finally:
            self._stream = None

    @torch.inference_mode()
    def decode_step(self, codes: torch.Tensor, posteriors: torch.Tensor | None = None) -> torch.Tensor:
        """Feed codes [B, K, f] (f >= 0 new frames); return the samples now final [B, 1, t].

        `posteriors` [B, K, f, C] (backends with `decodes_posteriors`): each code's probabilities, as a model
        that chose the codes gave them. The stream then decodes the expected entry of each codebook instead of
        the chosen one, which is clearer where the model was unsure (several codes each likely, the chosen
        one a guess); frames fed without posteriors count as certain of their codes."""
        state = self._require_stream()
        if codes.shape[-1] > 0:
            self._check_codes(codes)
            if codes.shape[0] != state.batch_size:
                raise CodecError(f"stream opened for batch {state.batch_size}, got codes for batch {codes.shape[0]}")
            if state.codes.shape[-1] == 0 and state.first_frame == 0:
                state.codes = state.codes[:, : codes.shape[1]]
            codes = codes.to(self.device).long()
            if posteriors is not None or state.posteriors is not None:
                state.posteriors = self._stream_posteriors(state, codes, posteriors)
            state.codes = torch.cat([state.codes, codes], dim=-1)
        total = state.first_frame + state.codes.shape[-1]
        return self._emit(state, total - self.stream_lookahead_frames)

    def _stream_posteriors(self, state: DecodeStream, codes: torch.Tensor,
                           posteriors: torch.Tensor | None) -> torch.Tensor:
        """The stream's posteriors with those of `codes` added: as given, or certain of each code."""
        if not self.decodes_posteriors:
            raise CodecError(f"{self.name} decodes codes only, not their posteriors: feed decode_step codes alone")
        if posteriors is None:
            posteriors = certain(codes, self.codebook_size)
        elif posteriors.shape != (*codes.shape, self.codebook_size):
            raise CodecError(f"posteriors must be [B, K, f, C] = {[*codes.shape, self.codebook_size]} for codes of "
                             f"shape {list(codes.shape)}, got {list(posteriors.shape)}")
        before = state.posteriors if state.posteriors is not None else certain(state.codes, self.codebook_size)
        return torch.cat([before, posteriors.to(self.device).float()], dim=2)

    @torch.inference_mode()
    def flush(self) -> torch.Tensor:
        """Return the samples held back for lookahead; the stream can then be closed."""
        state = self._require_stream()
        return self._emit(state, state.first_frame + state.codes.shape[-1])

    def _emit(self, state: DecodeStream, ready_frames: int) -> torch.Tensor:
        if ready_frames <= state.emitted_frames:
            return torch.zeros(state.batch_size, 1, 0, device=self.device)
        start = max(state.first_frame, state.emitted_frames - self.stream_context_frames)
        window = state.codes[..., start - state.first_frame :]
        if state.posteriors is not None:
            wav = self._decode_posteriors(state.posteriors[:, :, start - state.first_frame :])
        else:
            wav = self._decode(window)
        begin = (state.emitted_frames - start) * self.hop_samples
        end = (ready_frames - start) * self.hop_samples
        out = wav[..., begin:end].float()
        state.emitted_frames = ready_frames
        # Keep only the context the next window needs, so memory stays bounded.
        keep_from = max(state.first_frame, ready_frames - self.stream_context_frames)
        state.codes = state.codes[..., keep_from - state.first_frame :]
        if state.posteriors is not None:
            state.posteriors = state.posteriors[:, :, keep_from - state.first_frame :]
        state.first_frame = keep_from
        return out

    def _require_stream(self) -> DecodeStream:
        if self._stream is None:
            raise CodecError("no open stream: call decode_step inside `with codec.streaming(batch_size):`")
        return self._stream

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, sample_rate={self.sample_rate}, frame_rate={self.frame_rate:g}, "
                f"num_codebooks={self.num_codebooks}, codebook_size={self.codebook_size}")
