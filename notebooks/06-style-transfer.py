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
# # 06 · Style transfer: voice prompts, conversion and style controls
#
# The reply so far spoke in one voice at one pace. Here it takes a **voice** from a few seconds of reference
# audio and a **style** from words such as `fast low`. You will:
#
# 1. render the **style corpus**: the same words in several voices, slow or fast, low or high, and *measure*
#    what changed (syllable rate, median F0), because a style you cannot measure is a style you cannot check;
# 2. see where voice and style go in a turn: the `<voice> s s V V .. </voice>` **prompt segment**;
# 3. ask for a reply **in a voice and a style** (`s2s reply --voice REF.wav --style fast`);
# 4. **convert** speech to another voice (`s2s convert SRC.wav --voice REF.wav`): the judge hears the words,
#    the LM says them in the new voice;
# 5. score it all with the **style metrics**: a speaker-ID model (is it the asked voice?), the embedding
#    cosine, and whether rate and pitch moved the asked way (`s2s style eval`).
#
# Read alongside: `tutorials/06-style-transfer.md`.

# %% tags=["parameters"]
# "smoke": a tiny random model and speaker model built in seconds (the test suite uses them; their voices are
# noise, the espeak-ng recordings and their measures are real); "full": the shipped models (a few minutes).
MODE = "smoke"

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Audio, display

from s2s import audio
from s2s.data import espeak
from s2s.data.manifest import read_manifest
from s2s.data.synth import REPLY_PITCHES, REPLY_RATES, STYLE_VOICES, synthesize
from s2s.eval.reasoning import load_judge
from s2s.lm.draw import draw
from s2s.lm.toy import tiny_random_model
from s2s.pipeline import S2SPipeline
from s2s.style.convert import convert
from s2s.style.evaluate import DEFAULT_SPEAKER, evaluate_style, format_style_figures, load_speaker
from s2s.style.measure import median_f0, speaking_rate
from s2s.style.metrics import StyleFollowed
from s2s.style.speaker import SpeakerClassifier

assert MODE in ("smoke", "full"), MODE
SMOKE = MODE == "smoke"
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb06-"))
torch.manual_seed(0)
print("working in", WORKDIR)

# %% [markdown]
# ## 1. The style corpus, and measuring a style
#
# `s2s data synth --reply-styles` speaks each reply in one of six voices (`STYLE_VOICES`) at one of three
# rates and three pitches, and adds a **voice prompt**: other sentences in the same voice, at normal rate and
# pitch. Below, one sentence in the assistant's voice at each setting. Listen, then look at the two measures
# the metrics use: **speaking rate** (the syllables of the words, counted in the text, per second of speech
# measured in the audio) and **median F0** (YIN pitch over voiced frames), both in `s2s/style/measure.py`.

# %%
SENTENCE = "The answer is forty two."
renders = {}
for rate_word, wpm in REPLY_RATES.items():
    for pitch_word, pitch in REPLY_PITCHES.items():
        if "normal" in (rate_word, pitch_word):  # one axis at a time, around normal
            samples, sr = espeak.render(SENTENCE, voice=STYLE_VOICES[0], speed_wpm=wpm, pitch=pitch)
            wav = torch.from_numpy(espeak.trim_silence(samples))
            name = " ".join(w for w in (rate_word, pitch_word) if w != "normal") or "normal"
            renders[name] = wav
measures = {name: (speaking_rate(wav, sr, SENTENCE), median_f0(wav, sr)) for name, wav in renders.items()}
for name, (syllables, f0) in measures.items():
    print(f"{name:>7}: {renders[name].numel() / sr:4.2f} s, {syllables:4.1f} syllables/s, median F0 {f0:5.0f} Hz")
display(Audio(renders["slow"].numpy(), rate=sr), Audio(renders["fast"].numpy(), rate=sr))

# %% [markdown]
# `StyleFollowed` turns such pairs into the figure the issue asks for: the fraction of (normal, styled)
# pairs whose measure moved the asked way. On espeak-ng's own renderings it should be 100 %: the measures
# work, so a model that misses them really missed.

# %%
followed = StyleFollowed()
pairs = {"slow": 0, "fast": 0, "low": 1, "high": 1}  # which measure each style moves: 0 rate, 1 pitch
for style, axis in pairs.items():
    followed.update([(measures["normal"][axis], measures[style][axis])], [style])
print(f"espeak-ng follows {float(followed.compute()):.0%} of the asked styles")
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for axis, (title, unit) in enumerate((("rate", "syllables/s"), ("pitch", "median F0, Hz"))):
    names = ["slow", "normal", "fast"] if axis == 0 else ["low", "normal", "high"]
    axes[axis].bar(names, [measures[n][axis] for n in names], color=["#8ab", "#999", "#c85"])
    axes[axis].set_title(title)
    axes[axis].set_ylabel(unit)
plt.tight_layout()
plt.show()

# %% [markdown]
# A small styled corpus, rendered the way training data is (two rows in smoke mode). Each row has the reply,
# its voice, its style words, and (most rows) a voice prompt in the same voice.

# %%
corpus = synthesize(WORKDIR / "styled", n=6 if SMOKE else 24, seed=3, split="test", reply_styles=True,
                    workers=1, progress=False)
rows = read_manifest(corpus)
for row in rows[:4]:
    print(f"{row['reply_voice']:>20} | style {row['reply_style'] or 'normal':>9} | prompt "
          f"{'yes' if 'voice_audio' in row else 'no ':>3} | {row['reply']}")
prompted = [row for row in rows if "voice_audio" in row]
REFERENCE = corpus.parent / prompted[0]["voice_audio"]
display(Audio(str(REFERENCE)))

# %% [markdown]
# ## 2. Where voice and style go: the prompt segment
#
# Voice and style are part of the **prompt**, never generated: `<voice>`, the style words as ordinary text
# ids, the reference as codec tokens, `</voice>`. Text ids need no new vocabulary, so the shipped model's
# joint vocabulary (and its weights) carry over; the loss never scores the prompt.

# %%
pipeline = (S2SPipeline.from_pretrained() if not SMOKE
            else S2SPipeline.from_pretrained(tiny_random_model(WORKDIR / "toy", format="word_aligned")))
model, vocab = pipeline.model, pipeline.model.vocab
prompt, heard = pipeline.prompt(text="What is 6 x 7?", voice=str(REFERENCE), style="fast low")
turn = model.format.parse(torch.cat([prompt, torch.tensor([vocab.end_think, vocab.eot])]))  # an empty reply
print(draw(model.format.build(turn), vocab, max_run=6))
print("style words:", repr(model.tokenizer.decode(turn.style_ids)), "| voice prompt:",
      tuple(turn.voice_codes.shape), "codes (codebooks, frames)")

# %% [markdown]
# ## 3. A reply in a voice and a style
#
# The same call as before, with `voice=` (a file or a waveform) and `style=`. From the shell:
# `s2s reply QUESTION.wav --voice REF.wav --style fast`. The reference must be at least 1 s of speech; longer
# references are cut to their first 4 s, about the length of the training prompts.

# %%
GEN = {} if not SMOKE else {"temperature": 1.0, "max_thought_tokens": 16, "max_reply_tokens": 8,
                            "max_speech_frames": 40}
replies = {}
for style in ("", "slow", "fast", "low", "high"):
    reply = pipeline(text=prompted[0]["question_written"], voice=str(REFERENCE), style=style or None, **GEN)
    replies[style or "normal"] = reply
    print(f"{style or 'normal':>6}: {reply.reply_text!r}, {reply.waveform.shape[-1] / reply.sample_rate:.2f} s")
display(Audio(replies["normal"].waveform[0].numpy(), rate=pipeline.sample_rate))

# %% [markdown]
# ## 4. Voice conversion
#
# `convert` keeps the words of one recording and changes its voice, as a cascade through text: the judge
# (`s2s-judge-tiny`, a character CTC model that is not the LM) writes the words down, and the LM reads them
# aloud with the reference as its voice prompt. Reading aloud needs the `word_aligned` format: each word's
# text comes just before its own speech, so the words can be written for the model one at a time while it
# decides how long each one lasts.

# %%
judge = load_judge("default")
source_row = next(r for r in rows if r["reply_voice"] != prompted[0]["reply_voice"])
source = corpus.parent / source_row["reply_audio"]
converted = convert(pipeline, judge, str(source), str(REFERENCE), **GEN)
print(f"source says {source_row['reply']!r}; the judge heard {converted.words!r}")
display(Audio(str(source)), Audio(converted.reply.waveform[0].numpy(), rate=pipeline.sample_rate))

# %% [markdown]
# ## 5. The style metrics
#
# A **speaker-ID model** (`s2s/style/speaker.py`: an x-vector network with attentive statistics pooling and a
# cosine classifier, trained with `configs/style/speaker-id-styles.yaml`) tells the six voices apart whatever
# their rate and pitch. Style accuracy is the fraction of outputs it puts in the asked voice; chance is one in
# six. `s2s style eval --manifest M` runs everything below over a styled manifest.

# %%
# The shipped speaker model is small (1.4 M parameters), so smoke mode uses it too: its figures here are real.
speaker = (load_speaker("default") if DEFAULT_SPEAKER.is_dir()
           else SpeakerClassifier(voices=sorted(STYLE_VOICES), channels=32, dim=16).eval())
recordings = [audio.load(corpus.parent / r["voice_audio"]) for r in prompted[:4]]  # (wav [1, T], rate)
embeddings = torch.cat([speaker.embed(wav, rate) for wav, rate in recordings])
print("voices  :", [r["reply_voice"] for r in prompted[:4]])
print("cosines :\n", (embeddings @ embeddings.T).numpy().round(2))
print("heard as:", [speaker.classify(wav, rate)[0] for wav, rate in recordings])

# %%
figures = evaluate_style(pipeline, speaker, judge, corpus, limit=1 if SMOKE else 12, **GEN)
print(format_style_figures(figures))

# %% [markdown]
# ## What to take away
#
# - A style is only real if it is measured: syllable rate and median F0 move the asked way on the training
#   audio, and `StyleFollowed` checks that the model's audio does too.
# - Voice and style ride in the prompt as codec tokens and text ids: no new vocabulary, and the loss leaves
#   them alone.
# - Conversion here is recognise-then-speak: the words survive as well as the judge hears them, and the voice
#   as well as the LM clones it. The model card gives the measured figures, beside chance.
