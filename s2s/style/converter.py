"""Voice conversion through a content bottleneck: the words and timing of one recording, the voice of another.

Why this shape (the recognition-synthesis family of voice converters, e.g. PPG-VC, Sun et al. 2016; NANSY,
Choi et al. 2021): a recogniser's hidden states say *what* is said and *when*, a reference recording says
*who*, and a small network maps the two to the codec's latent, which the codec turns into tokens and audio:

    source wav -> content (the reasoner's frozen hearing, 25 Hz hidden states) -> bottleneck (a few channels,
               normalised per utterance)                                       -> [B, T, C]
    reference wav -> ReferenceEncoder (log-mels, convolutions, mean and std over time) -> voice vector [B, D]
    pitch word (low / normal / high) -> an embedding added to the voice vector
    content (stretched in time for slow / fast) + FiLM(voice) -> ConvNeXt blocks -> codec latent z [B, 64, F]
    z -> the codec's RVQ -> codes [B, K, F] -> the codec's decoder -> wav

It trains by *reconstruction*, never needing the same words in two voices: a recording's content is mapped
back to that recording's latent, with the voice taken from *another* recording of the same voice. The content
is read from a copy whose mel axis is warped by a random factor (which moves its formants and pitch, as NANSY
perturbs its input) and, where the corpus has them, from the same words, voice and rate rendered at another
pitch (`reply_audio_low/normal/high`, aligned within a few frames): the warp, the narrow bottleneck and the pitch swap
leave the voice nowhere but in the reference and the pitch nowhere but in the pitch word. Rate is the
content's timeline stretched (slow / fast, as FastSpeech scales durations). The speaker-ID model that scores
conversions (`s2s/style/speaker.py`) and the judge that hears them are not used here.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from s2s import audio
from s2s.codecs.tiny.model import ConvNeXtBlock
from s2s.files import atomic_folder, check_init_args

CONFIG_FILE, WEIGHTS_FILE, CONTENT_DIR = "config.yaml", "model.safetensors", "content"
SAMPLE_RATE = 16000
PITCHES = ("low", "normal", "high")
# slow / fast stretch the content's timeline by the corpus's own ratio of words a minute (s2s/data/synth.py).
RATE_STRETCH = {"slow": 170 / 120, "normal": 1.0, "fast": 170 / 240}
MIN_SOURCE_SAMPLES = 1600  # shorter sources are zero-padded to 0.1 s and the output cut back to their length
MIN_REFERENCE_SAMPLES = 8000  # half a second says little about a voice (s2s.style.prompt asks for a second)
PITCH_STEP = 15  # espeak-ng pitch units between a recording and its reference that count as lower or higher
# What the training module adds to a saved config (older folders hold them): read past.
TRAINING_KEYS = ("warp", "lr", "weight_decay", "warmup_steps")
DEFAULT_CONVERTER = Path(__file__).resolve().parents[1] / "assets" / "models" / "s2s-converter-tiny"


def masked_instance_norm(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, C] normalised per utterance and channel over its valid frames: a voice's overall colour
    (its mean and spread per channel) is taken out of the content, the frame-to-frame changes stay."""
    valid = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None])[..., None].to(x.dtype)
    count = valid.sum(1, keepdim=True).clamp(min=1)
    mean = (x * valid).sum(1, keepdim=True) / count
    std = (((x - mean) ** 2 * valid).sum(1, keepdim=True) / count).sqrt().clamp(min=1e-3)
    return (x - mean) / std * valid


class ReferenceEncoder(nn.Module):
    """wav [B, T] at 16 kHz (+ lengths) -> a voice vector [B, dim]: what stays the same over a recording."""

    def __init__(self, dim: int, channels: int = 192, n_mels: int = 80):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=n_mels)
        self.convs = nn.Sequential(
            nn.Conv1d(n_mels, channels, 5, padding=2), nn.GELU(),
            nn.Conv1d(channels, channels, 5, padding=4, dilation=2), nn.GELU(),
            nn.Conv1d(channels, channels, 5, padding=6, dilation=3), nn.GELU())
        self.project = nn.Linear(2 * channels, dim)

    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        with torch.autocast(wav.device.type, enabled=False):
            feats = (self.mel(wav.float()) + 1e-6).log()  # [B, M, F]
        frames = (num_samples // 160 + 1).clamp(max=feats.shape[-1])
        valid = (torch.arange(feats.shape[-1], device=wav.device)[None] < frames[:, None])[:, None].to(feats.dtype)
        gain = (feats * valid).sum((1, 2), keepdim=True) / (valid.sum((1, 2), keepdim=True) * feats.shape[1])
        x = self.convs(feats - gain) * valid  # loudness out: the spectrum's shape is the voice
        count = valid.sum(-1).clamp(min=1)
        mean = x.sum(-1) / count
        std = ((x - mean[..., None]).pow(2) * valid).sum(-1).div(count).clamp(min=1e-6).sqrt()
        return self.project(torch.cat([mean, std], -1))


class FiLMBlock(nn.Module):
    """A ConvNeXt block whose input is scaled and shifted by the voice vector (FiLM, Perez et al., 2018)."""

    def __init__(self, dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.film = nn.Linear(dim, 2 * dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.block = ConvNeXtBlock(dim, kernel_size, (kernel_size - 1) // 2, layer_scale)

    def forward(self, x: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:  # x [B, D, F], voice [B, D]
        scale, shift = self.film(voice)[..., None].chunk(2, dim=1)
        return self.block(x * (1 + scale) + shift)


class ConverterNet(nn.Module):
    """content [B, Tc, H] (+ lengths), reference wav, pitch ids, output frames -> codec latent z [B, latent, F]."""

    def __init__(self, content_dim: int, latent_dim: int, dim: int = 256, layers: int = 6, bottleneck: int = 32,
                 kernel_size: int = 7):
        super().__init__()
        self.squeeze = nn.Linear(content_dim, bottleneck)
        self.expand = nn.Linear(bottleneck, dim)
        self.reference = ReferenceEncoder(dim)
        self.pitch = nn.Embedding(len(PITCHES), dim)
        self.blocks = nn.ModuleList(FiLMBlock(dim, kernel_size, 1 / layers) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, latent_dim)

    def forward(self, content: torch.Tensor, content_lengths: torch.Tensor, reference: torch.Tensor,
                reference_samples: torch.Tensor, pitch: torch.Tensor, frames: int) -> torch.Tensor:
        x = masked_instance_norm(self.squeeze(content), content_lengths)
        x = F.interpolate(self.expand(x).transpose(1, 2), size=frames, mode="linear", align_corners=False)
        voice = self.reference(reference, reference_samples) + self.pitch(pitch)
        for block in self.blocks:
            x = block(x, voice)
        return self.head(self.norm(x.transpose(1, 2))).transpose(1, 2)


class VoiceConverter(nn.Module):
    """ConverterNet with the frozen content encoder in front and the frozen codec behind: `convert` one recording
    into another voice. Trained by `ConverterModule` (`s2s/style/converter_training.py`).

    `content_encoder`: a CTCRecognizer folder (default in the configs: the shipped reasoner's hearing);
    `codec`: the codec whose latent and tokens are predicted (s2s-tiny family: it needs `latent`);
    `num_codebooks`: how many of its codebooks a conversion's codes keep.
    """

    def __init__(self, content_encoder: str, codec: str = "s2s-tiny", dim: int = 256, layers: int = 6,
                 bottleneck: int = 32, kernel_size: int = 7, num_codebooks: int = 8):
        super().__init__()
        from s2s.asr.recognizer import CTCRecognizer
        from s2s.codecs import load_codec

        self.init_args = {"content_encoder": content_encoder, "codec": codec, "dim": dim, "layers": layers,
                          "bottleneck": bottleneck, "kernel_size": kernel_size, "num_codebooks": num_codebooks}
        if not Path(content_encoder).is_dir():
            raise FileNotFoundError(f"content_encoder folder not found: {content_encoder}; give a recogniser "
                                    "folder such as s2s/assets/models/s2s-reasoner-tiny/hearing")
        self.content_encoder = CTCRecognizer.from_pretrained(content_encoder).requires_grad_(False)
        tiny = load_codec(codec)
        if not hasattr(getattr(tiny, "net", None), "latent"):
            raise ValueError(f"codec {codec!r} has no latent to predict; the converter works with s2s-tiny codecs")
        self.codec = tiny.net.requires_grad_(False)
        self.sample_rate = tiny.sample_rate
        self.net = ConverterNet(self.content_encoder.net.config.dim, self.codec.cfg.latent_dim, dim, layers, bottleneck,
                                kernel_size)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def train(self, mode: bool = True):  # the content encoder and codec stay frozen in eval mode
        super().train(mode)
        self.content_encoder.eval()
        self.codec.eval()
        return self

    # ------------------------------------------------------------------ pieces
    @torch.no_grad()
    def content(self, wav: torch.Tensor, num_samples: torch.Tensor, warp: tuple[float, float] | None = None):
        """wav [B, T] at 16 kHz -> (hidden [B, Tc, H], lengths [B]) of the content encoder, its input mel axis
        warped by a random factor in `warp` per utterance when given."""
        from s2s.asr.features import warp_mel_axis

        feats, lengths = self.content_encoder.features(wav, num_samples)
        if warp is not None:
            feats = warp_mel_axis(feats, *warp)
        hidden, _, lengths = self.content_encoder.net(feats, lengths)
        return hidden.float(), lengths

    # ------------------------------------------------------------------ use
    @torch.no_grad()
    def convert_codes(self, source: torch.Tensor, source_rate: int, reference: torch.Tensor, reference_rate: int,
                      pitch: str = "normal", rate: str = "normal") -> torch.Tensor:
        """Codec codes [1, K, F] of `source`'s words in `reference`'s voice (waveforms [T] or [C, T])."""
        if pitch not in PITCHES or rate not in RATE_STRETCH:
            raise ValueError(f"pitch must be one of {', '.join(PITCHES)} and rate one of {', '.join(RATE_STRETCH)}; "
                             f"got pitch={pitch!r}, rate={rate!r}")
        self.eval()
        src = audio.prepare(audio.as_batch(source).float(), source_rate, SAMPLE_RATE)[:, 0].to(self.device)
        ref = audio.prepare(audio.as_batch(reference).float(), reference_rate, SAMPLE_RATE)[:, 0].to(self.device)
        if ref.shape[-1] < MIN_REFERENCE_SAMPLES:
            raise audio.AudioError(f"the voice reference is {ref.shape[-1] / SAMPLE_RATE:.2f} s long; give at least "
                                   f"{MIN_REFERENCE_SAMPLES / SAMPLE_RATE:g} s of the voice speaking")
        hop, stretch = self.codec.cfg.hop_samples, RATE_STRETCH[rate]
        frames = max(1, round(math.ceil(src.shape[-1] / hop) * stretch))
        src = F.pad(src, (0, max(0, MIN_SOURCE_SAMPLES - src.shape[-1])))  # a scrap is converted as a short clip
        content, lengths = self.content(src, torch.tensor([src.shape[-1]], device=self.device))
        z = self.net(content, lengths, ref, torch.tensor([ref.shape[-1]], device=self.device),
                     torch.tensor([PITCHES.index(pitch)], device=self.device),
                     round(math.ceil(src.shape[-1] / hop) * stretch))  # never fewer than `frames`
        return self.codec.quantizer.encode(z[..., :frames], self.init_args["num_codebooks"])

    @torch.no_grad()
    def convert(self, source: torch.Tensor, source_rate: int, reference: torch.Tensor, reference_rate: int,
                pitch: str = "normal", rate: str = "normal") -> torch.Tensor:
        """`source`'s words in `reference`'s voice, at `pitch` and `rate`: wav [1, T] at `self.sample_rate`."""
        return self.codec.decode(self.convert_codes(source, source_rate, reference, reference_rate, pitch, rate))

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        """The converter's own weights, its config and a copy of its content encoder (the codec is named)."""
        state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
                 for k, v in self.net.state_dict().items()}
        with atomic_folder(out_dir, overwrite) as tmp:
            save_file(state, str(tmp / WEIGHTS_FILE))
            self.content_encoder.save_pretrained(tmp / CONTENT_DIR, half=half)
            init_args = {**self.init_args, "content_encoder": CONTENT_DIR}  # its copy, inside the folder
            (tmp / CONFIG_FILE).write_text(yaml.safe_dump({"init_args": init_args}, sort_keys=False))
        return Path(out_dir)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> VoiceConverter:
        """The converter `save_pretrained` wrote, in eval mode."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved VoiceConverter: it needs {CONFIG_FILE} and "
                                    f"{WEIGHTS_FILE} (s2s export a converter checkpoint)")
        saved = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
        init_args = check_init_args(cls, saved.get("init_args", {}), folder / CONFIG_FILE, ignored=TRAINING_KEYS)
        init_args["content_encoder"] = str(folder / init_args.get("content_encoder", CONTENT_DIR))
        model = cls(**init_args)
        model.net.load_state_dict({k: v.float() for k, v in load_file(folder / WEIGHTS_FILE).items()})
        return model.eval()


def load_converter(converter=None) -> VoiceConverter:
    """A VoiceConverter: itself, a folder it was saved in, or None / "default" for the shipped one."""
    if isinstance(converter, VoiceConverter):
        return converter
    folder = DEFAULT_CONVERTER if converter in (None, "default") else Path(converter)
    if not folder.is_dir():
        raise FileNotFoundError(f"voice converter folder not found: {folder}; train one with "
                                "configs/style/converter.yaml and s2s export it")
    return VoiceConverter.from_pretrained(folder)
