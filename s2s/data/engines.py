"""The question engines (espeak-ng, festival, piper) and the engine split: the one place it is written down.

A voice is named `engine:name`: `espeak:en-us+f3`, `festival:kal_diphone`,
`piper:joe`. A plain `base+variant` (`en-us+f3`) is an espeak voice, and
espeak voices are stored under that plain name.

The split. Held-out voices never reach training rows, so test figures measure
voices (and whole engines) the models have not heard:

  engine    training voices                            held out (test only)
  espeak    every voice that voices.py keeps for       voices.py's held-out voices (variants f4, m3, Andrea,
            training                                   benjamin, Lee, quincy, steph2, klatt4, victor, Mario;
                                                       every variant of base en-029)
  festival  festival:kal_diphone                       festival:ked_diphone, festival:cmu_us_slt_arctic_hts
  piper     none                                       piper:joe (all of piper)

How a question voice varies: espeak at a random speed (130-210 words a
minute) and pitch (25-75); piper at a random `length_scale` (0.85-1.15, in
steps of 0.05); festival as it comes.
"""
from __future__ import annotations

import random

import numpy as np

from s2s.data import espeak, festival, piper, voices

ENGINES = ("espeak", "festival", "piper")
FESTIVAL_TRAIN_VOICES = ("kal_diphone",)
FESTIVAL_HELD_OUT_VOICES = tuple(v for v in festival.FESTIVAL_VOICES if v not in FESTIVAL_TRAIN_VOICES)
PIPER_VOICES = tuple(piper.VOICE_PACKAGES)
# piper takes one length scale per process: a few values keep a corpus to a few processes.
PIPER_LENGTH_SCALES = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)
SPLITS = ("train", "test", "all")


def parse_voice(voice: str) -> tuple[str, str]:
    """(engine, the engine's own voice name) of a voice name; a plain name is espeak's."""
    engine, sep, name = voice.partition(":")
    if not sep:
        return "espeak", voice
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} in voice {voice!r}; choose from {', '.join(ENGINES)}")
    return engine, name


def voice_name(engine: str, name: str) -> str:
    """The stored name of a voice: plain for espeak (as corpora always had), `engine:name` otherwise."""
    return name if engine == "espeak" else f"{engine}:{name}"


def _names(engine: str) -> tuple[list[str], list[str]]:
    """An engine's (training, held-out) voice names."""
    if engine == "espeak":
        return voices.voices("train"), voices.voices("test")
    if engine == "festival":
        train, held_out = FESTIVAL_TRAIN_VOICES, FESTIVAL_HELD_OUT_VOICES
    else:
        train, held_out = (), PIPER_VOICES
    return [voice_name(engine, v) for v in train], [voice_name(engine, v) for v in held_out]


def engine_voices(engine: str, split: str) -> list[str]:
    """The voice names of `engine` in `split`: "train", "test" (held out) or "all"."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown voice split {split!r}; choose train, test or all")
    train, held_out = _names(engine)
    return {"train": train, "test": held_out, "all": train + held_out}[split]


def is_held_out(voice: str) -> bool:
    """Whether a voice of any engine is kept for testing (see the split above)."""
    engine, name = parse_voice(voice)
    if engine == "espeak":
        return voices.is_held_out(name)
    return voice_name(engine, name) in engine_voices(engine, "test")


def check_engines(engines: list[str] | tuple[str, ...], split: str) -> tuple[str, ...]:
    """The engines asked for, each with at least one voice in `split` (one line saying which has none)."""
    engines = tuple(dict.fromkeys(engines))
    if not engines:
        raise ValueError(f"choose at least one engine from {', '.join(ENGINES)}")
    for engine in engines:
        if not engine_voices(engine, split):
            raise ValueError(f"{engine} has no {split} voices (it is held out for testing): "
                             f"drop it from --engines or use --split test")
    return engines


def check_voice(voice: str, split: str) -> str:
    """The stored name of `voice` if it is a voice of `split`; one line otherwise (held-out voices stay out of
    training)."""
    engine, name = parse_voice(voice)
    if voice_name(engine, name) not in engine_voices(engine, "all"):
        raise ValueError(f"unknown voice {voice!r}; voices look like en-us+f3, festival:kal_diphone or piper:joe "
                         "(see s2s/data/engines.py)")
    if is_held_out(voice) != (split == "test"):
        raise ValueError(f"voice {voice!r} belongs to the {'test' if is_held_out(voice) else 'train'} split, "
                         f"not {split}: held-out voices must never reach training data")
    return voice_name(engine, name)


def _with_variation(rng: random.Random, voice: str, espeak_voice: dict) -> dict:
    """The render settings of `voice`: espeak keeps the drawn speed and pitch, piper draws a length scale."""
    engine, name = parse_voice(voice)
    if engine == "espeak":
        return dict(espeak_voice, voice=name)
    if engine == "piper":
        return {"voice": voice, "length_scale": rng.choice(PIPER_LENGTH_SCALES)}
    return {"voice": voice}


def sample_question_voice(rng: random.Random, split: str, engines: tuple[str, ...] = ("espeak",),
                          chosen: list[str] | None = None) -> dict:
    """A question voice and its render settings: {"voice", then speed_wpm and pitch, or length_scale}.

    An espeak voice, speed and pitch are drawn first whatever the engines, then a voice from `chosen` (when
    given), so espeak-only corpora draw exactly what they always drew from a seed. With several engines the
    engine is drawn first, so each is heard about equally often however many voices it has."""
    espeak_voice = voices.sample_voice(rng, split)
    if chosen:
        return _with_variation(rng, rng.choice(chosen), espeak_voice)
    engine = engines[0] if len(engines) == 1 else rng.choice(engines)
    voice = espeak_voice["voice"] if engine == "espeak" else rng.choice(engine_voices(engine, split))
    return _with_variation(rng, voice, espeak_voice)


def render(text: str, voice: dict) -> tuple[np.ndarray, int]:
    """Speak `text` with render settings from `sample_question_voice`; returns (float32 samples [T], rate in Hz)."""
    engine, name = parse_voice(voice["voice"])
    settings = {key: value for key, value in voice.items() if key != "voice"}
    if engine == "espeak":
        return espeak.render(text, voice=name, **settings)
    if engine == "festival":
        return festival.render(text, voice=name)
    return piper.render(text, voice=name, **settings)
