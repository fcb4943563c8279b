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
# # 04 · Hear, think, speak: the reasoning LM
#
# Everything so far meets here: a spoken question goes in, the model thinks in text, says its answer and
# speaks it. In this notebook you will:
#
# 1. load the whole pipeline (hearing, LM, codec) in one line;
# 2. hear the example question and read what the LM is given: one vector per heard token;
# 3. watch the thought, the reply and the audio stream out, and time them;
# 4. ask the same question in writing and compare: the modality gap;
# 5. see what the sequence formats of notebook 03 buy in latency;
# 6. train a small one with Lightning and watch one loss per modality (a few steps; reproduce mode: the whole
#    from-scratch recipe).
#
# Read alongside: `tutorials/04-reasoning-lm.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: the shipped default model, s2s-reasoner-tiny, and a training demo of a few steps: a
# few minutes on 2 CPU cores), "smoke" (a tiny random model built in seconds, for the tests: its words are noise) or
# "reproduce" (the shipped model, then the from-scratch recipe configs/lm/tiny.yaml trained whole, 4,000 steps on
# 4,000 spoken questions: hours).
MODE = "shipped"

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from IPython.display import Audio, display

from s2s import audio
from s2s.demo import EXAMPLE_INFO, EXAMPLE_QUESTION
from s2s.lm.batching import reply_opening, word_runs
from s2s.lm.draw import draw, draw_prompt
from s2s.lm.formats import FORMATS, SPEECH, Sequence, Turn, build_format, even_alignment
from s2s.lm.generate import build_prompt
from s2s.lm.toy import tiny_random_model
from s2s.lm.vocab import JointVocab
from s2s.notebook import check_mode
from s2s.pipeline import S2SPipeline

check_mode(MODE)
SMOKE = MODE == "smoke"  # smoke: a tiny random model; shipped and reproduce: the shipped default model
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb04-"))
print("working in", WORKDIR)

# %% [markdown]
# ## 1. The picture
#
# ```
# question audio ─> hearing ─> heard segments ─> LM ─> thought, reply text, speech tokens ─> codec decoder ─> reply
#                   frozen      one vector per         <think> t.. </think> r.. <speak> S..    streaming, a few
#                   CTC ASR     heard token            (phase masks say what may come next)   frames at a time
# ```
#
# * **Hearing** (`s2s/hearing/`) writes the question down as text, digits as digits ("What is 12 - 7?"). The
#   shipped model has two ears: pretrained Whisper tiny.en, which has heard people, and our own small conformer
#   CTC recogniser (`s2s/asr/`), trained on the corpus's voices; each is believed where it is sure. Silero VAD
#   goes first: no speech, no answer ("I did not catch a question").
# * **Heard segments** (`s2s/hearing/ctc.py`): the transcript is cut into the LM's own tokens, each with the
#   stretch of audio where it was heard (CTC compression), and the adapter turns each into one LM input
#   vector: the LM's text embedding of that token, plus `W·hidden` (the recogniser's state; `W` starts at zero)
#   where the model keeps it (`heard_hidden`: the shipped model leaves it out, which answers more questions).
# * **The LM** (`s2s/lm/model.py`, `SpeechReasoningLM`) writes a thought, the reply text and the reply's codec
#   tokens, laid out word-timed (`s2s/lm/formats/word_timed.py`: think, write the reply, then read it aloud word by word,
#   each word's length in frames first); masks per phase (`s2s/lm/generate.py`) keep every reply well formed.
# * **The codec's streaming decoder** turns speech tokens into audio as they arrive.
#
# Why hear through a recogniser rather than codec tokens? Spoken reasoning data is scarce (notebook 02), text
# problems are free. `ReasoningDataModule` (`s2s/lm/data.py`) teaches reasoning mostly from text questions;
# a question heard well reaches the LM at nearly the same vectors as its written text, so that reasoning
# carries over to speech.

# %% [markdown]
# ## 2. Load the pipeline
#
# `S2SPipeline.from_pretrained()` loads the default model and the codec it was trained with. Smoke mode
# builds the same parts at toy size with random weights: a tokenizer,
# a recogniser that spells in it, a codec and an LM, saved to a folder and loaded the same way
# (`tiny_random_model` in `s2s/lm/toy.py`: read it to see every part).

# %%
pipeline = S2SPipeline.from_pretrained(tiny_random_model(WORKDIR)) if SMOKE else S2SPipeline.from_pretrained()
model, tokenizer, vocab = pipeline.model, pipeline.model.tokenizer, pipeline.model.vocab
# A random model may end its reply before it speaks when greedy: sample it, and keep it short. Its random ear
# writes noise, which the abstention gates would (rightly) refuse as no question: they are off for it.
GEN = {} if not SMOKE else {"temperature": 1.0, "max_thought_tokens": 24, "max_reply_tokens": 8, "max_speech_frames": 25,
                       "abstain_gates": False}
lm_size, hearing_size = (sum(p.numel() for p in part.parameters()) / 1e6 for part in (model.backbone, model.hearing))
print(f"LM {lm_size:.3g} M parameters, {model.format.name} | hearing {hearing_size:.3g} M (frozen) | "
      f"codec {pipeline.codec.name}, {vocab.num_codebooks} codebooks | vocabulary {vocab.size} ids")

# %% [markdown]
# ## 3. Hear
#
# The example question is spoken in a held-out voice. The recogniser writes it down; the transcript is cut
# into the LM's tokens, each with its own stretch of audio (a question heard well: one segment per token of
# its written text). Printed below: each segment's token and how many recogniser frames (40 ms each) it
# spans, then the transcript beside the written question.

# %%
info = json.loads(EXAMPLE_INFO.read_text())
wav, rate = audio.load(EXAMPLE_QUESTION)
print(f"\"{info['question']}\" ({info['voice']}, {wav.shape[-1] / rate:.1f} s), expected answer {info['answer']}")
display(Audio(wav[0].numpy(), rate=rate))

heard = model.hearing.listen(wav, rate)  # Heard: the segments, the text, the ear's confidence, which ear
segments = heard.question  # HeardQuestion: token_ids [n, 1], probs [n, 1], hidden [n, D]
print(len(segments), "heard segments:", " ".join(repr(tokenizer.decode([int(i)])) for i in segments.token_ids[:, 0]))
print(f"\ntranscript ({heard.ear} ear, confidence {heard.confidence:.2f}):", heard.text)
print("written   :", info["question_written"])

# %% [markdown]
# What the LM reads at each heard position is the adapter's vector. Is it near the text embedding of the
# token that was heard? For each segment, find the closest row of the LM's text embeddings.

# %%
embeddings = model.backbone.get_input_embeddings()
with torch.no_grad():
    vectors = model.adapter(segments, embeddings)  # [n, LM width]: what the LM is given
    similarity = torch.nn.functional.cosine_similarity(vectors[:, None], embeddings.weight[None, :len(tokenizer)], -1)
nearest = similarity.argmax(-1)
agree = (nearest == segments.token_ids[:, 0]).float().mean()
print(f"{tuple(vectors.shape)} vectors; the nearest text embedding is the heard token for {agree:.0%} of them")

# %% [markdown]
# The prompt is the question as ids, then the `<think>` that opens the reply. A spoken question is one
# `<heard>` id per segment (the model puts that segment's vector there), a written one is its text ids:
# the same shape, a position per token (`draw_prompt`: `draw` for ids that carry no segment labels yet).

# %%
spoken_prompt, spoken_heard = pipeline.prompt(audio_wav=wav, sample_rate=rate)
written_prompt, _ = pipeline.prompt(text=info["question_written"])
print(f"spoken ({len(spoken_heard.question)} segments):", draw_prompt(spoken_prompt, vocab))
print(f"written ({len(written_prompt) - 3} text ids):", draw_prompt(written_prompt, vocab))

# %% [markdown]
# ## 4. Think, then speak, streaming
#
# `pipeline.stream` yields events as they happen: what the model heard, pieces of the thought, pieces of the reply text, audio
# chunks (every 2 speech frames through the codec's streaming decoder), and last the whole `Reply`. In
# think-then-speak (and in word-timed, which reads the written reply aloud) no audio can come before the
# thought and the reply text are written.

# %%
start, chunks, first_audio_ms, last = time.perf_counter(), 0, None, None
for kind, value in pipeline.stream(audio=EXAMPLE_QUESTION, **GEN):
    if kind in ("thought", "reply_text"):
        if kind != last:
            print(f"\n[{kind}] ", end="")
            last = kind
        print(value, end="", flush=True)
    elif kind == "heard":  # what the hearing wrote down: perception, before any reasoning
        print(f"[heard] {value}")
    elif kind == "audio":
        chunks += 1
        first_audio_ms = first_audio_ms or 1000 * (time.perf_counter() - start)
    else:
        done = value  # the Reply: ids, parsed turn, timings
first = "no audio" if first_audio_ms is None else f"the first at {first_audio_ms:.0f} ms"
print(f"\n\n{chunks} audio chunks, {first}; {done.tokens_per_s:.0f} ids/s")

# %% [markdown]
# `pipeline(...)` drains the same stream into a `SpokenReply`: the thought, the reply text, the answer read
# from the thought's last line (`So the answer is X.`), the written wav and the timings: `ttfa_ms` from the
# complete question to the first reply sample, `total_ms`, and `rtf` (seconds of work per second of speech).
# (The first call in a process also pays for warming up, so it is the slower one.)

# %%
spoken = pipeline(EXAMPLE_QUESTION, out=WORKDIR / "reply.wav", **GEN)
print("thought:", spoken.thought.replace("\n", " | "))
print("reply  :", spoken.reply_text)
print("answer :", spoken.answer, "| expected", info["answer"])
print("timings:", spoken.timings)
if spoken.audio:
    display(Audio(spoken.audio))

# %% [markdown]
# ## 5. Text against speech: the modality gap
#
# The same question, written. If hearing works, both answers agree: reasoning learned from text carries
# over. Where they differ, the fault is in the ears (or the adapter), not in the reasoning.

# %%
written = pipeline(text=info["question_written"], **GEN)
print("written question ->", written.answer, "| spoken question ->", spoken.answer, "| expected", info["answer"])
print("thought from text:", written.thought.replace("\n", " | "))

# %% [markdown]
# ## 5b. The calculator
#
# By default a calculator writes every result the thought sets up: when the thought ends in `12 - 7 =`, the
# ids of ` 5` are written for the model (`s2s/lm/tools.py`). Turn it off to see the model's own arithmetic.
# A tiny CPU model learns *which* sum to do long before it learns its tables.

# %%
own = pipeline(text=info["question_written"], calculator=False, **GEN)
print("with the calculator :", written.thought.replace("\n", " | "))
print("the model alone     :", own.thought.replace("\n", " | "))

# %% [markdown]
# `s2s evaluate --manifest data/synth/test/manifest.jsonl` measures this gap over the held-out test corpus:
# every question answered from audio and from text, scored per family (`s2s/eval/reasoning.py`). Here a
# handful of them (6; 2 in smoke mode, the card's 200 in reproduce mode), rendered as that corpus is (from the
# repository root: `s2s data synth --out data/synth/test --n 200 --seed 1 --split test`).

# %%
from s2s.data.synth import synthesize
from s2s.eval.reasoning import evaluate_manifest

test_manifest = synthesize(WORKDIR / "test", n={"smoke": 2, "shipped": 6, "reproduce": 200}[MODE], seed=1,
                           split="test", progress=False)
for question in ("audio", "text"):
    scores = evaluate_manifest(pipeline, test_manifest, question=question, **GEN)
    print(f"from {question}: thought answers right {scores['accuracy_thought']:.0%}, spoken reply right "
          f"{scores['accuracy_reply_text']:.0%}, first audio p50 {scores['ttfa_ms_p50'] or '-'} ms")

# %% [markdown]
# ## 6. Three formats, three latencies
#
# The default model thinks, writes its reply, then reads it aloud (word-timed). Notebook 03 drew the other layouts; here they are for one hand-made
# reply (2 codebooks, 12 speech frames), drawn from the prompt's `<think>` on: what the model writes. Before
# its first speech id `S0` it must write every id to its left; at the speed measured above, ids become
# milliseconds.

# %%
toy = JointVocab(text_vocab_size=len(tokenizer), num_codebooks=2, codebook_size=16,
                 durations=FORMATS["word_timed"].durations(max_word_frames=8))
thought = "Ben starts with 9 stickers.\nBuying 5 more makes 9 + 5 = 14.\nSo the answer is 14."
turn = Turn(heard_length=6, thought_ids=tokenizer.encode(thought, add_special_tokens=False),
            reply_ids=tokenizer.encode("Ben has fourteen stickers now.", add_special_tokens=False),
            reply_codes=torch.randint(0, 16, (2, 12)))  # any codes do for a layout
words = [len(word) for word in word_runs(tokenizer, turn.reply_ids)]  # word_aligned and word_timed: the words
turn.reply_alignment = even_alignment(len(turn.reply_ids), 12, words)  # and the frames shared out among them
turn.reply_opening = reply_opening(tokenizer, "Ben has fourteen stickers now.")  # "Ben has": said while thinking
options = {"think_then_speak": {}, "think_while_speaking": {"thought_chunk_tokens": 4, "speech_chunk_frames": 3},
           "text_guided": {"offset_tokens": 2, "text_chunk_tokens": 1, "speech_chunk_frames": 2}, "word_aligned": {},
           "word_timed": {"max_word_frames": 8},
           "word_timed_while_thinking": {"max_word_frames": 8, "thought_chunk_tokens": 8}}
for name in FORMATS:
    fmt = build_format(name, toy, **options[name])
    sequence = fmt.build(turn)
    prompt_length = len(build_prompt(fmt, heard_length=turn.heard_length))  # ends with the <think>
    reply = Sequence(sequence.ids[prompt_length - 1:], sequence.segment[prompt_length - 1:])
    before = int((sequence.segment == SPEECH).nonzero()[0]) - prompt_length
    print(f"{name}: {before} ids before the first speech id, about {1000 * before / done.tokens_per_s:.0f} ms")
    print("  " + draw(reply, toy, max_run=6) + "\n")

# %% [markdown]
# * **think_then_speak**: first audio only after the whole thought and the reply text; the reply text
#   guides all of the speech, but the wait grows with the length of the thought.
# * **think_while_speaking**: first audio after the first thought chunk, whatever the thought's length;
#   the price is that the first words are spoken before the answer is known.
# * **text_guided**: first audio after the whole thought and a few reply ids; each word is written just
#   before it is spoken, so speech stays guided without waiting for the whole reply text.
# * **word_aligned**: first audio after the whole thought and the first word; every word's text comes just
#   before its own frames (timed by forced alignment in training), so the model says what it just wrote.
# * **word_timed**: think-then-speak up to `<speak>`, then the reply read aloud word by word: each word again
#   (written for the model by the generation loop, so it cannot drift from its reply), a duration id (`d3`:
#   this word lasts 3 frames) and exactly that many frames. First audio waits for the reply text, as in
#   think-then-speak, plus one word and one duration.
# * **word_timed_while_thinking**: think-while-speaking with word_timed's words. The reply's opening words,
#   those before the first number ("Ben has"), are said one after each 8 thought ids; the words that carry
#   the answer wait until the thought is whole. First audio waits for 8 thought ids and one word, whatever the
#   thought's length, and no word is said before the thought has what it depends on.
#
# Every format has its phase machine in `s2s/lm/generate.py`, so a model trained in any of them streams
# through the same `pipeline.stream`.

# %% [markdown]
# ## 7. Training it with Lightning: one loss per modality
#
# The shipped model was trained with `s2s fit`: LightningCLI over `SpeechReasoningModule` (which wraps `SpeechReasoningLM`) and a datamodule, every
# setting in plain YAML (its model card gives each command). Here the from-scratch recipe,
# `configs/lm/tiny.yaml`, runs for a minute on a small corpus of notebook 02, with a smaller backbone
# laid over it by a second YAML file (later `--config` files override earlier ones, key by key). In reproduce
# mode the recipe runs whole, as its header says: 4,000 steps on 4,000 spoken questions (hours on 2 CPU cores).
#
# A row of training is one turn laid out by the format; its loss is one cross-entropy per **modality** of the
# target: the thought's text, the reply's text and the reply's speech (each codebook logged apart too).
# `SpeechReasoningModule.losses` weights them (`thought_weight`, `reply_text_weight`, `speech_weight`) and logs
# each, so a run shows which part is learned first, and which one holds it back.

# %%
import matplotlib.pyplot as plt
import yaml

import s2s
from s2s.cli import main as s2s_main
from s2s.plots import read_metrics_csv

RECIPE = Path(s2s.__file__).resolve().parents[1] / "configs" / "lm" / "tiny.yaml"  # read from the repository
if MODE == "reproduce":
    os.chdir(WORKDIR)  # the recipe's relative paths (data/, runs/) land here
    synthesize("data/synth/train", n=4000, seed=0, split="train")
    synthesize("data/synth/test", n=200, seed=0, split="test")
    run_dir, overlays = WORKDIR / "runs" / "lm-tiny", []
    print("s2s fit --config configs/lm/tiny.yaml")
else:  # 24 steps of a smaller backbone on 16 questions (12 in smoke mode): about a minute on 2 CPU cores
    corpus = synthesize(WORKDIR / "corpus", n=16, seed=0, split="train", progress=False)
    run_dir, small = WORKDIR / "lm-run", WORKDIR / "small.yaml"
    overlays = ["--config", str(small)]
    print(f"s2s fit --config configs/lm/tiny.yaml --config {small.name}")
    small.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 12 if SMOKE else 24, "val_check_interval": None, "limit_val_batches": 0, "log_every_n_steps": 2,
                    "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False,
                    "callbacks": [], "default_root_dir": str(run_dir),
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(run_dir)}}},
        "model": {"init_args": {"backbone_config": {"model_type": "llama", "hidden_size": 96, "num_hidden_layers": 2,
                                                    "num_attention_heads": 4, "num_key_value_heads": 4,
                                                    "intermediate_size": 256, "max_position_embeddings": 2048},
                                "tokenizer": str(run_dir / "tokenizer"), "tokenizer_train_manifest": str(corpus),
                                "tokenizer_vocab_size": 300, "lr": 0.003, "warmup_steps": 4}},
        "data": {"init_args": {"train": str(corpus), "val": None, "batch_size": 4}},
    }, sort_keys=False))
s2s_main(["fit", "--config", str(RECIPE), *overlays])

# %%
series = read_metrics_csv(next(run_dir.glob("lightning_logs/version_*/metrics.csv")))  # {name: (steps, values)}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in ("thought_loss", "reply_text_loss", "speech_loss", "speech_loss_cb0", "speech_loss_cb3"):
    if f"train/{name}" in series:
        steps, losses = series[f"train/{name}"]
        ax.plot(steps, losses, label=name, ls="--" if "cb" in name else "-")
        print(f"{name:>16}: {losses[0]:.2f} -> {losses[-1]:.2f} nats a target")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The text losses fall first and fastest: a thought is a few dozen ids in a small vocabulary, and its
# wording repeats across problems. Speech is hundreds of ids a reply, each a choice among 1,024 codes; the
# first codebook (the coarse shape of the sound) falls before the later ones, which refine what the earlier
# codebooks left. That is why the shipped model learned its reasoning mostly from text problems (fresh ones
# every epoch, costing microseconds) and spent its speech budget on fewer, longer rows (its card).

# %% [markdown]
# ## Exercises
#
# 1. Record yourself asking a question from notebook 02 (any rate, up to 30 s) and pass the file to
#    `pipeline(...)`. Print `reply.question_heard` first: when the answer is wrong, is it the ears or the
#    reasoning?
# 2. Answer the example with `temperature=0.8` and five seeds. How often does the thought change, and does
#    the answer? Compare the spoken and the written question.
# 3. Lengthen the hand-made thought in section 6 (add steps) and plot the ids before the first speech id
#    against the thought length for each format. Which line is flat?
#
# Next: chapter 5, generating replies and the latency of thinking before speaking (planned).
