"""Pretrained Whisper as an ear: its transcript with its best beams, and its score of any other.

OpenAI Whisper was trained on 680,000 hours of people, so it hears voices our
corpus never had. Its weights and its encoder pass are `s2s/asr/whisper.py`'s
(found offline, shared by every ear). The decoder is prompted with a short
question in digits, operators and a clock time, so that it writes numbers as
digits ("21 + 4", "9:45"), as the reasoner reads them.
"""
from __future__ import annotations

import numpy as np
import torch

from s2s.asr.whisper import SAMPLE_RATE, default_threads, encode, encoder_states, load_model, resolve_whisper
from s2s.hearing.heard import LogLikelihood

WINDOW_SECONDS = 29.5  # Whisper hears at most 30 s at once (3000 feature frames); longer audio goes in windows
# Whisper reads this as the text said before: it sets the style (digits, operators, H:MM), not what is said.
# Measured on training-engine questions, a list of numbers here made Whisper write lists; a question does not.
PROMPT = "What is 7 + 12 × 3? It is 9:45."


class WhisperEar:
    """Whisper tiny.en (or another size) that writes down what a waveform says.

    `transcribe(wav)` -> (its transcript, confidence 0-1); `hear(wav, n_best)` -> (its best beams with their
    scores, the log-likelihood it gives any other transcript). `WhisperHearing` (`s2s/hearing/ears.py`) puts
    the transcript into the reasoner's written form."""

    def __init__(self, spec: str = "whisper-tiny.en", beam_size: int = 5, threads: int | None = None,
                 prompt: str | None = PROMPT):
        """`prompt`: the text Whisper reads as said before (the style of a written question); None for none, as
        a listener that should not be told what to expect (`s2s/eval/listener.py`)."""
        from faster_whisper.tokenizer import Tokenizer

        self.spec, self.beam_size = str(spec), beam_size
        self.folder = resolve_whisper(self.spec)
        self.model = load_model(str(self.folder), threads or default_threads())
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe",
                                   language="en")
        before = [self.tokenizer.sot_prev, *self.tokenizer.encode(" " + prompt)] if prompt else []
        self._prompt = [*before, *self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]

    def transcribe(self, wav: torch.Tensor) -> tuple[str, float]:
        """wav [T] at 16 kHz -> (Whisper's transcript, its mean token probability). Audio longer than Whisper's
        30 s window (a long spoken reply) is heard window by window, and the transcripts joined."""
        hypotheses, _ = self.hear(wav, n_best=1)
        text, score = hypotheses[0]
        return text, float(np.exp(score)) if text else 0.0

    def hear(self, wav: torch.Tensor, n_best: int = 1) -> tuple[list[tuple[str, float]], LogLikelihood]:
        """wav [T] at 16 kHz -> (up to `n_best` transcripts of the beam, best first, each with its mean log
        token probability; `log_likelihood(text)`, the same for any other transcript of the same audio, None for
        audio longer than one window)."""
        window = int(WINDOW_SECONDS * SAMPLE_RATE)
        if wav.shape[-1] > window:
            heard = [self.transcribe(piece) for piece in wav.split(window, dim=-1)]
            text = " ".join(text for text, _ in heard if text)
            score = float(np.log(max(1e-9, np.mean([confidence for _, confidence in heard]))))
            return [(text, score)], lambda other: None
        samples = wav.detach().float().cpu().numpy()
        encoded = encode(self.model, samples)
        # A question says about 3 tokens a second; the cap stops the loops Whisper falls into on noise.
        cap = len(self._prompt) + 8 + int(6 * samples.shape[-1] / SAMPLE_RATE)
        result = self.model.model.generate(encoded, [self._prompt], beam_size=self.beam_size, max_length=cap,
                                           num_hypotheses=min(n_best, self.beam_size), return_scores=True,
                                           suppress_blank=True, suppress_tokens=[-1])[0]
        hypotheses = [(self.tokenizer.decode(tokens).strip(), float(score))
                      for tokens, score in zip(result.sequences_ids, result.scores)]
        frames = min(3000, samples.shape[-1] // self.model.feature_extractor.hop_length)

        def log_likelihood(text: str) -> float | None:
            ids = self.tokenizer.encode(" " + text.strip()) if text.strip() else []
            if not ids:
                return None
            # align() scores the ids after the prompt; it adds the no-timestamps id itself.
            probs = self.model.model.align(encoded, self._prompt[:-1], [ids], frames)[0].text_token_probs
            return float(np.log(np.clip(probs, 1e-9, 1.0)).mean())

        return hypotheses, log_likelihood

    def states(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [T] at 16 kHz (at most 30 s) -> Whisper's encoder states over it [frames, width], float32: what a
        CTC head reads (`s2s/asr/whisper_states.py`), from the same pass as `hear`'s."""
        return encoder_states(self.model, wav)
