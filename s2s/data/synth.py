"""`s2s data synth`: a spoken reasoning corpus, rendered offline with espeak-ng, festival and piper.

Each example is a reasoning problem (`s2s/data/problems.py`, drawn from the
split's part of the question grammar: train and test share phrasings and
sizes, phrasing holds out openings, verbs and shapes, stretch holds sizes just
beyond training) with its question spoken in a random voice of the split (the
training voices for train, the held-out voices for every other split), by the engines asked for
(espeak-ng by default; the engine split is in `s2s/data/engines.py`), and
its reply sentence spoken with espeak-ng in the assistant's voice (or any
voice you choose, which style transfer needs). Examples are generated from
their own seeded random generator, so the corpus depends only on (seed,
split, index). piper questions are spoken last, in batches, since each piper
process first spends a second loading its voice.

Manifest fields (one JSON object per line, audio paths relative to the manifest):
  id, split, family, question, question_written, thought, answer, reply,
  question_audio, question_duration_s, question_voice, question_engine (espeak, festival or piper),
  question_speed_wpm and question_pitch (espeak), question_length_scale (piper),
  reply_audio, reply_voice, reply_speed_wpm, reply_pitch, reply_duration_s
With `augment` (training corpora only) each question also gets some noise, room, telephone band, speed and
gain (`s2s/data/augment.py`), and the row says which in
  question_augment   e.g. "speed1.05+noise18db+telephone" ("" when the question stayed clean)

With `reply_styles` (style transfer), each reply is spoken by one of a few
voices at a random rate (slow / normal / fast) and pitch (low / normal /
high), and the row also gets
  reply_style        the words asked for, e.g. "fast low" ("" when both are normal)
  reply_audio_low, reply_audio_normal, reply_audio_high
                     the same reply in the same voice and rate at each pitch (one of them is reply_audio)
  voice_audio, voice_text, voice_duration_s
                     a voice prompt: other sentences in the reply's voice, normal style
except for a third of the assistant-voice rows, which have no prompt: with no
prompt the model speaks in the assistant's voice.

`s2s data replies` (`synthesize_replies`) writes a reply bank instead: each
distinct reply sentence of many drawn problems, spoken once, with no question
(rows: id, split, family, answer, reply, reply_audio, reply_duration_s,
reply_voice, reply_speed_wpm, reply_pitch): training data for the word decoder.
"""
from __future__ import annotations

import os
import random
from collections import defaultdict
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from s2s import audio
from s2s.data import augment, engines, espeak, piper
from s2s.data.grammar import check_split
from s2s.data.manifest import read_manifest, write_manifest
from s2s.data.problems import ALL_FAMILIES, FAMILIES, Problem, generate_problem
from s2s.data.speech import new_corpus_folder, render_parallel
from s2s.data.voices import is_held_out, sample_voice, voices

# The assistant's default voice: a training voice, so the LM learns to speak it.
ASSISTANT_VOICE = {"voice": "en-us+f3", "speed_wpm": 170, "pitch": 50}
# Style transfer: the reply voices (training voices of different accents and registers, the assistant's first),
# and what each style word asks espeak-ng for (words a minute; pitch 0-99).
STYLE_VOICES = ("en-us+f3", "en-gb-x-rp+m1", "en-gb-scotland+f2", "en+grandpa", "en-us-nyc+m7", "en+Annie")
REPLY_RATES = {"slow": 120, "normal": 170, "fast": 240}
REPLY_PITCHES = {"low": 20, "normal": 50, "high": 80}
# piper questions spoken by one process at most: a second of loading against a minute of speech.
PIPER_BATCH = 200


def _speak(text: str, voice: dict, out_dir: Path, rel_path: str) -> float:
    samples, rate = espeak.render(text, **voice)
    samples = espeak.trim_silence(samples)
    audio.save(out_dir / rel_path, torch.from_numpy(np.ascontiguousarray(samples)), rate, overwrite=True)
    return round(len(samples) / rate, 3)


def _augment_rng(seed: int, split: str, index: int, augment_audio: bool) -> random.Random | None:
    """Example `index`'s own generator for augmentation, apart from the example's, so augmenting a corpus
    changes nothing else in it (and piper questions, spoken later, draw the same)."""
    return random.Random(f"{seed}:{split}:augment:{index}") if augment_audio else None


def _save_question(samples: np.ndarray, rate: int, row: dict, out_dir: Path, augment_rng: random.Random | None):
    """Trim, augment (with a generator) and save a spoken question; fills the row's duration and augmentation."""
    samples = espeak.trim_silence(samples)
    if augment_rng is not None:
        samples, row["question_augment"] = augment.augment(samples, rate, augment_rng)
    audio.save(out_dir / row["question_audio"], torch.from_numpy(np.ascontiguousarray(samples)), rate, overwrite=True)
    row["question_duration_s"] = round(len(samples) / rate, 3)


def _styled_reply(rng: random.Random, reply_voices: list[str]) -> tuple[dict, str, bool]:
    """A reply voice, rate and pitch for a styled corpus: (espeak voice, style words, give a voice prompt)."""
    voice = rng.choice(reply_voices)
    rate, pitch = rng.choice(list(REPLY_RATES)), rng.choice(list(REPLY_PITCHES))
    words = " ".join(word for word in (rate, pitch) if word != "normal")
    prompted = voice != ASSISTANT_VOICE["voice"] or rng.random() < 2 / 3
    return {"voice": voice, "speed_wpm": REPLY_RATES[rate], "pitch": REPLY_PITCHES[pitch]}, words, prompted


def _families(families: list[str] | None) -> list[str]:
    """The families asked for (all when None), checked before any audio is rendered."""
    families = list(families or FAMILIES)
    unknown = sorted(set(families) - set(ALL_FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {', '.join(ALL_FAMILIES)}")
    return families


def _example_rng(seed: int, split: str, index: int, families: list[str]) -> tuple[random.Random, Problem]:
    """Example `index`'s own random generator, and the problem it draws first (the rest draws voices)."""
    rng = random.Random(f"{seed}:{split}:synth:{index}")
    return rng, generate_problem(rng, families[index % len(families)], split)


def voice_split(split: str) -> str:
    """The voices a corpus split speaks in: training voices for train, held-out voices for every test split
    (test, phrasing, stretch)."""
    return "train" if split == "train" else "test"


def _render_example(job: tuple) -> dict:
    """One example's row and audio; a piper question is left unspoken (duration None) for a batch."""
    index, seed, split, families, question_engines, question_voices, reply_voice, reply_voices, augment_audio, \
        out_dir = job
    rng, problem = _example_rng(seed, split, index, families)
    voices_of = voice_split(split)
    question_voice = engines.sample_question_voice(rng, voices_of, question_engines, question_voices)
    reply = sample_voice(rng, voices_of) if reply_voice == "random" else dict(ASSISTANT_VOICE, voice=reply_voice)
    style, prompted = None, False
    if reply_voices:
        reply, style, prompted = _styled_reply(rng, reply_voices)
    example_id = f"{split}-{index:06d}"
    out_dir = Path(out_dir)
    row = {"id": example_id, "split": split, "family": problem.family, "question": problem.question,
           "question_written": problem.question_written, "thought": problem.thought, "answer": problem.answer,
           "reply": problem.reply}
    row.update(question_audio=f"wavs/{example_id}.question.wav", question_duration_s=None)
    row.update({f"question_{key}": value for key, value in question_voice.items()})  # voice, then its settings
    row["question_engine"] = engines.parse_voice(question_voice["voice"])[0]
    if augment_audio:
        row["question_augment"] = ""
    if row["question_engine"] != "piper":
        samples, rate = engines.render(problem.question, question_voice)
        _save_question(samples, rate, row, out_dir, _augment_rng(seed, split, index, augment_audio))
    row["reply_audio"] = f"wavs/{example_id}.reply.wav"
    row["reply_duration_s"] = _speak(problem.reply, reply, out_dir, row["reply_audio"])
    row.update({f"reply_{key}": value for key, value in reply.items()})  # voice, speed_wpm, pitch
    if style is not None:
        row["reply_style"] = style
        # The same reply, voice and rate at every pitch, aligned in time (espeak-ng's timing hardly depends on
        # pitch: the takes' lengths differ by tens of ms): pairs that teach a voice converter pitch apart from words.
        for word, value in REPLY_PITCHES.items():
            key = f"reply_audio_{word}"
            if value == reply["pitch"]:
                row[key] = row["reply_audio"]
            else:
                row[key] = f"wavs/{example_id}.reply.{word}.wav"
                _speak(problem.reply, dict(reply, pitch=value), out_dir, row[key])
    if prompted:  # other sentences, same voice, normal rate and pitch: a few seconds to clone
        others = [generate_problem(rng).reply for _ in range(2)]
        row["voice_text"] = " ".join(others)
        row["voice_audio"] = f"wavs/{example_id}.voice.wav"
        prompt_voice = {"voice": reply["voice"], "speed_wpm": REPLY_RATES["normal"], "pitch": REPLY_PITCHES["normal"]}
        row["voice_duration_s"] = _speak(row["voice_text"], prompt_voice, out_dir, row["voice_audio"])
    return row


def _speak_piper_questions(rows: list[dict], out_dir: Path, seed: int, split: str, augment_audio: bool,
                           workers: int | None, progress: bool) -> None:
    """Speak the rows' piper questions, one piper process per batch of one voice and length scale (both are
    set per process), batches side by side on every core."""
    waiting = defaultdict(list)
    for index, row in enumerate(rows):  # row i is example i
        if row["question_duration_s"] is None:
            waiting[(row["question_voice"], row["question_length_scale"])].append(index)
    batches = [(key, indices[start:start + PIPER_BATCH]) for key, indices in sorted(waiting.items())
               for start in range(0, len(indices), PIPER_BATCH)]
    if not batches:
        return

    def speak(batch: tuple) -> int:
        (voice, length_scale), indices = batch
        takes = piper.render_many([rows[i]["question"] for i in indices], engines.parse_voice(voice)[1],
                                  length_scale=length_scale)
        for i, (samples, rate) in zip(indices, takes):
            _save_question(samples, rate, rows[i], out_dir, _augment_rng(seed, split, i, augment_audio))
        return len(indices)

    with ThreadPool(workers or os.cpu_count() or 1) as pool, \
            tqdm(total=sum(len(b[1]) for b in batches), desc="piper questions", disable=not progress) as bar:
        for spoken in pool.imap_unordered(speak, batches):
            bar.update(spoken)


def _question_settings(split: str, question_engines: list[str] | None, question_voices: list[str] | None,
                       augment_audio: bool) -> tuple[tuple[str, ...], list[str]]:
    """The checked (engines, explicit voices) of a corpus; engines are checked before any audio is rendered."""
    check_split(split)
    chosen = engines.check_engines(question_engines or ("espeak",), voice_split(split)) if not question_voices else ()
    question_voices = [engines.check_voice(voice, voice_split(split)) for voice in question_voices or []]
    for voice in question_voices:
        engine = engines.parse_voice(voice)[0]
        if question_engines and engine not in question_engines:
            raise ValueError(f"voice {voice!r} is a {engine} voice, not one of --engines {' '.join(question_engines)}: "
                             "--voices alone chooses the engines")
    used = {engines.parse_voice(voice)[0] for voice in question_voices} | set(chosen)
    if "piper" in used:
        piper.voice_files()
    if augment_audio:
        if split != "train":
            raise ValueError("--augment is for training corpora only: test corpora keep their questions clean")
        augment.require_audiomentations()
    return chosen, question_voices


def synthesize(out_dir: str | os.PathLike, n: int, seed: int = 0, split: str = "train",
               families: list[str] | None = None, question_voices: list[str] | None = None,
               reply_voice: str = ASSISTANT_VOICE["voice"], workers: int | None = None,
               overwrite: bool = False, progress: bool = True, reply_styles: bool = False,
               reply_voices: list[str] | None = None, question_engines: list[str] | None = None,
               augment_audio: bool = False) -> Path:
    """Render `n` spoken reasoning examples into `out_dir`; returns the manifest path.

    `question_engines`: the engines whose voices of the split speak the questions (default espeak only; see
    s2s/data/engines.py). `question_voices`: these voices only (`en-us+f3`, `festival:kal_diphone`,
    `piper:joe`), each of the split. `augment_audio`: noise, room, telephone, speed and gain on the questions
    of a training corpus. `reply_styles`: replies in `reply_voices` (default STYLE_VOICES) at random rates and
    pitches, with voice prompts (see the module's docstring), the training data of style transfer."""
    families = _families(families)
    allowed = set(voices("all"))
    question_engines, question_voices = _question_settings(split, question_engines, question_voices,
                                                           augment_audio)
    if reply_voice != "random" and "+" not in reply_voice and reply_voice not in allowed:
        raise ValueError(f"unknown reply voice {reply_voice!r}; use base+variant such as en-us+f3, or 'random'")
    reply_voices = list(reply_voices or STYLE_VOICES) if reply_styles else None
    for voice in reply_voices or []:
        if voice not in allowed or is_held_out(voice):
            raise ValueError(f"reply voice {voice!r} is not a training voice; voices look like en-us+f3 and must "
                             "not be held out (see s2s/data/voices.py)")
    manifest = new_corpus_folder(out_dir, n, overwrite)
    jobs = [(i, seed, split, families, question_engines, question_voices, reply_voice, reply_voices, augment_audio,
             str(manifest.parent)) for i in range(n)]
    rows = render_parallel(_render_example, jobs, f"synthesising {split}", workers, progress)
    _speak_piper_questions(rows, manifest.parent, seed, split, augment_audio, workers, progress)
    return write_manifest(manifest, rows, overwrite=overwrite)


def _render_reply(job: tuple) -> dict:
    index, problem, voice, out_dir = job
    row = {"id": f"reply-{index:06d}", "split": "train", "family": problem.family, "answer": problem.answer,
           "reply": problem.reply, "reply_audio": f"wavs/reply-{index:06d}.wav"}
    row["reply_duration_s"] = _speak(problem.reply, voice, Path(out_dir), row["reply_audio"])
    row.update({f"reply_{key}": value for key, value in voice.items()})  # voice, speed_wpm, pitch
    return row


def synthesize_replies(out_dir: str | os.PathLike, problems: int, seed: int = 0,
                       exclude: list[str | os.PathLike] = (), families: list[str] | None = None,
                       reply_voice: str = ASSISTANT_VOICE["voice"], workers: int | None = None,
                       overwrite: bool = False, progress: bool = True) -> Path:
    """A reply bank: every distinct reply sentence of `problems` drawn training problems, spoken once in the
    assistant's voice, with no question; returns the manifest path.

    Questions cost an utterance each and teach hearing; a word decoder only needs each reply said once, and
    the more sentences it hears a word in (a number at the end of a sentence, say) the better it says it.
    Replies already spoken in an `exclude` manifest are left out, so the bank only adds sentences."""
    families = _families(families)
    if reply_voice not in set(voices("all")) and "+" not in reply_voice:
        raise ValueError(f"unknown reply voice {reply_voice!r}; use base+variant such as en-us+f3")
    if problems <= 0:
        raise ValueError(f"--problems must be a positive number of problems to draw, got {problems}")
    known = {row["reply"] for manifest in exclude for row in read_manifest(manifest) if row.get("reply")}
    chosen: dict[str, Problem] = {}
    for i in range(problems):  # problem i depends only on (seed, i), as in synthesize
        problem = generate_problem(random.Random(f"{seed}:replies:{i}"), families[i % len(families)])
        if problem.reply not in known:
            chosen.setdefault(problem.reply, problem)
    if not chosen:
        raise ValueError(f"all replies of {problems} problems are already in {', '.join(map(str, exclude))}; "
                         "draw more --problems or change --seed")
    manifest = new_corpus_folder(out_dir, len(chosen), overwrite)
    voice = dict(ASSISTANT_VOICE, voice=reply_voice)
    jobs = [(i, problem, voice, str(manifest.parent)) for i, problem in enumerate(chosen.values())]
    rows = render_parallel(_render_reply, jobs, "speaking replies", workers, progress)
    return write_manifest(manifest, rows, overwrite=overwrite)


def rethink(manifest: str | os.PathLike, out: str | os.PathLike, seed: int, families: list[str] | None = None,
            overwrite: bool = False) -> tuple[Path, int]:
    """Write a copy of a synthesised manifest whose thoughts are those the current problem generator writes.

    When the thoughts' wording changes (as the clock sums did, for the calculator), a corpus need not be
    rendered again: each row's problem is drawn again from (seed, split, index), checked against the row's
    written question and answer, and its thought replaced. Audio and every other field stay as they are.
    Returns the new manifest and how many thoughts changed."""
    manifest, out = Path(manifest), Path(out)
    if out.resolve() == manifest.resolve():
        raise ValueError(f"{out} is the manifest being read: write the new thoughts to another file beside it")
    if out.resolve().parent != manifest.resolve().parent:
        raise ValueError(f"{out}: write it beside {manifest} (in {manifest.parent}): its audio paths are relative "
                         "to the manifest's folder")
    families = list(families or FAMILIES)
    rows, changed = read_manifest(manifest), 0
    for row in rows:
        split, _, index = row["id"].rpartition("-")
        if not index.isdigit():
            raise ValueError(f"{manifest}: id {row['id']!r} is not SPLIT-INDEX: only `s2s data synth` corpora "
                             "can be rethought")
        _, problem = _example_rng(seed, split, int(index), families)
        if (problem.question_written, problem.answer) != (row.get("question_written"), row.get("answer")):
            raise ValueError(f"{manifest}: {row['id']} is not the problem seed {seed} draws "
                             f"({problem.question_written!r}); give the --seed (and --families) it was synthesised "
                             "with")
        changed += row.get("thought") != problem.thought
        row["thought"] = problem.thought
    return write_manifest(out, rows, overwrite=overwrite), changed
