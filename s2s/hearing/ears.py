"""The model's ears: one class per way of hearing, and `load_hearing`, the one way to build them.

Every ear turns a waveform into `Heard`: the vectors' ids the reasoner reads at
its `<heard>` ids (a `HeardQuestion`), the question as text, and how sure
the ear is. Two ears ship:

- `CTCHearing` (`s2s/hearing/ctc.py`): our own CTC recogniser, trained on the
  corpus's espeak-ng voices on a CPU. Near perfect on those,
  lost on voices it never heard;
- `WhisperHearing`: pretrained Whisper tiny.en, which has heard people, and
  writes the question as text that `normalise_question` puts into the
  reasoner's written form (chain of modality: what was heard, then the thought).

`FallbackHearing` asks them in turn: the first ear whose confidence reaches
its threshold is believed; when none is sure, the first ear is. Whisper first
(believed at 0.75), then our CTC ear (at 0.93): Whisper hears people and
natural voices surely, and is unsure exactly on the formant voices of
espeak-ng, where the CTC ear, trained on them, is sure and right. The two
thresholds were chosen on training-engine questions (espeak-ng training
voices and festival's kal, `s2s data synth --split train --seed 7`), never
on a held-out engine. In a model's config:

    hearing: whisper-tiny.en              # Whisper alone
    hearing: hearing                      # a CTC ear folder alone
    hearing: [whisper-tiny.en, hearing]   # Whisper where it is sure, else the CTC ear where it is, else Whisper
    hearing_confidence: [0.75, 0.93]      # each ear's threshold (one number: the same for every ear)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn as nn

from s2s.hearing.heard import Heard, text_question, to_16k


class WhisperHearing(nn.Module):
    """Pretrained Whisper as an ear: its normalised transcript, cut into the reasoner's text tokens."""

    dim = 0  # no hidden states for the adapter: the transcript is all it gives

    def __init__(self, spec: str, tokenizer):
        super().__init__()
        from s2s.hearing.whisper import WhisperEar

        self.spec, self.tokenizer = str(spec), tokenizer
        self.ear = WhisperEar(spec)

    def listen(self, wav: torch.Tensor, sample_rate: int) -> Heard:
        """One waveform [C, T] or [T] at any rate -> Heard."""
        text, confidence, _ = self.ear.listen(to_16k(wav, sample_rate))
        return Heard(text_question(text, self.tokenizer), text, confidence, "whisper")

    def save(self, folder: Path, half: bool = False) -> str:
        """What a model folder's config names this ear by (the weights stay where they are installed)."""
        return self.spec


class FallbackHearing(nn.Module):
    """Ears asked in turn: the first whose confidence reaches its threshold is believed; when none does, the
    first ear is. `confidence`: one threshold per ear, or one for all.

    `parallel=False` (the default) asks an ear only when the ears before it were unsure, so a confident first
    ear has the CPU to itself; `parallel=True` asks every ear at once in threads (the answer is the same; on
    two cores the ears then share them, and the answer waits for the slowest)."""

    def __init__(self, ears: list[nn.Module], confidence: float | list[float], parallel: bool = False):
        super().__init__()
        if len(ears) < 2:
            raise ValueError("a list of ears needs at least two, such as [whisper-tiny.en, hearing]")
        if sum(hasattr(ear, "recognizer") for ear in ears) > 1:
            raise ValueError("a model keeps one CTC ear in its folder: list at most one CTC ear folder")
        thresholds = list(confidence) if isinstance(confidence, (list, tuple)) else [confidence] * len(ears)
        if len(thresholds) != len(ears) or not all(0 <= t <= 1 for t in thresholds):
            raise ValueError(f"hearing_confidence gives each of the {len(ears)} ears a probability in [0, 1], "
                             f"got {confidence}")
        self.ears, self.thresholds, self.parallel = nn.ModuleList(ears), thresholds, parallel

    @property
    def dim(self) -> int:
        return 0 if any(not ear.dim for ear in self.ears) else self.ears[0].dim

    def listen(self, wav: torch.Tensor, sample_rate: int) -> Heard:
        if not self.parallel:
            first = None
            for ear, threshold in zip(self.ears, self.thresholds):
                heard = ear.listen(wav, sample_rate)
                if heard.confidence >= threshold:
                    return heard
                first = first or heard
            return first
        # Every ear listens at once, each in its own thread (CTranslate2 and torch leave the GIL while they
        # compute): the answer waits for the slowest ear, not for the sum of them.
        with ThreadPoolExecutor(max_workers=len(self.ears)) as pool:
            hearings = [pool.submit(ear.listen, wav, sample_rate) for ear in self.ears]
            for hearing, threshold in zip(hearings, self.thresholds):
                if hearing.result().confidence >= threshold:
                    return hearing.result()
        return hearings[0].result()

    def save(self, folder: Path, half: bool = False) -> list[str]:
        return [ear.save(folder, half) for ear in self.ears]


def load_hearing(spec, tokenizer, confidence: float | list[float] = 0.93, folder: Path | None = None) -> nn.Module:
    """The ear `spec` names: a Whisper name or folder, a CTC ear folder, or a list of them (FallbackHearing).
    Relative folders are looked for in `folder` (a model folder) first."""
    from s2s.hearing.whisper import is_whisper_name

    if isinstance(spec, (list, tuple)):
        return FallbackHearing([load_hearing(s, tokenizer, folder=folder) for s in spec], confidence)
    spec = str(spec)
    if folder is not None and (Path(folder) / spec).exists():
        spec = str(Path(folder) / spec)
    if is_whisper_name(spec):
        return WhisperHearing(spec, tokenizer)
    from s2s.asr.recognizer import CTCRecognizer
    from s2s.hearing.ctc import CTCHearing

    if not Path(spec).is_dir():
        raise FileNotFoundError(f"hearing {spec!r} is neither a Whisper model (whisper-tiny.en, a CTranslate2 "
                                "folder) nor a CTC ear folder (s2s export of configs/asr/*.yaml)")
    return CTCHearing(CTCRecognizer.from_pretrained(spec), tokenizer)
