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
# # 03 · Interleaved sequences
#
# One stream of ids has to carry a spoken question, a thought, a reply and its speech. This notebook builds a
# real turn (a spoken question from notebook 02, a tokenizer trained on its text, codes from `s2s-tiny`) and
# draws it in each of the three sequence formats, then shows the delay pattern and what each layout costs in
# sequence length, which is what decides how soon speech can start.
#
# Read alongside: `tutorials/03-interleaved-sequences.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: the shipped models in s2s/assets/, minutes), "smoke" (tiny random parts, for the
# tests: seconds) or "reproduce" (trains from scratch as the model cards did: hours). All three do the same here: the
# notebook trains nothing and uses only the shipped codec and judge, in seconds.
MODE = "shipped"

# %%
import tempfile
from pathlib import Path

from s2s import audio
from s2s.asr.align import frames_per_word, word_spans
from s2s.codecs import load_codec
from s2s.data.manifest import read_manifest
from s2s.data.synth import synthesize
from s2s.data.token_cache import encode_file
from s2s.eval.reasoning import load_judge
from s2s.lm.batching import reply_alignment, reply_opening
from s2s.lm.draw import draw, draw_grid
from s2s.lm.formats import FORMATS, SPEECH, Turn, build_format
from s2s.lm.patterns import DelayPattern, FlatPattern
from s2s.lm.text_tokenizer import train_text_tokenizer
from s2s.lm.vocab import JointVocab
from s2s.notebook import check_mode

check_mode(MODE)
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb03-"))
manifest = synthesize(WORKDIR / "synth", n=12, seed=0, split="train", progress=False)
example = read_manifest(manifest)[0]
print(example["question"], "|", example["thought"].replace(chr(10), " "), "|", example["reply"])

# %% [markdown]
# ## 1. The pieces as ids
#
# A byte-level BPE trained on the corpus gives the text ids; `s2s-tiny` (first 2 codebooks here, to keep the
# pictures small) gives the codes. The joint vocabulary puts text, special tokens and each codebook in its own
# id range.

# %%
tokenizer = train_text_tokenizer(manifest, vocab_size=300)
codec = load_codec("s2s-tiny", num_codebooks=2)
# Duration ids (word_timed: "the next word lasts n frames") come last, so the other formats' ids do not move.
vocab = JointVocab(text_vocab_size=len(tokenizer), num_codebooks=2, codebook_size=codec.codebook_size,
                   durations=FORMATS["word_timed"].durations())
turn = Turn(question_codes=encode_file(codec, manifest.parent / example["question_audio"]),
            thought_ids=tokenizer.encode(example["thought"], add_special_tokens=False),
            reply_ids=tokenizer.encode(example["reply"], add_special_tokens=False),
            reply_codes=encode_file(codec, manifest.parent / example["reply_audio"]))
print("vocabulary size", vocab.size, "| question", tuple(turn.question_codes.shape), "| thought",
      len(turn.thought_ids), "ids | reply", len(turn.reply_ids), "ids +", tuple(turn.reply_codes.shape))

# %% [markdown]
# The word-aligned and word-timed formats also need to know *when* each reply word is spoken. Forced alignment finds it: the
# CTC judge (a character recogniser, shipped) scores every 40 ms of the reply audio, and the Viterbi path that
# spells exactly the reply's words says where each starts (`s2s/asr/align.py`). In frames of the codec:

# %%
wav, rate = audio.load(manifest.parent / example["reply_audio"])
spans = word_spans(load_judge("default"), wav[0], rate, example["reply"])
word_frames = frames_per_word(spans, codec.frame_rate, turn.reply_codes.shape[1])
for (word, start, end), frames in zip(spans, word_frames):
    print(f"{word:>12}: {start:4.2f}-{end:4.2f} s, {frames} frames")
turn.reply_alignment = reply_alignment(tokenizer, example["reply"], word_frames)  # (text ids, frames) per word
# word_timed_while_thinking says the reply's opening (its words before the first number) while it thinks.
turn.reply_opening = reply_opening(tokenizer, example["reply"])
print("said while thinking:", repr(tokenizer.decode(turn.reply_ids[:turn.reply_opening])))

# %% [markdown]
# ## 2. Six formats, one turn
#
# `Q` is a question code, `t` a thought id, `r` a reply-text id, `S0 S1` the two codebooks of a speech frame,
# `w` a reply word read aloud again and `d17` its length (17 frames) in word_timed; in
# word_timed_while_thinking the words `r` are said where they stand, each with its `d` and frames, between
# chunks of the thought.
# Long runs are shortened (`×n`). Look where the first `S` appears: that is when audio can start.

# %%
for name in FORMATS:
    sequence = build_format(name, vocab).build(turn)
    first_speech = int((sequence.segment == SPEECH).nonzero()[0])  # segment labels say what each position is
    print(f"{name}: {len(sequence.ids)} ids, speech starts at position {first_speech}")
    print("  " + draw(sequence, vocab, max_run=6) + "\n")

# %% [markdown]
# ## 3. Every format round-trips exactly

# %%
for name in FORMATS:
    fmt = build_format(name, vocab)
    assert fmt.parse(fmt.build(turn)) == turn
print(f"build -> parse gives the same turn back in all {len(FORMATS)} formats")

# %% [markdown]
# ## 4. The delay pattern
#
# With the flat pattern a frame of K codes takes K positions. The delay pattern (MusicGen) gives each step
# one id per codebook, codebook k lagging k steps, so a frame costs one step.

# %%
delay = DelayPattern(vocab)
print(draw_grid(delay.build(turn.reply_codes[:, :6]), vocab))
frames = turn.reply_codes.shape[1]
print(f"\n{frames} reply frames: flat {FlatPattern(vocab).steps_for(frames)} positions, "
      f"delay {delay.steps_for(frames)} steps")

# %% [markdown]
# Next: `04-reasoning-lm.ipynb`, where a model hears a spoken question and writes these sequences.
