"""How the LM hears: question audio -> a few vectors in its own text-embedding space.

A frozen CTC recogniser (`s2s/asr/`) runs over the audio. Its greedy CTC
path cuts the audio into segments, one per LM text token it hears (blank
frames dropped, repeats merged), the "CTC compression" of speech translation
and speech LLMs. Each segment becomes one LM input vector:

    vector = sum_j p_j * E[token_j]  +  W h        (j over the segment's top-k tokens)

where E is the LM's own text embeddings, h the recogniser's mean hidden state
over the segment and W a learned map (it starts at zero). A question heard
well therefore reaches the LM as nearly the embeddings of its written text,
the same place a text question starts from, so reasoning learned from cheap
text questions carries over to speech, and W h lets training add what text
lacks. These are continuous features through an encoder and an adapter (as
in Qwen2-Audio or LLaMA-Omni), not codec tokens.

The recogniser writes either

- written characters (`labels: written`, the shipped hearing): its transcript
  ("What is 21 + 4?") is cut into the LM's tokens, each token's segment runs
  from its first character's frame to the next token's, and p is one-hot. A
  fixed alphabet of 74 characters learns from few spoken examples far
  faster than a thousand token ids; or
- the LM's own tokens (`labels: tokenizer:<folder>`): each greedy run is a
  segment and p is its mean posterior, which keeps the recogniser's doubt.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from s2s.asr.labels import WrittenLabels
from s2s.asr.recognizer import CTCRecognizer, greedy_segments
from s2s.asr.whisper_states import is_whisper_frontend
from s2s.hearing.heard import HEARING_DIR, SAMPLE_RATE, Heard, HeardQuestion, Hearing, Hypothesis, to_16k

TOP_K = 8  # tokens kept per segment: the rest of the posterior is noise
# A pause added after a question before the CTC ear hears it: its training questions all end in one, and a clip
# cut tight at its last word loses its last characters. Measured on seed-5 validation questions (first 80 of
# each), every number heard by the ear alone without and with it: festival 40 -> 46, piper 38 -> 44, espeak-ng
# held-out voices 65 -> 66, the same with white noise at 10 dB 58 -> 59; cross-checked, the same or one more.
TAIL_PAUSE_S = 0.4


def compress(log_probs: torch.Tensor, hidden: torch.Tensor, length: int, top_k: int = TOP_K) -> HeardQuestion:
    """One utterance's frames (log-probs [F, 1 + T], hidden [F, D]) -> its heard segments.

    Audio in which nothing was heard still gives one segment (the whole
    utterance), so a question is never empty.
    """
    runs = greedy_segments(log_probs, length) or [(0, 0, max(length, 1))]
    probs = torch.stack([log_probs[a:b].float().exp().mean(0) for _, a, b in runs])[:, 1:]  # drop the blank
    probs = probs / probs.sum(-1, keepdim=True).clamp(min=1e-8)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    weights = top.values / top.values.sum(-1, keepdim=True)
    segment_hidden = torch.stack([hidden[a:b].float().mean(0) for _, a, b in runs])
    return HeardQuestion(top.indices, weights, segment_hidden)


def compress_written(log_probs: torch.Tensor, hidden: torch.Tensor, length: int, labels: WrittenLabels,
                     tokenizer, runs: list[tuple[int, int, int]] | None = None) -> HeardQuestion:
    """One utterance's frames (log-probs [F, 1 + C] over written characters, hidden [F, D]) -> its heard segments,
    one per LM token of the transcript, each with its token at probability 1.

    Audio in which nothing was heard still gives one segment (a space over the whole utterance).
    """
    runs = greedy_segments(log_probs, length) if runs is None else runs
    chars, starts = [], []  # the transcript, spaces collapsed as WrittenLabels.normalise does, and each char's frame
    for label, first, _ in runs:
        char = labels.decode([label])
        if char == " " and (not chars or chars[-1] == " "):
            continue
        chars.append(char)
        starts.append(first)
    while chars and chars[-1] == " ":
        chars.pop(), starts.pop()
    end = runs[-1][2] if runs else max(length, 1)
    encoded = tokenizer("".join(chars) or " ", add_special_tokens=False, return_offsets_mapping=True)
    token_ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    # A token whose characters were heard starts at its first character's frame; a byte-level token that shares
    # its characters with the one before (part of a multi-byte character) starts one frame later.
    firsts = []
    for begin, _ in offsets:
        first = starts[begin] if begin < len(starts) else 0
        firsts.append(first if not firsts or first > firsts[-1] else firsts[-1] + 1)
    bounds = firsts[1:] + [max(end, firsts[-1] + 1)]
    frames = hidden.shape[0]
    segment_hidden = torch.stack([hidden[min(a, frames - 1): max(b, a + 1)].float().mean(0)
                                  for a, b in zip(firsts, bounds)])
    ids = torch.tensor(token_ids, dtype=torch.long)[:, None]
    return HeardQuestion(ids, torch.ones(ids.shape), segment_hidden)


def with_tail_pause(wav: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of wav [B, T] at 16 kHz (each `num_samples` long) with TAIL_PAUSE_S of pause after each: white noise
    as loud as the row's quietest 20 ms, so a question heard through noise does not end in a digital silence the
    ear never heard (zeros after noisy questions lost a third of their numbers), and a clean one ends in silence."""
    tail, frame = int(TAIL_PAUSE_S * SAMPLE_RATE), SAMPLE_RATE // 50
    padded = wav.new_zeros(wav.shape[0], wav.shape[1] + tail)
    noise = torch.randn(tail, generator=torch.Generator().manual_seed(0)).to(wav)
    for row, n in enumerate(num_samples.tolist()):
        padded[row, :n] = wav[row, :n]
        frames = wav[row, : n // frame * frame].reshape(-1, frame)
        floor = frames.pow(2).mean(-1).min().sqrt() if len(frames) else wav.new_zeros(())
        padded[row, n:n + tail] = noise * floor
    return padded, num_samples.to(wav.device) + tail


class CTCHearing(nn.Module):
    """A frozen recogniser that turns waveforms into HeardQuestions for an LM.

    `tokenizer` is the LM's text tokenizer: needed to cut a written transcript into the LM's tokens; a
    recogniser that spells in tokenizer ids must use the same tokenizer.
    """

    def __init__(self, recognizer: CTCRecognizer, tokenizer=None, name: str = HEARING_DIR):
        """`name`: the folder a model folder keeps it in."""
        super().__init__()
        self.name = name
        kind = recognizer.labels.kind
        if kind not in ("written", "tokenizer"):
            raise ValueError("the LM's hearing must write questions as text (labels: written) or in the LM's text "
                             f"tokens (labels: tokenizer:<folder>), got a recogniser with {kind} labels")
        if kind == "written" and tokenizer is None:
            raise ValueError("a hearing that writes characters needs the LM's text tokenizer to cut its transcript")
        if kind == "tokenizer" and tokenizer is not None and recognizer.labels.size - 1 != len(tokenizer):
            raise ValueError(f"the hearing model spells {recognizer.labels.size - 1} text ids, the LM's tokenizer "
                             f"has {len(tokenizer)}: train it with the LM's tokenizer (or use labels: written)")
        self.recognizer = recognizer.eval().requires_grad_(False)
        self.tokenizer = tokenizer

    @property
    def dim(self) -> int:
        return self.recognizer.config.dim

    def train(self, mode: bool = True):  # always frozen, always in eval mode (no dropout, no augmentation)
        return super().train(False)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor | None = None) -> list[HeardQuestion]:
        """wav [B, T] at 16 kHz -> one HeardQuestion per row."""
        if num_samples is None:
            num_samples = torch.full((wav.shape[0],), wav.shape[1], device=wav.device)
        hidden, log_probs, lengths = self.recognizer(*self._paused(wav, num_samples))
        if self.recognizer.labels.kind == "written":
            return [compress_written(lp, h, int(n), self.recognizer.labels, self.tokenizer,
                                     self.recognizer.segments(lp, int(n)))
                    for lp, h, n in zip(log_probs, hidden, lengths)]
        return [compress(lp, h, int(n)) for lp, h, n in zip(log_probs, hidden, lengths)]

    def _paused(self, wav: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows as the recogniser hears them: after a pause (`with_tail_pause`), unless it reads Whisper's
        encoder, which adds its own and then shares its pass with the Whisper ear's beams."""
        if is_whisper_frontend(self.recognizer.frontend):
            return wav, num_samples
        return with_tail_pause(wav, num_samples)

    def hear(self, wav: torch.Tensor, sample_rate: int) -> HeardQuestion:
        """One waveform [C, T] or [T] at any rate -> its HeardQuestion."""
        return self.listen(wav, sample_rate).question

    def listen(self, wav: torch.Tensor, sample_rate: int) -> Heard:
        """One waveform [C, T] or [T] at any rate -> `Heard`: its HeardQuestion, transcript and
        confidence, the mean probability of the label the CTC path writes at each frame that is not blank
        (measured on 40 test questions per engine: 0.928 or more on held-out espeak-ng voices, 0.80-0.98 on
        festival and piper)."""
        return self.hearing(wav, sample_rate).heard

    @torch.no_grad()
    def hearing(self, wav: torch.Tensor, sample_rate: int, n_best: int = 1) -> Hearing:
        """`listen` (its one transcript, whatever `n_best`), and the CTC log-likelihood per character it gives
        any written question for the same audio (the acoustic model's alone: the text LM of its beam search has
        no say)."""
        wav = to_16k(wav, sample_rate)[None].to(next(self.recognizer.parameters()).device)
        hidden, log_probs, lengths = self.recognizer(*self._paused(wav, torch.tensor([wav.shape[1]])))
        log_probs, hidden, length = log_probs[0], hidden[0], int(lengths[0])
        best = log_probs[:length].float().exp().max(-1)
        said = best.indices != 0
        confidence = float(best.values[said].mean()) if said.any() else 0.0
        runs = self.recognizer.segments(log_probs, length)
        if self.recognizer.labels.kind == "written":
            question = compress_written(log_probs, hidden, length, self.recognizer.labels, self.tokenizer, runs)
            text = self.recognizer.labels.decode([label for label, _, _ in runs]).strip()
        else:
            question = compress(log_probs, hidden, length)
            text = self.tokenizer.decode(question.token_ids[:, 0].tolist()).strip() if self.tokenizer else ""
        text = " ".join(text.split())

        def log_likelihood(transcript: str) -> float | None:
            labels = self.recognizer.labels.encode(transcript)
            if not labels or length < 1:
                return None
            loss = torch.nn.functional.ctc_loss(log_probs[:length].float()[:, None], torch.tensor([labels]),
                                                torch.tensor([length]), torch.tensor([len(labels)]),
                                                reduction="sum")
            return -float(loss) / len(labels)  # -inf: more labels than the audio has frames for

        score = log_likelihood(text)
        return Hearing([Hypothesis(Heard(question, text, confidence, "ctc"), text,
                                   float("-inf") if score is None else score)], log_likelihood)

    def save(self, folder, half: bool = False) -> str:
        """Write the recogniser into a model folder; returns the name its config gives it."""
        self.recognizer.save_pretrained(folder / self.name, half=half)
        return self.name
