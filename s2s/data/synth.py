"""`s2s data synth`: a spoken reasoning corpus, rendered offline with espeak-ng.

Each example is a reasoning problem (`s2s/data/problems.py`) with its
question spoken in a random voice of the split (random speed and pitch), and
its reply sentence spoken in the assistant's voice (or any voice you choose,
which style transfer needs). Examples are generated from their own seeded
random generator, so the corpus depends only on (seed, split, index).

Manifest fields (one JSON object per line, audio paths relative to the manifest):
  id, split, family, question, question_written, thought, answer, reply,
  question_audio, question_voice, question_speed_wpm, question_pitch, question_duration_s,
  reply_audio, reply_voice, reply_speed_wpm, reply_pitch, reply_duration_s
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from s2s import audio
from s2s.data import espeak
from s2s.data.manifest import write_manifest
from s2s.data.problems import FAMILIES, generate_problem
from s2s.data.speech import new_corpus_folder, render_parallel
from s2s.data.voices import is_held_out, sample_voice, voices

# The assistant's default voice: a training voice, so the LM learns to speak it.
ASSISTANT_VOICE = {"voice": "en-us+f3", "speed_wpm": 170, "pitch": 50}


def _speak(text: str, voice: dict, out_dir: Path, rel_path: str) -> float:
    samples, rate = espeak.render(text, **voice)
    samples = espeak.trim_silence(samples)
    audio.save(out_dir / rel_path, torch.from_numpy(np.ascontiguousarray(samples)), rate, overwrite=True)
    return round(len(samples) / rate, 3)


def _render_example(job: tuple) -> dict:
    index, seed, split, families, question_voices, reply_voice, out_dir = job
    rng = random.Random(f"{seed}:{split}:synth:{index}")
    problem = generate_problem(rng, families[index % len(families)])
    question_voice = sample_voice(rng, split)
    if question_voices:
        question_voice["voice"] = rng.choice(question_voices)
    reply = sample_voice(rng, split) if reply_voice == "random" else dict(ASSISTANT_VOICE, voice=reply_voice)
    example_id = f"{split}-{index:06d}"
    out_dir = Path(out_dir)
    row = {"id": example_id, "split": split, "family": problem.family, "question": problem.question,
           "question_written": problem.question_written, "thought": problem.thought, "answer": problem.answer,
           "reply": problem.reply}
    for side, text, voice in (("question", problem.question, question_voice), ("reply", problem.reply, reply)):
        row[f"{side}_audio"] = f"wavs/{example_id}.{side}.wav"
        row[f"{side}_duration_s"] = _speak(text, voice, out_dir, row[f"{side}_audio"])
        row.update({f"{side}_{key}": value for key, value in voice.items()})  # voice, speed_wpm, pitch
    return row


def synthesize(out_dir: str | os.PathLike, n: int, seed: int = 0, split: str = "train",
               families: list[str] | None = None, question_voices: list[str] | None = None,
               reply_voice: str = ASSISTANT_VOICE["voice"], workers: int | None = None,
               overwrite: bool = False, progress: bool = True) -> Path:
    """Render `n` spoken reasoning examples into `out_dir`; returns the manifest path."""
    families = list(families or FAMILIES)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    allowed = set(voices("all"))
    for voice in question_voices or []:
        if voice not in allowed:
            raise ValueError(f"unknown voice {voice!r}; voices look like en-us+f3 (see s2s/data/voices.py)")
        if is_held_out(voice) != (split == "test"):
            raise ValueError(f"voice {voice!r} belongs to the {'test' if is_held_out(voice) else 'train'} split, "
                             f"not {split}: held-out voices must never reach training data")
    if reply_voice != "random" and "+" not in reply_voice and reply_voice not in allowed:
        raise ValueError(f"unknown reply voice {reply_voice!r}; use base+variant such as en-us+f3, or 'random'")
    manifest = new_corpus_folder(out_dir, n, overwrite)
    jobs = [(i, seed, split, families, question_voices, reply_voice, str(manifest.parent)) for i in range(n)]
    rows = render_parallel(_render_example, jobs, f"synthesising {split}", workers, progress)
    return write_manifest(manifest, rows, overwrite=overwrite)
