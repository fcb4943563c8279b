# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Spoken reasoning data
#
# Audio paired with step-by-step reasoning barely exists. s2s makes its own, offline: a generator writes
# reasoning problems (question, thought, answer, reply), espeak-ng speaks the question in one of hundreds of
# voices and the reply in the assistant's voice, and a manifest ties it together. In this notebook you will
# see how the question grammar holds phrasings and sizes out of training, generate a corpus, listen to it,
# read its manifest, check that test voices are held out, validate it and turn its audio into codec tokens
# once, for training.
#
# Read alongside: `tutorials/02-spoken-reasoning-data.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: a corpus of 60 questions in a temporary folder, tokenised by the shipped codec, in
# about 15 s), "smoke" (a dozen, for the tests: 5 s) or "reproduce" (the 4,000-question training corpus of
# the default model and its 200-question test set, written to data/synth/ of the repository: minutes).
MODE = "shipped"

# %%
import random
import re
import tempfile
from pathlib import Path

from IPython.display import Audio, display

from s2s.codecs import load_codec
from s2s.data.manifest import read_manifest, validate_manifest
from s2s.data.problems import FAMILIES, OUT_OF_SCOPE_FAMILY, generate_problem, generate_problems, held_out_phrases
from s2s.data.synth import synthesize
from s2s.data.token_cache import tokenize_manifest
from s2s.data.voices import HELD_OUT_BASES, HELD_OUT_VARIANTS, voices
from s2s.notebook import check_mode

check_mode(MODE)
REPRODUCE = MODE == "reproduce"  # the only mode that writes into the repository (data/, as the model card's commands)
WORKDIR = Path("../data").resolve() if REPRODUCE else Path(tempfile.mkdtemp(prefix="s2s-nb02-"))
print("working in", WORKDIR)

# %% [markdown]
# ## 1. Problems: six families, many phrasings
#
# Each problem carries its spoken question (numbers as words, for the synthesiser), the same question
# written with digits, a step-by-step thought, the canonical answer and a reply sentence.

# %%
rng = random.Random(0)
for family in FAMILIES:
    p = generate_problem(rng, family)
    print(f"[{family}] {p.question}\n  thought: {p.thought.replace(chr(10), ' | ')}\n  answer: {p.answer}   reply: {p.reply}\n")

# %% [markdown]
# ## 2. The grammar and its splits
#
# A question is a template filled with parts: an opening, a verb, a sentence shape, a filler said before it,
# names, objects and numbers (`s2s/data/grammar.py`). Each slot lists the productions a model trains on and,
# apart, a few held out. The `phrasing` split uses only the held-out ones where a slot has them; the `stretch`
# split keeps the training phrasings and draws sizes just beyond training. So a test can ask "does it read
# the question?" and "does it carry the method further?", not only "does it remember?".

# %%
for split in ("train", "phrasing", "stretch"):
    print(f"[{split}]")
    for p in generate_problems(3, seed=0, families=["arithmetic"], split=split):
        print(f"  {p.question_written}   -> {p.answer}   (held-out parts: {p.held_out})")

held_out = held_out_phrases()
for slot in ("filler", "ask_sum"):
    print(f"held out of {slot}: {held_out[slot]}")

# %% [markdown]
# Thousands of surface forms: 2,000 training problems per family, numbers replaced by N, and the distinct
# questions that remain. A model cannot learn these sentences by heart; it has to read them.

# %%
shapes = {family: {re.sub(r"\d+", "N", p.question_written)
                   for p in generate_problems(2000, seed=0, families=[family])} for family in FAMILIES}
for family, forms in shapes.items():
    print(f"{family:<13} {len(forms):5d} distinct forms, e.g. {sorted(forms)[0]}")
print(f"{'all':<13} {sum(len(f) for f in shapes.values()):5d}")

# %% [markdown]
# Some questions are outside what the model can work on. They get their own family, with a fixed thought
# and a reply that declines, so a model learns to say so instead of inventing a number.

# %%
p = generate_problems(1, seed=0, families=[OUT_OF_SCOPE_FAMILY])[0]
print(f"{p.question}\n  thought: {p.thought.replace(chr(10), ' | ')}\n  answer: {p.answer}   reply: {p.reply}")

# %% [markdown]
# ## 3. Voices, and the ones we hold out
#
# A voice is `base+variant`. Every voice with a held-out variant or base is reserved for testing, so test
# figures always measure speakers no model has heard.

# %%
print(len(voices("train")), "training voices,", len(voices("test")), "held-out voices")
print("held-out variants:", ", ".join(HELD_OUT_VARIANTS), "| held-out bases:", ", ".join(HELD_OUT_BASES))

# %% [markdown]
# ## 4. Render a corpus and listen

# %%
n_train, n_test = {"smoke": (12, 6), "shipped": (60, 20), "reproduce": (4000, 200)}[MODE]
train = synthesize(WORKDIR / "synth" / "train", n=n_train, seed=0, split="train", overwrite=not REPRODUCE)
test = synthesize(WORKDIR / "synth" / "test", n=n_test, seed=0, split="test", overwrite=not REPRODUCE)
rows = read_manifest(train)
for r in rows[:8]:
    print(f"{r['id']}  {r['family']:<12} {r['answer']:>5}  {r['question_voice']:<28} {r['question_duration_s']:4.1f} s  {r['question']}")

# %%
example = rows[0]
print(example["question"], "->", example["reply"])
display(Audio(str(train.parent / example["question_audio"])), Audio(str(train.parent / example["reply_audio"])))

# %% [markdown]
# ## 5. Held out means held out
#
# The test manifest's question voices are all held-out voices, and the training manifest has none of them.

# %%
train_voices = {r["question_voice"] for r in rows}
test_voices = {r["question_voice"] for r in read_manifest(test)}
print("overlap between train and test voices:", train_voices & test_voices or "none")
assert not train_voices & test_voices

# %% [markdown]
# ## 6. Validate, then tokenise once
#
# `s2s data validate` lists every problem with its line number. `s2s data tokenize` encodes every audio
# file once into a sharded cache keyed by the codec's fingerprint: another codec, or a retrained one, gets
# its own cache, and an interrupted run resumes where it stopped.

# %%
print("problems:", validate_manifest(train) or "none")
cache = tokenize_manifest(train, load_codec("s2s-tiny"))
codes = cache.get(example["id"], "question_audio")
print(len(cache), "files in", cache.folder.name, "| question codes:", tuple(codes.shape), "(codebooks, frames)")

# %% [markdown]
# Next: `03-interleaved-sequences.ipynb`, where these codes meet the thought text in one sequence.
