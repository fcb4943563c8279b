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
# # 01 · The codec tokenizer
#
# A language model reads tokens, not waveforms. A **neural codec** turns speech into a small grid of
# discrete codes (K codebooks × F frames) and back. In this notebook you will:
#
# 1. listen to a spoken question and to its reconstruction by `s2s-tiny`, our 4 kbit/s codec;
# 2. look at the spectrograms and at the code grid the language model will read;
# 3. measure quality against bitrate by decoding with fewer codebooks;
# 4. train a (very) small codec yourself with the same command the shipped codec was trained with.
#
# Read alongside: `tutorials/01-codec-tokenizer.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: the shipped codec s2s-tiny, measured on 12 held-out sentences, and a training demo
# of a few steps: about two minutes), "smoke" (4 sentences, for the tests: seconds) or "reproduce" (the shipped codec's
# own training run, configs/codec/tiny.yaml on 6,000 sentences, then 100 held-out ones: about an hour on 2 CPU cores).
MODE = "shipped"

# %%
import os
import tempfile
from pathlib import Path

import torch
from IPython.display import Audio, display

from s2s import audio, plots
from s2s.codecs import load_codec
from s2s.demo import EXAMPLE_QUESTION
from s2s.eval import QualityMetrics
from s2s.notebook import check_mode

check_mode(MODE)
REPRODUCE = MODE == "reproduce"
WORKDIR = Path("../runs/notebook-01").resolve() if REPRODUCE else Path(tempfile.mkdtemp(prefix="s2s-nb01-"))
WORKDIR.mkdir(parents=True, exist_ok=True)
print("working in", WORKDIR)

# %% [markdown]
# ## 1. Listen: original and reconstruction

# %%
wav, rate = audio.load(EXAMPLE_QUESTION)           # [channels, samples]
codec = load_codec("s2s-tiny")
print(codec)
codes = codec.encode(wav[None], rate)              # [batch, codebooks, frames]
reconstruction = codec.decode(codes)               # [batch, 1, samples] at codec.sample_rate
print("codes", tuple(codes.shape), "at", codec.frame_rate, "frames/s =", codec.bitrate / 1000, "kbit/s")
display(Audio(wav[0].numpy(), rate=rate), Audio(reconstruction[0, 0].numpy(), rate=codec.sample_rate))

# %% [markdown]
# ## 2. Look: spectrograms and the code grid
#
# The reconstruction keeps the harmonics (horizontal stripes) and formants of the original. Each column of
# the code grid is one 20 ms frame; row 0 carries the coarse shape, later rows refine what earlier rows missed
# (that is what *residual* quantisation means).

# %%
plots.plot_spectrograms({"original": wav[0], "s2s-tiny reconstruction": reconstruction[0, 0]}, codec.sample_rate);

# %%
plots.plot_codes(codes[0], codec.frame_rate);

# %% [markdown]
# ## 3. Bitrate against quality
#
# Decoding only the first k codebooks gives a k × 500 bit/s codec for free. STOI (intelligibility, 0 to 1)
# and log-mel distance (lower is better) show what each codebook adds. We measure on sentences in
# **held-out voices** the codec never heard.

# %%
from s2s.eval.codec import evaluate_codec
from s2s.data.speech import render_speech

manifest = render_speech(WORKDIR / "heldout", n={"smoke": 4, "shipped": 12, "reproduce": 100}[MODE], seed=7,
                         split="test")
rows = {k: evaluate_codec(codec, manifest, num_codebooks=k, progress=False) for k in (1, 2, 4, 8)}
for k, r in rows.items():
    print(f"{k} codebooks  {r['bitrate_bps'] / 1000:4.1f} kbit/s  STOI {r['stoi']:.3f}  log-mel {r['logmel_dist']:.3f}")
plots.plot_curve([r["bitrate_bps"] / 1000 for r in rows.values()],
                 {"STOI": [r["stoi"] for r in rows.values()]}, "kbit/s", "STOI", "s2s-tiny on held-out voices");

# %% [markdown]
# ## 4. Train a codec
#
# The shipped codec was trained with `s2s fit --config configs/codec/tiny.yaml` on 6,000 espeak-ng sentences.
# Here (shipped and smoke modes) we train a miniature version for a few steps, just to see the machinery: the same
# config, with the model shrunk on the command line. In reproduce mode this is the real run.

# %%
from s2s.cli import main as s2s

CONFIG = str(Path("../configs/codec/tiny.yaml").resolve())
os.chdir(WORKDIR)   # the config's relative paths (data/, runs/) now land in WORKDIR
render_speech("data/codec-speech/train", n=6000 if REPRODUCE else 40, seed=0, split="train")
render_speech("data/codec-speech/test", n=200 if REPRODUCE else 4, seed=0, split="test")
shrink = ["--model.init_args.encoder_dim", "32", "--model.init_args.decoder_dim", "32",
          "--model.init_args.decoder_layers", "2", "--model.init_args.encoder_layers", "1",
          "--model.init_args.warmup_steps", "5", "--data.init_args.val_clips", "2",
          "--trainer.max_steps", "30", "--trainer.val_check_interval", "15",
          "--trainer.log_every_n_steps", "5", "--trainer.enable_progress_bar", "false"] if not REPRODUCE else []
s2s(["fit", "--config", CONFIG, *shrink])

# %%
metrics = sorted(Path("runs/codec-tiny").glob("lightning_logs/version_*/metrics.csv"))[-1]
plots.plot_training_curves(metrics, ["train/mel", "train/stft", "val/mel"]);

# %% [markdown]
# Yours beside the shipped codec of section 1, on the example question:

# %%
mine = load_codec("runs/codec-tiny/export")
mine_reconstruction = mine.decode(mine.encode(wav[None], rate))
display(Audio(mine_reconstruction[0, 0].numpy(), rate=mine.sample_rate))
for name, (heard, sample_rate) in {"yours": (mine_reconstruction, mine.sample_rate),
                                   "s2s-tiny": (reconstruction, codec.sample_rate)}.items():
    quality = QualityMetrics()
    quality.update(heard, wav[None], sample_rate, reference_sample_rate=rate)
    print(f"{name:>8}:", {k: round(v, 3) for k, v in quality.compute().items() if v is not None})

# %% [markdown]
# A few steps give noise; the real run (reproduce mode) reaches the figures in the model card
# (`s2s/assets/codecs/s2s-tiny/README.md`). Next: `02-spoken-reasoning-data.ipynb`.
