"""When to say "I did not catch a question" instead of answering, and how it sounds.

Two gates, both before any reasoning: the VAD finds no speech (silence,
noise, a tone, music without a voice), or the ear heard too few words to be
a question (Whisper's "Thank you." on a hum): the reply asks again. A wrong
answer said with confidence costs a user more than a request to ask again.

Words that ask nothing of numbers or time, heard or typed ("Turn on the
lights.", "Who wrote Romeo and Juliet?": no number, none of the words its
questions turn on), get `OUT_OF_SCOPE_TEXT` before any reasoning: asking
again would not help. The reasoner declines the rest itself: a question it
cannot work on that does use such words ("What's the capital of France?")
gets the thought `OUT_OF_SCOPE_THOUGHT` (it is trained to write it), and the
reply is then `OUT_OF_SCOPE_TEXT`, never an invented sum.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from s2s import audio as audio_io
from s2s.data.problems import OUT_OF_SCOPE_REPLY, OUT_OF_SCOPE_THOUGHT

TEXT = "I did not catch a question. Could you ask again?"
# The sentences in the assistant's voice (espeak-ng en-us+f3, 170 words a minute, pitch 50), 16 kHz.
AUDIO = Path(__file__).resolve().parent.parent / "assets" / "abstain.wav"
OUT_OF_SCOPE_TEXT = OUT_OF_SCOPE_REPLY
OUT_OF_SCOPE_AUDIO = AUDIO.with_name("out_of_scope.wav")
NO_SPEECH = "no speech found"
OUT_OF_SCOPE = "out of scope"
MIN_WORDS = 3
# What a question to the reasoner has: a number, or one of the words its questions turn on.
_QUESTION_CUE = re.compile(r"\d|\b(how|what|which|when|count|letters?|words?|list|next|larger|smaller|greater|"
                           r"bigger|more|less|times?|clock|minutes?|hours?)\b", re.I)


def no_question(text: str, typed: bool = False) -> str | None:
    """Why `text` is no question the reasoner can work on, or None when it may be one: heard words too few
    for a question ("no question heard (...)": ask again), or words without a number or any word its
    questions turn on (`OUT_OF_SCOPE`). Typed text is never too short: what was typed was meant."""
    words = re.findall(r"[A-Za-z0-9']+", text)
    if not typed and len(words) < MIN_WORDS:
        return f"no question heard (heard {text.strip()!r})" if words else "no words heard"
    if not _QUESTION_CUE.search(text):
        return OUT_OF_SCOPE
    return None


def declines(thought: str) -> bool:
    """Whether the reasoner's `thought` says the question is not one it can work on."""
    return thought.strip().endswith(OUT_OF_SCOPE_THOUGHT.splitlines()[-1])


def reply_text(reason: str) -> str:
    """What the assistant says when it declines for `reason`."""
    return OUT_OF_SCOPE_TEXT if reason == OUT_OF_SCOPE else TEXT


def abstention_audio(sample_rate: int, reason: str | None = None) -> torch.Tensor:
    """[1, T] the spoken abstention (for `reason`) at `sample_rate`."""
    wav, rate = audio_io.load(OUT_OF_SCOPE_AUDIO if reason == OUT_OF_SCOPE else AUDIO)
    return audio_io.prepare(wav[None], rate, sample_rate, channels=1)[0]
