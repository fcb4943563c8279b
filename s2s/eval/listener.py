"""An independent listener for spoken replies, and the reference it is measured against.

A spoken figure is only as honest as its listener. Our CTC judge (`s2s-judge-tiny`) was trained on the
corpus's replies in the assistant's own voice: it knows the voice and the sentences, so it grades its own
homework. The independent listener is pretrained Whisper tiny.en, which has never heard our corpus, with no
prompt telling it what to expect. It has weaknesses of its own (short clips, formant voices), so every figure
comes with the same listener's score on the reference: the model's own reply sentences rendered by the voice
the model was trained to speak in (`ASSISTANT_VOICE`). The ratio of the two is the model's, not the listener's.

    listener = load_listener("whisper")
    listener.transcribe(wav [B, T] at 16 kHz) -> ["The answer is 42.", ...]
    reference_reply(text) -> the reply text said by the reference voice: wav [1, T], rate
"""
from __future__ import annotations

from pathlib import Path

import torch

SAMPLE_RATE = 16000
LISTENERS = ("whisper", "whisper-tiny.en")


class WhisperListener:
    """Whisper tiny.en as a listener: its plain transcript of each reply (no domain prompt)."""

    independent = True  # pretrained by others on other speech: it never heard the reply corpus

    def __init__(self, spec: str = "whisper-tiny.en"):
        from s2s.hearing.whisper import WhisperEar

        self.name = f"Whisper {spec.removeprefix('whisper-')} (independent, not trained on the reply corpus)"
        self.ear = WhisperEar(spec, prompt=None)

    def transcribe(self, wav: torch.Tensor) -> list[str]:
        """wav [B, T] at 16 kHz -> Whisper's transcript of each row."""
        return [self.ear.transcribe(row)[0] for row in wav]


def load_listener(spec: str) -> WhisperListener:
    """`whisper` (or `whisper-tiny.en`): the independent listener. A recogniser folder of our own is refused:
    one trained on the reply corpus is not independent (pass it as `--judge`, where it is labelled so)."""
    if spec in LISTENERS:
        return WhisperListener("whisper-tiny.en")
    if Path(spec, "config.yaml").is_file():
        raise ValueError(f"{spec} is a recogniser trained on this project's corpus, not an independent listener; "
                         "use --listener whisper, and pass it as --judge to see it beside, labelled as ours")
    raise ValueError(f"unknown listener {spec!r}; use --listener whisper (pretrained Whisper tiny.en)")


def reference_reply(text: str) -> tuple[torch.Tensor, int]:
    """`text` said by the reference voice, the assistant's voice the model was trained to speak in (espeak-ng,
    `s2s.data.synth.ASSISTANT_VOICE`): wav [1, T] and its rate. An empty text gives no samples."""
    from s2s.data import espeak
    from s2s.data.synth import ASSISTANT_VOICE

    if not text.strip():
        return torch.zeros(1, 0), SAMPLE_RATE
    samples, rate = espeak.render(text, **ASSISTANT_VOICE)
    return torch.from_numpy(espeak.trim_silence(samples).copy()).float()[None], rate


def listener_scores(examples: list[dict]) -> dict:
    """What the listener heard right, among the replies whose thought is right: the model's voice, the reference
    voice saying the same sentences, and their ratio (the listener's own weakness divides out)."""
    judged = [e for e in examples if e.get("listened") and e.get("thought_correct") and not e.get("declined")]
    if not judged:
        return {"listener_n": 0, "accuracy_listener": None, "accuracy_listener_reference": None,
                "listener_ratio": None}
    model = sum(e["listener_answer"] == e["answer"] for e in judged) / len(judged)
    reference = sum(e["listener_reference_answer"] == e["answer"] for e in judged) / len(judged)
    return {"listener_n": len(judged), "accuracy_listener": model, "accuracy_listener_reference": reference,
            "listener_ratio": model / reference if reference else None}
