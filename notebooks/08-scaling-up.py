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
# # 08 · Scaling up: pretrained LLMs and codecs, DDP, FSDP, many nodes
#
# The tiny models of the earlier notebooks train on a laptop CPU. The research-scale model,
# `configs/lm/qwen2.5-0.5b-mimi.yaml`, is a pretrained 0.5 B parameter LLM (Qwen2.5-0.5B) that learns to hear and
# speak the tokens of a pretrained codec (Mimi), trained on many GPUs, perhaps on many nodes. The code is the
# same: only YAML changes. In this notebook you will, on this CPU and offline:
#
# 1. see how `backbone: Qwen/Qwen2.5-0.5B` and `codec: mimi` resolve, build tiny random stand-ins of both, and
#    watch the LLM's embedding table grow to hold the speech tokens;
# 2. compose configs: a model config with a strategy overlay (and overlays of your own);
# 3. run DDP for real, on 2 CPU processes, and check that both ranks end with identical weights after training
#    on different batches;
# 4. build the FSDP strategy and work out what sharding buys for a 0.5 B model;
# 5. launch across "nodes" with torchrun, and read what SLURM tells Lightning;
# 6. kill a run with SIGKILL in the middle of an epoch, resume it, and see the loss curve continue exactly.
#
# Read alongside: `tutorials/08-scaling-up.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default) and "smoke" (the tests) run the same here, offline, in about a minute: s2s ships no
#       research-scale model, so tiny random stand-ins for Qwen2.5-0.5B and Mimi are built in seconds and trained
#       for a few steps on this CPU; "reproduce" loads the real Qwen2.5-0.5B + Mimi and runs DDP on this node's GPUs,
#       which needs GPUs and the weights in the Hugging Face cache (`hf download Qwen/Qwen2.5-0.5B` and
#       `hf download kyutai/mimi`); where either is missing it says so and runs the CPU demonstrations instead.
MODE = "shipped"

# %%
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

from s2s.notebook import check_mode

check_mode(MODE)
REPRODUCE = MODE == "reproduce"
if not REPRODUCE:
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the network (read when huggingface_hub is imported)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import matplotlib.pyplot as plt
import torch
import yaml
from huggingface_hub import constants, try_to_load_from_cache
from jsonargparse import ArgumentParser
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import FSDPStrategy
from transformers import MimiConfig, MimiModel, Qwen2Config, Qwen2ForCausalLM

import s2s
from s2s.cli import main as s2s_main
from s2s.codecs import load_codec
from s2s.codecs.hf import PRETRAINED
from s2s.configs import config_changes, merged_config, write_overlay
from s2s.data.synth import synthesize
from s2s.lm.data import ReasoningDataModule
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import load_text_tokenizer, train_text_tokenizer
from s2s.lm.vocab import SPECIAL_TOKENS, JointVocab
from s2s.plots import metric_by_version
from s2s.scale import GIB, parameter_count, state_gib_per_gpu
from s2s.training import AtomicCheckpointIO, RunsOnLoad

ROOT = Path(s2s.__file__).resolve().parents[1]  # the repository: configs are read from here, by absolute path
QWEN_CONFIG, SCALE = ROOT / "configs" / "lm" / "qwen2.5-0.5b-mimi.yaml", ROOT / "configs" / "scale"
GPUS = torch.cuda.device_count()
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb08-"))  # every file this notebook writes goes here
# Child processes: the package from this checkout, one thread each (2 of them share these cores), no network.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
torch.set_num_threads(1)  # as the child processes: in-process and child runs then compute bit for bit alike
print(f"working in {WORKDIR} | {GPUS} GPU(s) | mode {MODE}")

# A small spoken reasoning corpus (notebook 02): 12 questions spoken by espeak-ng, replies in the assistant voice.
MANIFEST = synthesize(WORKDIR / "data" / "synth" / "train", n=12, split="train", workers=1, progress=False)
print("corpus:", MANIFEST)

# %% [markdown]
# ## 1. A pretrained LLM and a pretrained codec
#
# In `configs/lm/qwen2.5-0.5b-mimi.yaml` the model is two names:
#
# ```yaml
# model:
#   class_path: s2s.lm.module.SpeechReasoningModule
#   init_args:
#     backbone: Qwen/Qwen2.5-0.5B   # any causal LM on the hub or a local folder
#     codec: mimi
#     num_codebooks: 8
# ```
#
# * `backbone` goes to `AutoModelForCausalLM.from_pretrained`: a **folder** on disk is read as it is; a **hub
#   id** is looked up in the Hugging Face cache (`~/.cache/huggingface/hub`, or under `$HF_HOME`), and downloaded
#   into it on first use. The tokenizer comes from the same place (`tokenizer` defaults to the backbone).
# * `codec` goes to `load_codec`: `mimi` is a pretrained name (`kyutai/mimi`, through transformers'
#   `MimiModel`), found the same way; a folder written by `save_pretrained` works too.
#
# Offline (`HF_HUB_OFFLINE=1`, as here unless in reproduce mode) a name that is not in the cache fails at once,
# with a message that says what is missing and where to put it; no retries, no traceback from deep inside.

# %%
QWEN_ID, MIMI_ID = "Qwen/Qwen2.5-0.5B", PRETRAINED["mimi"]
cached = {repo: isinstance(try_to_load_from_cache(repo, "model.safetensors"), str) for repo in (QWEN_ID, MIMI_ID)}
REAL_CACHED = all(cached.values())
print(f"Hugging Face cache: {constants.HF_HUB_CACHE} (offline: {constants.HF_HUB_OFFLINE})")
for repo, here in cached.items():
    print(f"  {repo:20s} {'cached' if here else 'not cached'}")

if not REAL_CACHED and constants.HF_HUB_OFFLINE:
    for what, load in (("codec", lambda: load_codec("mimi")), ("tokenizer", lambda: load_text_tokenizer(QWEN_ID))):
        try:
            load()
        except (ValueError, FileNotFoundError) as error:  # CodecWeightsNotFound is a FileNotFoundError
            print(f"\n{what}: {type(error).__name__}: {error}")
elif not REAL_CACHED:
    print("Not cached, and this notebook does not download 1 GB unasked. Fetch them once, then rerun:\n"
          f"  hf download {QWEN_ID}\n  hf download {MIMI_ID}")

# %% [markdown]
# ### Tiny random stand-ins
#
# To see everything work offline, we build the same two kinds of model at toy size, with random weights, and
# save them as folders exactly as the hub would deliver them: a Qwen2 causal LM (same architecture, 2 blocks
# of width 32, tied input and output embeddings as in Qwen2.5-0.5B) with a tokenizer beside it, and a Mimi
# codec with 8 codebooks of 64 codes (the real one has 32 of 2048). The tokenizer is a small byte-level BPE
# trained on the corpus (`train_text_tokenizer`), standing in for Qwen's own 151,665 ids.

# %%
REAL_QWEN = dict(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                 tie_word_embeddings=True)  # Qwen2.5-0.5B's config.json, the parts that size it
QWEN_TINY, MIMI_TINY = WORKDIR / "qwen-tiny", WORKDIR / "mimi-tiny"

train_text_tokenizer(MANIFEST, vocab_size=300).save_pretrained(QWEN_TINY)  # beside the backbone, as on the hub
tokenizer = load_text_tokenizer(QWEN_TINY)  # as the LM will read it (saving may add a special id)
TINY_QWEN = {**REAL_QWEN, "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
             "max_position_embeddings": 2048}
torch.manual_seed(0)
Qwen2ForCausalLM(Qwen2Config(**TINY_QWEN)).save_pretrained(QWEN_TINY)

TINY_MIMI = dict(hidden_size=32, num_filters=4, codebook_dim=16, vector_quantization_hidden_dimension=16,
                 num_quantizers=8, codebook_size=64, upsample_groups=32, num_hidden_layers=2, intermediate_size=64,
                 num_attention_heads=2, num_key_value_heads=2, sliding_window=4)
mimi = MimiModel(MimiConfig(**TINY_MIMI)).eval()
for name, buffer in mimi.named_buffers():
    if name.endswith("embed_sum"):  # zeros at init: every code would decode alike
        buffer.normal_()
mimi.save_pretrained(MIMI_TINY)

for folder in (QWEN_TINY, MIMI_TINY):
    print(f"{folder.name}: {', '.join(sorted(p.name for p in folder.iterdir()))}")
print("\n              real Qwen2.5-0.5B   tiny stand-in")
for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads"):
    print(f"  {key:20s} {REAL_QWEN[key]:>12,} {TINY_QWEN[key]:>14,}")

# %% [markdown]
# ### One vocabulary for text and speech
#
# `SpeechReasoningLM` reads and writes text and speech through one embedding table and one output layer, so
# every speech token needs an id (notebook 03): the tokenizer's T text ids, then the S special ids
# (`<think>`, `<speak>`, ...), then one block of C ids for each of the K codebooks. A pretrained backbone has
# rows for its text ids only; `build_backbone` resizes its embeddings to the joint size. The text rows keep
# their trained values (and meaning); the new rows are drawn from the spread of the old ones.

# %%
lm = SpeechReasoningLM(backbone=str(QWEN_TINY), codec=str(MIMI_TINY), num_codebooks=8)
vocab = lm.vocab
T, S, K, C = vocab.text_vocab_size, len(SPECIAL_TOKENS), vocab.num_codebooks, vocab.codebook_size
print(f"joint vocabulary: {T} text + {S} special + {K} x {C} speech = {vocab.size} ids")
print(f"  text 0..{T - 1} | specials {T}..{T + S - 1} | codebook 0 {T + S}..{T + S + C - 1} | ... | "
      f"codebook {K - 1} {T + S + (K - 1) * C}..{vocab.size - 1}")

original = Qwen2ForCausalLM.from_pretrained(QWEN_TINY)
old, new = original.get_input_embeddings().weight, lm.backbone.get_input_embeddings().weight
tied = lm.backbone.get_output_embeddings().weight.data_ptr() == new.data_ptr()
print(f"\nembeddings {tuple(old.shape)} -> {tuple(new.shape)}; output layer tied to them: {tied}")
rows = old.shape[0]  # the backbone's own rows (the LM may add a text id, a pad token, after them)
print(f"old rows unchanged: {torch.equal(new[:rows], old)}; spread (std) of the old rows {old.std(0).mean():.4f},"
      f" of the new rows {new[rows:].std(0).mean():.4f}")
added = vocab.size - old.shape[0]
print(f"parameters: {parameter_count(original):,} -> {parameter_count(lm.backbone):,} "
      f"(+{added * old.shape[1]:,} = {added} new rows x width {old.shape[1]})")

# %% [markdown]
# ### The same arithmetic at full size
#
# On PyTorch's `meta` device a model has shapes but no memory, so the real architectures can be built and
# counted in a blink, with no weights and no download. Qwen2.5-0.5B's table has 151,936 rows (its 151,665
# tokenizer ids, padded); the joint vocabulary adds 13 specials and 8 x 2048 Mimi ids.

# %%
with torch.device("meta"):  # shapes only
    real_qwen = Qwen2ForCausalLM(Qwen2Config(**REAL_QWEN))
    real_mimi = MimiModel(MimiConfig())  # MimiConfig's defaults are kyutai/mimi's: 32 codebooks of 2048
REAL_VOCAB = JointVocab(text_vocab_size=151_665, num_codebooks=8, codebook_size=real_mimi.config.codebook_size)
WIDTH = REAL_QWEN["hidden_size"]
N_PARAMS = parameter_count(real_qwen) + (REAL_VOCAB.size - REAL_QWEN["vocab_size"]) * WIDTH  # tied: one table grows
BLOCK_PARAMS = parameter_count(real_qwen.model.layers[0])
ROOT_PARAMS = N_PARAMS - REAL_QWEN["num_hidden_layers"] * BLOCK_PARAMS  # embeddings and the final norm
print(f"Qwen2.5-0.5B {parameter_count(real_qwen):,} parameters; joint vocabulary {REAL_VOCAB.size:,} ids "
      f"-> {N_PARAMS:,} parameters ({REAL_QWEN['num_hidden_layers']} blocks of {BLOCK_PARAMS:,}, "
      f"embeddings {ROOT_PARAMS:,})")
print(f"Mimi {parameter_count(real_mimi):,} parameters (frozen: it only turns audio into ids and back), "
      f"{real_mimi.config.frame_rate} frames/s, {real_mimi.config.num_quantizers} codebooks of "
      f"{real_mimi.config.codebook_size}")

if REPRODUCE and REAL_CACHED:  # the real thing, on whatever device is here
    real_lm = SpeechReasoningLM(backbone=QWEN_ID, codec="mimi", num_codebooks=8)
    print(f"\nloaded {QWEN_ID} + mimi: vocabulary {real_lm.vocab}, {parameter_count(real_lm.backbone):,} parameters")
    del real_lm
elif REPRODUCE:
    print(f"\nreproduce mode: {QWEN_ID} and {MIMI_ID} are not both cached; `hf download` them to load the real model.")

# %% [markdown]
# ## 2. Composing configs: overlays
#
# `s2s fit` is LightningCLI. Every `--config` is laid over the ones before it: mappings merge key by key,
# anything else (a value, a list) is replaced. So a strategy lives in its own small file, `configs/scale/*.yaml`,
# and the model config never learns how many GPUs there are. `--print_config` shows the merged result without
# building anything (no weights are loaded, so it works offline); `merged_config` (`s2s/configs.py`) reads it back
# as a dict, and `config_changes` lists every key an overlay changed.

# %%
alone = merged_config(QWEN_CONFIG)
with_fsdp = merged_config(QWEN_CONFIG, SCALE / "fsdp.yaml")
print("s2s fit --config configs/lm/qwen2.5-0.5b-mimi.yaml --config configs/scale/fsdp.yaml --print_config")
print(yaml.safe_dump({"trainer": {k: with_fsdp["trainer"][k] for k in
                                  ("accelerator", "devices", "num_nodes", "strategy", "precision",
                                   "use_distributed_sampler")}}, sort_keys=False))
print("what the fsdp.yaml overlay changed:")
for key, (before, after) in config_changes(alone, with_fsdp).items():
    print(f"  {key}: {before!r} -> {after!r}")

# %% [markdown]
# Overlays of your own work the same way. For the CPU demonstrations below we write two: `shrink.yaml` makes
# the run a few steps of tiny batches (note `callbacks`: a list, so it is restated whole, with a checkpoint every
# 2 steps instead of 500), and `local.yaml` points the model and the data at what this machine has: the tiny
# folders and the corpus. With `configs/scale/ddp-cpu.yaml` on top, the research config runs on 2 CPU processes.

# %%
CKPT_DIR = "runs/lm-qwen-mimi/checkpoints"  # relative: each run's own working folder
SHRINK, LOCAL = WORKDIR / "shrink.yaml", WORKDIR / "local.yaml"
write_overlay(SHRINK, {
    "trainer": {"max_steps": 6, "val_check_interval": None, "limit_val_batches": 0, "log_every_n_steps": 1,
                "enable_progress_bar": False, "enable_model_summary": False,
                "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                               "init_args": {"dirpath": CKPT_DIR, "save_last": True, "save_top_k": 0,
                                             "every_n_train_steps": 2}},
                              {"class_path": "s2s.training.CheckpointOnStop", "init_args": {"dirpath": CKPT_DIR}}]},
    "model": {"init_args": {"lr": 0.003, "warmup_steps": 1, "val_answer_examples": 0}},
    "data": {"init_args": {"val": None, "text_examples": 8, "batch_size": 2, "speech_batch_size": 2,
                           "num_workers": 0}},
})
write_overlay(LOCAL, {"model": {"init_args": {"backbone": str(QWEN_TINY), "codec": str(MIMI_TINY)}},
                      "data": {"init_args": {"train": str(MANIFEST), "codec": str(MIMI_TINY)}}})
print(LOCAL.read_text())
cpu_config = merged_config(QWEN_CONFIG, SCALE / "ddp-cpu.yaml", SHRINK, LOCAL)
print("what ddp-cpu.yaml + shrink.yaml + local.yaml changed:")
for key, (before, after) in config_changes(alone, cpu_config).items():
    print(f"  {key}: {before!r} -> {after!r}")

# %% [markdown]
# ## 3. DDP, for real, on 2 CPU processes
#
# Distributed data parallel runs one process (a **rank**) per device, each with a whole copy of the model:
#
# 1. every rank starts from the same weights (rank 0's are broadcast when the model is wrapped);
# 2. every rank takes **its own batch** and computes its own gradients;
# 3. during the backward pass the gradients are **all-reduced** (averaged across ranks, bucket by bucket, while
#    the backward pass is still running);
# 4. every rank applies the same averaged gradient with the same optimizer, so the copies stay identical.
#
# The batch size in a config is per rank: an optimizer step sees `batch_size x devices x num_nodes` examples
# (times `accumulate_grad_batches`). Who takes which batch? Usually Lightning wraps the sampler in a
# `DistributedSampler`; s2s samplers are batch samplers that shard themselves (every rank takes every
# world-size-th batch of the same epoch, `s2s/data/resumable.py`), so `s2s fit` sets
# `use_distributed_sampler: false`. On GPUs the backend is NCCL; on CPUs gloo, which is what runs here.
#
# Before launching many processes, encode the corpus once: the datamodule caches the codec tokens of every
# question and reply beside the manifest, and ranks that find the cache do not each encode it again. Building
# the datamodule here from the merged config does that, and gives us the epoch's batch list to check against.

# %%
REAL_GPU = REPRODUCE and GPUS >= 1 and REAL_CACHED  # the real models on this node's GPUs
if REAL_GPU:
    LOCAL_REAL = write_overlay(WORKDIR / "local-real.yaml", {"data": {"init_args": {"train": str(MANIFEST)}}})
    DDP_CONFIGS = [QWEN_CONFIG, SCALE / "ddp.yaml", SHRINK, LOCAL_REAL]
    NPROC = min(GPUS, 2)  # two ranks show it; each saves a full copy of the weights (2 GB) for the comparison
else:
    if REPRODUCE:
        print("reproduce mode, but " + ("no GPU here" if GPUS == 0 else "the weights are not cached")
              + ": the DDP demonstration runs on 2 CPU processes with the tiny models.")
    DDP_CONFIGS, NPROC = [QWEN_CONFIG, SCALE / "ddp-cpu.yaml", SHRINK, LOCAL], 2
data_args = merged_config(*DDP_CONFIGS)["data"]["init_args"]
datamodule = ReasoningDataModule(**data_args)
datamodule.setup("fit")  # encodes (and caches) the corpus's questions and replies with the codec
print(f"one epoch: {len(datamodule.train_set)} examples ({data_args['text_examples']} written problems "
      f"+ {len(datamodule.train_set.rows)} spoken questions as codec tokens), batches of {data_args['batch_size']}")

# %% [markdown]
# The launch is `torchrun` (here `python -m torch.distributed.run`, the same program): it starts
# `--nproc_per_node` copies of the command and tells each who it is through environment variables. Lightning
# reads them and joins the group. One more callback, `RecordRun` (`s2s/training.py`), added on the command line
# (`+=` appends to the config's list of callbacks), makes each rank save its final weights, the questions of
# the batches it trained on, and the variables torchrun gave it.

# %%
DDP_DIR = WORKDIR / "ddp"
DDP_DIR.mkdir()
RECORD = {"class_path": "s2s.training.RecordRun", "init_args": {"field": "question_written"}}
ddp_cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", NPROC, "-m", "s2s.cli",
           "fit", *[arg for c in DDP_CONFIGS for arg in ("--config", c)], "--trainer.devices", NPROC,
           "--trainer.max_steps", 2, f"--trainer.callbacks+={json.dumps(RECORD)}"]
print("torchrun --standalone --nproc_per_node", NPROC, "-m s2s.cli fit",
      " ".join(f"--config {Path(c).name}" for c in DDP_CONFIGS), f"--trainer.devices {NPROC} --trainer.max_steps 2",
      f"--trainer.callbacks+='{json.dumps(RECORD)}'")
ddp = subprocess.run([str(arg) for arg in ddp_cmd], cwd=DDP_DIR, env=ENV, capture_output=True, text=True, timeout=600)
print("exit code", ddp.returncode)
if ddp.returncode != 0:
    print(ddp.stdout[-3000:], ddp.stderr[-3000:])
print("\n".join(line for line in ddp.stderr.splitlines() if "distributed" in line.lower() or "Trainer.fit" in line))

# %% [markdown]
# Same weights? Different batches?

# %%
ranks = [torch.load(DDP_DIR / f"rank{r}.pt", weights_only=True) for r in range(NPROC)]
first, last = ranks[0]["weights"], ranks[-1]["weights"]
identical = all(torch.equal(tensor, last[name]) for name, tensor in first.items())
print(f"world size {ranks[0]['world']}: {len(first)} tensors, identical on every rank: {identical}")
if not REAL_GPU:
    name = "model.backbone.model.layers.0.mlp.down_proj.weight"
    moved = (first[name] - original.state_dict()[name.removeprefix("model.backbone.")]).abs().max()
    print(f"and they trained: {name} moved by up to {moved:.2e} from the saved backbone")

sampler = datamodule.train_dataloader().batch_sampler
epoch_batches = sampler.epoch_batches(0)  # the whole epoch, the same list on every rank: a function of (seed, epoch)
usable = len(epoch_batches) // NPROC * NPROC  # cut to a multiple of the world size: every rank steps equally often
for rank, saved in enumerate(ranks):
    share = epoch_batches[rank:usable:NPROC][: len(saved["batches"])]
    expected = [[datamodule.train_set[i]["question_written"] for i in batch] for batch in share]
    env = saved["env"]
    print(f"\nrank {rank} (RANK={env['RANK']}, LOCAL_RANK={env['LOCAL_RANK']}, WORLD_SIZE={env['WORLD_SIZE']}) "
          f"took batches {list(range(rank, usable, NPROC))[:len(share)]} of the epoch; as the sampler says: "
          f"{expected == saved['batches']}")
    for batch in saved["batches"]:
        print("   ", " | ".join(question[:45] for question in batch))
per_rank = data_args["batch_size"]
print(f"\neffective batch: {per_rank} per rank x {NPROC} ranks = {per_rank * NPROC} examples a step here; the real "
      f"config's 32 per GPU on 2 nodes of 8 GPUs: {32 * 8 * 2} a step")

# %% [markdown]
# ## 4. FSDP: when a copy per GPU is too much
#
# DDP keeps everything on every GPU. With Adam and mixed precision that is about **16 bytes per parameter**:
# the fp32 weights (4; Lightning's `bf16-mixed` keeps fp32 weights and computes in bf16), their fp32 gradients
# (4) and Adam's two fp32 moments (8). The usual ZeRO bookkeeping, bf16 weights and gradients (2 + 2) plus an
# fp32 master copy and the moments (12), comes to the same 16.
#
# **Fully sharded data parallel** (FSDP, ZeRO-3) cuts all three into N shards, one per rank. Each transformer
# block is a unit (`auto_wrap_policy`): just before a unit runs, its full weights are all-gathered (in bf16),
# used, and freed again; gradients are reduce-scattered, so each rank keeps only its shard's gradients and
# updates only its shard's weights and Adam moments. Memory for the model state drops to 16/N bytes a parameter
# plus the units being gathered at the moment. The price is more communication: parameters travel every step.
#
# **Activation checkpointing** (`activation_checkpointing_policy`, per block here too) trades compute for the
# other big bill, activations: only each block's input is kept for the backward pass and the block's insides are
# recomputed then, about a third more compute.
#
# `configs/scale/fsdp.yaml` says all this in YAML. Here its strategy is built as `s2s fit` would build it
# (it only runs where GPUs are).

# %%
strategy_config = yaml.safe_load((SCALE / "fsdp.yaml").read_text())["trainer"]["strategy"]
parser = ArgumentParser()
parser.add_argument("--strategy", type=FSDPStrategy)
strategy = parser.instantiate(parser.parse_object({"strategy": strategy_config})).strategy
unit_classes = tuple(strategy.kwargs["auto_wrap_policy"]._module_classes)
recomputed = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes
print(f"{type(strategy).__name__}: {strategy.sharding_strategy.name}")
print(f"  units (auto_wrap_policy):              {[c.__name__ for c in unit_classes]}")
print(f"  activation checkpointing:              {[c.__name__ for c in recomputed]}")
print(f"  checkpoints (state_dict_type):         {strategy._state_dict_type} (one file: loads on one device too)")

units = {name: parameter_count(m) for name, m in lm.named_modules() if isinstance(m, unit_classes)}
root = parameter_count(lm) - sum(units.values())
print("\nthe tiny LM as FSDP would cut it over 2 ranks (each unit's weights flattened, then split in 2):")
for name, n in [*units.items(), ("(root: embeddings, final norm)", root)]:
    print(f"  {name:34s} {n:>7,} parameters -> {-(-n // 2):>7,} per rank")

# %% [markdown]
# And for the real model: the model state per GPU, DDP against FSDP on N GPUs (activations come on top).

# %%
GATHERED = ROOT_PARAMS + 2 * BLOCK_PARAMS  # FSDP's units in flight: the root unit and two blocks (one prefetched)
state = state_gib_per_gpu(N_PARAMS)  # DDP: the whole state on every GPU
print(f"{N_PARAMS / 1e6:.0f} M parameters x 16 bytes = {state:.1f} GiB of weights, gradients and Adam moments\n")
print(f"{'GPUs':>5} {'DDP, each':>10} {'FSDP, each':>11}")
for n in (1, 2, 8, 16):
    print(f"{n:>5} {state_gib_per_gpu(N_PARAMS, n):>8.1f} G "
          f"{state_gib_per_gpu(N_PARAMS, n, sharded=True, gathered=GATHERED):>9.2f} G")
print(f"\n(FSDP adds the units being gathered, about {2 * GATHERED / GIB:.2f} GiB in bf16.) Activations: with "
      "checkpointing the "
      f"block inputs of a batch of 32 x 1000 ids are {REAL_QWEN['num_hidden_layers'] * 32 * 1000 * WIDTH * 2 / GIB:.1f}"
      f" GiB, and the bf16 logits over {REAL_VOCAB.size:,} ids {32 * 1000 * REAL_VOCAB.size * 2 / GIB:.1f} GiB.")
if GPUS:
    total = torch.cuda.get_device_properties(0).total_memory / GIB
    print(f"this machine's GPU 0 has {total:.0f} GiB")

# %% [markdown]
# So a 0.5 B model fits DDP on a 40 GB card with room for activations, and DDP, which communicates only
# gradients, is the faster choice there. FSDP pays once the state no longer fits: a 7 B backbone needs
# 112 GB of state per GPU under DDP, 14 GB each under FSDP on 8 GPUs. Using it for another backbone means
# naming that backbone's block class in `auto_wrap_policy` (`LlamaDecoderLayer`, ...); with no class that
# matches, the whole model would be one unit and nothing would be saved.

# %% [markdown]
# ## 5. Many nodes: torchrun and SLURM
#
# Across machines, torchrun runs on **each node** with the same command except `--node_rank`; the agents meet
# at `--master_addr:--master_port` (node 0), agree on the world, and give every process its variables:
#
# | variable | meaning | 2 nodes x 8 GPUs, GPU 3 of node 1 |
# |---|---|---|
# | `WORLD_SIZE` | processes in all | 16 |
# | `RANK` | this process among all | 11 |
# | `LOCAL_RANK` | this process on its node (which GPU) | 3 |
# | `GROUP_RANK` (`NODE_RANK`) | this node | 1 |
# | `MASTER_ADDR`, `MASTER_PORT` | where rank 0 listens | `node0`, 29500 |
#
# ```bash
# torchrun --nnodes 2 --node_rank $NODE_RANK --nproc_per_node 8 --master_addr HOST0 --master_port 29500 \
#   -m s2s.cli fit --config configs/lm/qwen2.5-0.5b-mimi.yaml --config configs/scale/ddp.yaml --trainer.num_nodes 2
# ```
#
# Two "nodes" on this one machine show the handshake: two torchrun agents, one process each, meeting at
# 127.0.0.1. Each process runs `python -m s2s.scale` (`rendezvous` in `s2s/scale.py`, a check to run on a real
# cluster before a long job too): it prints what it was told and all-reduces its rank + 1 (1 + 2 = 3 on both).

# %%
with socket.socket() as probe:  # a free port for the rendezvous
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
agents = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node),
                            "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port),
                            "-m", "s2s.scale"], cwd=WORKDIR, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for node in (0, 1)]
for node, agent in enumerate(agents):
    try:
        out, err = agent.communicate(timeout=300)
    except subprocess.TimeoutExpired:  # a node that never meets its peer waits for it: stop both
        for other in agents:
            other.kill()
        out, err = agent.communicate()
    print(f"node {node} (exit code {agent.returncode}):", out.strip() or err[-2000:])

# %% [markdown]
# Under SLURM nobody types torchrun: `srun` starts one task per GPU on every node, and Lightning reads SLURM's
# own variables (`SLURM_PROCID`, `SLURM_LOCALID`, `SLURM_NODEID`, `SLURM_NTASKS`, the node list) instead. The
# script, `configs/scale/slurm.sh`:

# %%
print((SCALE / "slurm.sh").read_text())

# %% [markdown]
# What Lightning makes of a task's variables (set here by hand, as srun would for GPU 3 of the second node):

# %%
task = {"SLURM_NTASKS": "16", "SLURM_NTASKS_PER_NODE": "8", "SLURM_NNODES": "2", "SLURM_PROCID": "11",
        "SLURM_LOCALID": "3", "SLURM_NODEID": "1", "SLURM_NODELIST": "gpu[017-018]", "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "s2s"}
with mock.patch.dict(os.environ, task):
    slurm = SLURMEnvironment()
    print(f"detected: {SLURMEnvironment.detect()} | world {slurm.world_size()}, rank {slurm.global_rank()}, "
          f"local rank {slurm.local_rank()}, node {slurm.node_rank()} | rank 0 at {slurm.main_address}:"
          f"{slurm.main_port} (first node of the list; port from the job id)")

# %% [markdown]
# Clusters end jobs: time limits, pre-emption, a failed node. `#SBATCH --signal=SIGUSR1@90` asks SLURM to warn
# the job 90 s before its limit; Lightning then saves `hpc_ckpt_N.ckpt` and requeues the job (`--requeue`). The
# requeued job runs the same line with no `--ckpt_path`, and Lightning resumes from that hpc checkpoint by
# itself; a first run starts fresh. A run killed outright is submitted again with `RESUME=last`, which adds
# `--ckpt_path last` (the newest `last.ckpt`, saved every `every_n_train_steps`). That a resumed run really continues, rather than roughly, is the subject of the last section.

# %% [markdown]
# ## 6. Runs that survive a kill
#
# Three runs of the same 6 steps (the research config again, shrunk, on one CPU process):
#
# * **whole**: uninterrupted, the reference (in this process);
# * **killed**: a child process that kills itself with SIGKILL (as `kill -9` or a lost node would: no handler
#   runs, nothing is saved on the way out) as step 3 starts, in the middle of the epoch; its last
#   checkpoint was saved after 2 steps (checkpoints come every 2 steps);
# * **resumed**: the same command plus `--ckpt_path last`.

# %%
ONE_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "32-true"]
FIT_ARGS = ["--config", QWEN_CONFIG, "--config", SHRINK, "--config", LOCAL, *ONE_CPU]
KILL_AT = 3  # the killed run dies as step 3 starts: steps 0, 1, 2 done, the checkpoint saved after 2 steps on disk
for name in ("whole", "killed"):
    (WORKDIR / name).mkdir()

os.chdir(WORKDIR / "whole")  # each run's relative paths (runs/...) land in its own folder
s2s_main(["fit", *map(str, FIT_ARGS)])

# KillAtStep (s2s/training.py) is the kill: a callback that sends its own process SIGKILL as step KILL_AT starts.
KILL = {"class_path": "s2s.training.KillAtStep", "init_args": {"step": KILL_AT}}
killed = subprocess.run([sys.executable, "-m", "s2s.cli", "fit", *map(str, FIT_ARGS),
                         f"--trainer.callbacks+={json.dumps(KILL)}"], cwd=WORKDIR / "killed", env=ENV,
                        capture_output=True, text=True, timeout=600)
print("killed by SIGKILL:", killed.returncode == -signal.SIGKILL)

# %% [markdown]
# What the dead run left: `last.ckpt`, written atomically. It loads with `weights_only=True`, as tensors and
# plain values, and holds what a resume needs beyond the weights: the optimizer and scheduler, the step, the
# data loader's place in the epoch (`ResumableDataLoader.state_dict`: which epoch, how many batches handed
# out), and the random generators' states (`RandomStateCheckpoint`).

# %%
LAST = WORKDIR / "killed" / CKPT_DIR / "last.ckpt"
print("checkpoint folder:", sorted(p.name for p in LAST.parent.iterdir()))  # no half-written temporary files
state = torch.load(LAST, weights_only=True)
print("global_step:", state["global_step"], "| epoch:", state["epoch"])
print("data loader:", state["loops"]["fit_loop"]["state_dict"]["combined_loader"])
print("random generators:", list(state["callbacks"]["RandomStateCheckpoint"]))
print("Adam moments for", len(state["optimizer_states"][0]["state"]), "tensors; learning-rate schedule:",
      list(state["lr_schedulers"][0])[:3], "...")

os.chdir(WORKDIR / "killed")
s2s_main(["fit", *map(str, FIT_ARGS), "--ckpt_path", "last"])
os.chdir(WORKDIR)

# %%
# train/loss by step, one dict per logged version: the killed run is version 0, its resumption version 1.
(whole,) = metric_by_version(WORKDIR / "whole/runs/lm-qwen-mimi/lightning_logs", "train/loss")
before_kill, after_resume = metric_by_version(WORKDIR / "killed/runs/lm-qwen-mimi/lightning_logs", "train/loss")
print("step  whole      killed     resumed")
for step in sorted(whole):
    cells = [f"{d[step]:.6f}" if step in d else "-" for d in (whole, before_kill, after_resume)]
    print(f"{step:>4}  " + "  ".join(f"{c:9s}" for c in cells))
continued = {**before_kill, **after_resume}
print("killed + resumed == whole, step for step, bit for bit:", continued == whole)

fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(list(whole), list(whole.values()), "o-", color="lightgray", lw=6, label="whole run")
ax.plot(list(before_kill), list(before_kill.values()), "x-", label="killed run")
ax.plot(list(after_resume), list(after_resume.values()), "+--", label="resumed (--ckpt_path last)")
ax.axvline(1.5, color="gray", ls=":", lw=1, label="last checkpoint")
ax.axvline(KILL_AT - 0.5, color="red", lw=1, label="SIGKILL")
ax.set(xlabel="step", ylabel="train/loss", title="killed as step 3 starts, resumed from the checkpoint")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
fig.tight_layout()
plt.show()

# %% [markdown]
# Step 2 was trained twice, once before the kill and once after (the checkpoint was saved before it), and gave
# the same loss both times, as did every step after. (The saw-tooth is the data: batches that carry reply speech
# add a speech loss to the text losses.) Three things make that so: batches are a pure function of (seed,
# epoch), the loader skips exactly the batches already taken, and the random generators are restored before the
# first resumed batch, so dropout and SpecAugment draw what they would have drawn.
#
# **Atomic checkpoints.** A kill can also land *while* a checkpoint is being written. Plain `torch.save(path)`
# truncates the old file first, so a kill then leaves neither checkpoint. `AtomicCheckpointIO`, which `s2s fit`
# installs on every run, writes a temporary file beside the target and renames it over the old one, which the
# file system does in one step. A save that fails half-way (here: something that cannot be pickled) shows it:

# %%
demo = WORKDIR / "atomic"
demo.mkdir()
good = {"step": torch.tensor(2), "weights": torch.randn(1000)}
broken = {"step": torch.tensor(4), "weights": torch.randn(1000), "oops": lambda: None}  # fails while pickling
for label, save in (("torch.save", lambda ckpt, path: torch.save(ckpt, path)),
                    ("AtomicCheckpointIO", AtomicCheckpointIO().save_checkpoint)):
    target = demo / f"{label}.ckpt"
    save(good, target)
    try:
        save(broken, target)
    except Exception as error:  # any failure will do
        print(f"{label}: the second save failed ({type(error).__name__})", end="; ")
    try:
        print(f"the file still holds step {int(torch.load(target, weights_only=True)['step'])}")
    except Exception as error:
        print(f"the old checkpoint is gone: {type(error).__name__}")
print("left in the folder:", sorted(p.name for p in demo.iterdir()))

# %% [markdown]
# **Safe loading.** A checkpoint is a pickle, and unpickling can run any code the file names. With
# `weights_only=True` (every `torch.load` in s2s, and `s2s fit` resumes that way) only tensors and plain values
# are rebuilt; anything else is refused. A file that prints when it is loaded shows the difference (`RunsOnLoad`,
# `s2s/training.py`: a payload that pickle "rebuilds" by calling any function with any arguments):

# %%
payload = RunsOnLoad(print, "    >>> this ran while the checkpoint was loading <<<")
torch.save({"weights": torch.zeros(2), "payload": payload}, demo / "sneaky.ckpt")
print("weights_only=False:")
torch.load(demo / "sneaky.ckpt", weights_only=False)
print("weights_only=True:")
try:
    torch.load(demo / "sneaky.ckpt", weights_only=True)
except Exception as error:  # pickle.UnpicklingError
    lines = str(error).splitlines()
    print("    refused:", next((line.strip() for line in lines if "Unsupported global" in line), lines[0][:100]))

# %% [markdown]
# ## Exercises
#
# 1. Change `--trainer.max_steps 2` in section 3 to 4 and rerun it: do the ranks still agree? Add
#    `--trainer.accumulate_grad_batches 2`: how many examples does one optimizer step see now?
# 2. Write an overlay that trains with `format: think_while_speaking` (and its `format_options`) and print
#    the merged config: which keys changed? Would you need to touch `configs/scale/`?
# 3. Redo the memory table of section 4 for a 1.5 B and a 7 B backbone (replace `REAL_QWEN` by their
#    `config.json` values, on the meta device). From how many parameters does DDP stop fitting a 40 GB card?
# 4. Kill the run of section 6 as step 5 starts instead of 3, or checkpoint every 3 steps: which steps are
#    then trained twice? Does the curve still match?
# 5. Read `configs/scale/slurm.sh` and write the torchrun lines you would run by hand on a 4-node cluster
#    without SLURM. What changes in the model config? (Nothing.)
#
# This is the last chapter of the teaching path: back to the table of contents, `tutorials/README.md`.
