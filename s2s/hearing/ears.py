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

Two ears can be combined two ways. `FallbackHearing` asks them in turn:
the first ear whose confidence reaches its threshold is believed; when none
is sure, the first ear is. `CrossCheckedHearing` (the shipped model's) lets
every ear score every ear's hypotheses (Whisper's three best beams, the CTC
ear's transcript) and believes the one with the highest weighted sum:
Whisper hears people and natural voices well, and is lost on the formant
voices of espeak-ng, where the CTC ear, trained on them, is right; each
tells which of the transcripts is likelier far better than either's
confidence in its own. Every number heard in 200 seed-3 test questions
(`benchmarks/hearing.py`), in turn against cross-checked (weights [1, 1.5]):
espeak-ng held-out voices 148 and 169; piper 182 and 193; festival's
held-out voices 162 and 179. The weights and the thresholds were chosen on
training-engine questions (espeak-ng training voices and festival's kal)
and validation sets, never on a held-out engine's test questions. In a
model's config:

    hearing: whisper-tiny.en              # Whisper alone
    hearing: hearing                      # a CTC ear folder alone
    hearing: [whisper-tiny.en, hearing]   # Whisper where it is sure, else the CTC ear where it is, else Whisper
    hearing_confidence: [0.75, 0.93]      # each ear's threshold (one number: the same for every ear)
    hearing_cross_check: [1.0, 1.5]       # instead: the ears check each other, the CTC ear's score weighing 1.5
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn as nn

from s2s.hearing.heard import Heard, Hearing, Hypothesis, text_question, to_16k
from s2s.hearing.normalise import normalise_question

# Whisper's beams as an ear. Measured cross-checked on 240 training-engine and validation questions (60 each of
# dev-g-espeak, dev-g-festival, val-piper, val-test200), every number heard: 5 beams 216, 3 beams 216, 2 beams
# 215, greedy 208 (piper 57 -> 50), hearing in 331, 305, 270 and 196 ms at the median; on 200 fresh questions in
# held-out phrasings (seed 6), 5 beams 107, 3 beams 110, 2 beams 101: Whisper's other beams spell openings.
BEAMS = 3


class WhisperHearing(nn.Module):
    """Pretrained Whisper as an ear: its normalised transcript, cut into the reasoner's text tokens."""

    dim = 0  # no hidden states for the adapter: the transcript is all it gives

    def __init__(self, spec: str, tokenizer, beams: int = BEAMS):
        super().__init__()
        from s2s.hearing.whisper import WhisperEar

        self.spec, self.tokenizer = str(spec), tokenizer
        self.ear = WhisperEar(spec, beam_size=beams)

    def listen(self, wav: torch.Tensor, sample_rate: int) -> Heard:
        """One waveform [C, T] or [T] at any rate -> Heard."""
        return self.hearing(wav, sample_rate).heard

    def hearing(self, wav: torch.Tensor, sample_rate: int, n_best: int = 1) -> Hearing:
        """`listen`, with up to `n_best` of Whisper's beams, and the log-likelihood it gives any other
        transcript of the same audio."""
        hypotheses, log_likelihood = self.ear.hear(to_16k(wav, sample_rate), n_best)
        offered = []
        for said, score in hypotheses:
            text = normalise_question(said)
            confidence = math.exp(score) if said else 0.0
            heard = Heard(text_question(text, self.tokenizer), text, confidence, "whisper")
            offered.append(Hypothesis(heard, said, score))
        return Hearing(offered, log_likelihood)

    def save(self, folder: Path, half: bool = False) -> str:
        """What a model folder's config names this ear by (the weights stay where they are installed)."""
        return self.spec


class SeveralEars(nn.Module):
    """A list of ears heard as one (what `FallbackHearing` and `CrossCheckedHearing` share): at least two, each
    CTC ear in a folder of its own name in the model's folder, saved ear by ear."""

    def __init__(self, ears: list[nn.Module]):
        super().__init__()
        if len(ears) < 2:
            raise ValueError("a list of ears needs at least two, such as [whisper-tiny.en, hearing]")
        names = [ear.name for ear in ears if hasattr(ear, "recognizer")]
        if len(set(names)) < len(names):
            raise ValueError(f"two CTC ears would be saved in one folder ({', '.join(names)}): keep each in its own "
                             "folder of the model's folder, such as [whisper-tiny.en, hearing, hearing-whisper]")
        self.ears = nn.ModuleList(ears)

    @property
    def dim(self) -> int:
        return 0 if any(not ear.dim for ear in self.ears) else self.ears[0].dim

    def save(self, folder: Path, half: bool = False) -> list[str]:
        return [ear.save(folder, half) for ear in self.ears]


class FallbackHearing(SeveralEars):
    """Ears asked in turn: the first whose confidence reaches its threshold is believed; when none does, the
    first ear is. `confidence`: one threshold per ear, or one for all.

    `parallel=False` (the default) asks an ear only when the ears before it were unsure, so a confident first
    ear has the CPU to itself; `parallel=True` asks every ear at once in threads (the answer is the same; on
    two cores the ears then share them, and the answer waits for the slowest)."""

    def __init__(self, ears: list[nn.Module], confidence: float | list[float], parallel: bool = False):
        super().__init__(ears)
        thresholds = list(confidence) if isinstance(confidence, (list, tuple)) else [confidence] * len(ears)
        if len(thresholds) != len(ears) or not all(0 <= t <= 1 for t in thresholds):
            raise ValueError(f"hearing_confidence gives each of the {len(ears)} ears a probability in [0, 1], "
                             f"got {confidence}")
        self.thresholds, self.parallel = thresholds, parallel

    def first_sure(self, heards: list[Heard]) -> int | None:
        """Which ear, of what each heard (in the order of the ears), is the first sure of itself; None: none is."""
        return next((i for i, (heard, threshold) in enumerate(zip(heards, self.thresholds))
                     if heard.confidence >= threshold), None)

    def choose(self, heards: list[Heard]) -> Heard:
        """What each ear heard (in the order of the ears) -> the Heard believed."""
        sure = self.first_sure(heards)
        return heards[0 if sure is None else sure]

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
            return self.choose([hearing.result() for hearing in hearings])


class CrossCheckedHearing(SeveralEars):
    """Ears that check each other: every ear hears the question and offers its hypotheses (Whisper its best
    `n_best` beams, a CTC ear its transcript), each scored by every ear (its mean log-likelihood per label:
    the ear's own score for its own hypotheses, `Hearing.log_likelihood` for the others'), and the hypothesis
    with the highest weighted sum of scores is believed. An ear unsure of its words can still tell that
    another's are likelier, which a threshold on its own confidence cannot: Whisper that dropped half a question
    in an espeak-ng voice it finds strange scores the CTC ear's whole transcript well above the CTC ear's score
    of its own; the CTC ear, lost in a natural voice, still tells which of Whisper's beams has the numbers it
    heard. Ties, audio an ear cannot score (Whisper beyond its 30 s window) and audio in which no ear heard
    words go to the first ear. Every ear always hears, so by default they hear at once, in threads (CTranslate2
    and torch leave the GIL): the CTC ear runs while Whisper's beam search, which keeps two cores half idle,
    decodes (measured on piper questions, 2 cores: 45 ms sooner at the median); `parallel=False`, one after
    the other."""

    def __init__(self, ears: list[nn.Module], weights: list[float], n_best: int = BEAMS, parallel: bool = True):
        super().__init__(ears)
        if not isinstance(weights, (list, tuple)) or len(weights) != len(ears) or \
                not all(isinstance(w, (int, float)) and w > 0 for w in weights):
            raise ValueError(f"hearing_cross_check gives each of the {len(ears)} ears a positive weight, "
                             f"got {weights}")
        self.weights, self.n_best, self.parallel = [float(w) for w in weights], n_best, parallel

    def listen(self, wav: torch.Tensor, sample_rate: int) -> Heard:
        if not self.parallel:
            return self.choose([ear.hearing(wav, sample_rate, self.n_best) for ear in self.ears])
        with ThreadPoolExecutor(max_workers=len(self.ears)) as pool:  # as FallbackHearing's parallel
            return self.choose(list(pool.map(lambda ear: ear.hearing(wav, sample_rate, self.n_best), self.ears)))

    def choose(self, hearings: list[Hearing]) -> Heard:
        """What each ear heard (in the order of the ears) -> the Heard believed."""
        best, best_score = hearings[0].heard, float("-inf")
        for j, hearing in enumerate(hearings):
            for hypothesis in hearing.hypotheses:
                if not hypothesis.heard.text:  # nothing heard offers nothing to check
                    continue
                score = self.weights[j] * hypothesis.score
                for i, judge in enumerate(hearings):
                    if i != j:
                        scored = judge.log_likelihood(hypothesis.heard.text)
                        if scored is None:
                            return hearings[0].heard
                        score += self.weights[i] * scored
                if score > best_score:
                    best, best_score = hypothesis.heard, score
        return best


def load_hearing(spec, tokenizer, confidence: float | list[float] = 0.93, folder: Path | None = None,
                 cross_check: list[float] | None = None) -> nn.Module:
    """The ear `spec` names: a Whisper name or folder, a CTC ear folder, or a list of them: asked in turn
    (FallbackHearing, by `confidence`) or, with one weight per ear in `cross_check`, checking each other
    (CrossCheckedHearing). Relative folders are looked for in `folder` (a model folder) first."""
    from s2s.asr.whisper import is_whisper_name

    if isinstance(spec, (list, tuple)):
        ears = [load_hearing(s, tokenizer, folder=folder) for s in spec]
        ctc = [(ear, s) for ear, s in zip(ears, spec) if hasattr(ear, "recognizer")]
        if len(ctc) > 1:  # each keeps its folder's name in the model's folder
            for ear, s in ctc:
                ear.name = Path(s).name
        return FallbackHearing(ears, confidence) if cross_check is None else CrossCheckedHearing(ears, cross_check)
    if cross_check is not None:
        raise ValueError(f"hearing_cross_check weighs a list of ears against each other; hearing {spec!r} is one "
                         "ear: list two or more, or set hearing_cross_check: null")
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
