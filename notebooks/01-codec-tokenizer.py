# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# 4. train a (very) small codec yourself with the same command the full model used.
#
# Read alongside: `tutorials/01-codec-tokenizer.md`.

# %% tags=["parameters"]
# Parameters: "smoke" runs in about a minute (the test suite uses it); "full" renders more
# speech and trains the real configuration (about an hour on 2 CPU cores).
MODE = "smoke"

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

assert MODE in ("smoke", "full"), MODE
SMOKE = MODE == "smoke"
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb01-")) if SMOKE else Path("runs/notebook-01").resolve()
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

manifest = render_speech(WORKDIR / "heldout", n=4 if SMOKE else 100, seed=7, split="test")
rows = {k: evaluate_codec(codec, manifest, num_codebooks=k, progress=False) for k in (1, 2, 4, 8)}
for k, r in rows.items():
    print(f"{k} codebooks  {r['bitrate_bps'] / 1000:4.1f} kbit/s  STOI {r['stoi']:.3f}  log-mel {r['logmel_dist']:.3f}")
plots.plot_curve([r["bitrate_bps"] / 1000 for r in rows.values()],
                 {"STOI": [r["stoi"] for r in rows.values()]}, "kbit/s", "STOI", "s2s-tiny on held-out voices");

# %% [markdown]
# ## 4. Train a codec
#
# The shipped codec was trained with `s2s fit --config configs/codec/tiny.yaml` on 6,000 espeak-ng sentences.
# In smoke mode we train a miniature version for a few steps, just to see the machinery: the same config,
# with the model shrunk on the command line. In full mode this is the real run.

# %%
from s2s.cli import main as s2s

CONFIG = str(Path("../configs/codec/tiny.yaml").resolve())
os.chdir(WORKDIR)   # the config's relative paths (data/, runs/) now land in WORKDIR
render_speech("data/codec-speech/train", n=40 if SMOKE else 6000, seed=0, split="train")
render_speech("data/codec-speech/test", n=4 if SMOKE else 200, seed=0, split="test")
shrink = ["--model.init_args.encoder_dim", "32", "--model.init_args.decoder_dim", "32",
          "--model.init_args.decoder_layers", "2", "--model.init_args.encoder_layers", "1",
          "--model.init_args.warmup_steps", "5", "--data.init_args.val_clips", "2",
          "--trainer.max_steps", "30", "--trainer.val_check_interval", "15",
          "--trainer.log_every_n_steps", "5", "--trainer.enable_progress_bar", "false"] if SMOKE else []
s2s(["fit", "--config", CONFIG, *shrink])

# %%
metrics = sorted(Path("runs/codec-tiny").glob("lightning_logs/version_*/metrics.csv"))[-1]
plots.plot_training_curves(metrics, ["train/mel", "train/stft", "val/mel"]);

# %%
mine = load_codec("runs/codec-tiny/export")
mine_reconstruction = mine.decode(mine.encode(wav[None], rate))
display(Audio(mine_reconstruction[0, 0].numpy(), rate=mine.sample_rate))
quality = QualityMetrics()
quality.update(mine_reconstruction, wav[None], mine.sample_rate, reference_sample_rate=rate)
print({k: round(v, 3) for k, v in quality.compute().items() if v is not None})

# %% [markdown]
# A few smoke steps give noise; the full run reaches the figures in the model card
# (`s2s/assets/codecs/s2s-tiny/README.md`). Next: `02-spoken-reasoning-data.ipynb`.
