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
# # 06 · Style transfer: voice prompts, conversion and style controls
#
# The reply so far spoke in one voice at one pace. Here it takes a **voice** from a few seconds of reference
# audio and a **style** from words such as `fast low`. You will:
#
# 1. render the **style corpus**: the same words in several voices, slow or fast, low or high, and *measure*
#    what changed (syllable rate, median F0), because a style you cannot measure is a style you cannot check;
# 2. see where voice and style go in a turn: the `<voice> s s V V .. </voice>` **prompt segment**;
# 3. ask for a reply **in a voice and a style** (`s2s reply --voice REF.wav --style fast`): the model answers
#    in its own voice, and the **voice converter** says the reply in the reference's voice, rate and pitch;
# 4. **convert** speech to another voice (`s2s convert SRC.wav --voice REF.wav`) with the same converter;
# 5. score it all with the **style metrics**: a speaker-ID model (is it the asked voice?), the embedding
#    cosine, and whether rate and pitch moved the asked way (`s2s style eval`).
#
# Read alongside: `tutorials/06-style-transfer.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: the shipped reasoner, converter and speaker model on a styled corpus of 24 rows, in
# about a minute), "smoke" (a tiny random reasoning model, for the tests: its replies are noise; the espeak-ng
# recordings, the shipped converter and speaker model, and their measures are real) or "reproduce" (trains the
# voice converter from scratch as its model card did, about 40 minutes on 2 CPU cores, then measures it on the
# card's 120-row held-out style corpus).
MODE = "shipped"

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Audio, display

import s2s
from s2s import audio
from s2s.cli import main as s2s_main
from s2s.data import espeak
from s2s.data.manifest import read_manifest
from s2s.data.synth import REPLY_PITCHES, REPLY_RATES, STYLE_VOICES, synthesize
from s2s.eval.reasoning import hear, load_judge
from s2s.lm.draw import draw
from s2s.lm.toy import tiny_random_model
from s2s.notebook import check_mode
from s2s.pipeline import S2SPipeline
from s2s.style.convert import convert
from s2s.style.converter import load_converter
from s2s.style.evaluate import DEFAULT_SPEAKER, evaluate_style, format_style_figures, load_speaker
from s2s.style.measure import median_f0, speaking_rate
from s2s.style.metrics import StyleFollowed
from s2s.style.speaker import SpeakerClassifier

check_mode(MODE)
SMOKE, REPRODUCE = MODE == "smoke", MODE == "reproduce"
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
# `StyleFollowed` turns such pairs into the figure that scores a style: the fraction of (normal, styled)
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
# A small styled corpus, rendered the way training data is (six rows in smoke mode, the card's 120 in reproduce). Each row has the reply,
# its voice, its style words, and (most rows) a voice prompt in the same voice.

# %%
corpus = synthesize(WORKDIR / "styled", n={"smoke": 6, "shipped": 24, "reproduce": 120}[MODE], seed=3, split="test",
                    reply_styles=True,
                    workers=1, progress=False)
rows = read_manifest(corpus)
for row in rows[:4]:
    print(f"{row['reply_voice']:>20} | style {row['reply_style'] or 'normal':>9} | prompt "
          f"{'yes' if 'voice_audio' in row else 'no ':>3} | {row['reply']}")
prompted = [row for row in rows if "voice_audio" in row]
REFERENCE = corpus.parent / prompted[0]["voice_audio"]
display(Audio(str(REFERENCE)))

# %% [markdown]
# ## 2. Two roads to a voice: the prompt segment, or a converter
#
# A model can be *trained* to speak in a prompt's voice: voice and style go into the **prompt**, never
# generated: `<voice>`, the style words as ordinary text ids, the reference as codec tokens, `</voice>`.
# Text ids need no new vocabulary, so the joint vocabulary (and the weights) carry over; the loss never scores
# the prompt. A small LM trained for 40 minutes on six voices at nine settings learned little of it (the model
# card's figures), so s2s takes the other road by default: the reasoning model answers in its own voice, and a
# **voice converter** re-voices the finished reply. Here is the prompt road's layout, for a model that has it.

# %%
pipeline = (S2SPipeline.from_pretrained(tiny_random_model(WORKDIR / "toy", format="word_aligned")) if SMOKE
            else S2SPipeline.from_pretrained())
model, vocab = pipeline.model, pipeline.model.vocab
prompt, heard = pipeline.prompt(text="What is 6 x 7?", voice=str(REFERENCE), style="fast low")
turn = model.format.parse(prompt, strict=False)  # the prompt alone: the reply, never reached, is empty
print(draw(model.format.build(turn), vocab, max_run=6))
print("style words:", repr(model.tokenizer.decode(turn.style_ids)), "| voice prompt:",
      tuple(turn.voice_codes.shape), "codes (codebooks, frames)")

# %% [markdown]
# ## 3. The voice converter
#
# `s2s/style/converter.py` splits speech into **what is said** and **who says it**, as recognition-synthesis
# voice converters do:
#
# - *what*: the reasoning model's own hearing (a CTC recogniser, frozen) gives 25 hidden vectors a second;
#   a 32-channel bottleneck, normalised per utterance, keeps the words and their timing;
# - *who*: a small reference encoder turns a few seconds of the target voice into one vector;
# - *how*: a pitch word (low / normal / high) adds a learned vector, and slow / fast stretch the content's
#   timeline, as FastSpeech scales durations;
# - a stack of ConvNeXt blocks, modulated by the voice vector (FiLM), predicts the **s2s-tiny codec's latent**;
#   the codec quantises it into speech tokens and decodes them.
#
# It learns by reconstruction: a recording's own content must come back in its own voice, with the voice taken
# from *another* recording of that speaker. Two tricks keep the voice out of the content: the content's mel axis
# is warped by a random factor (moving formants and pitch, as NANSY perturbs its input), and the content comes
# from the same words rendered at another pitch (the corpus has each reply at all three), so only the pitch
# word can say the pitch. Besides the six style voices it trained on the questions of 602 voices, so a
# reference in a voice it never heard is cloned too (`benchmarks/voice_cloning.py` measures how well).
#
# Shipped and smoke modes load the shipped converter. Reproduce mode first trains one from scratch with the
# commands of its model card (`s2s/assets/models/s2s-converter-tiny/README.md`), in the working folder, and uses it
# from here on.

# %%
CONVERTER = "default"  # the shipped s2s-converter-tiny
if REPRODUCE:
    os.chdir(WORKDIR)  # the config's relative paths (data/, runs/) land here
    synthesize("data/synth/styled", n=4000, seed=2, reply_styles=True)
    synthesize("data/synth/train", n=12000, seed=0, split="train")
    s2s_main(["fit", "--config", str(Path(s2s.__file__).resolve().parents[1] / "configs/style/converter.yaml")])
    s2s_main(["export", "runs/converter/checkpoints/last.ckpt", str(WORKDIR / "converter"), "--half"])
    CONVERTER = WORKDIR / "converter"
converter = load_converter(CONVERTER)
source_row = next(r for r in rows if r["reply_voice"] != prompted[0]["reply_voice"])
source = corpus.parent / source_row["reply_audio"]
converted = convert(converter, str(source), str(REFERENCE))
judge = load_judge("default")
print(f"source ({source_row['reply_voice']}) says {source_row['reply']!r}")
print(f"converted to {prompted[0]['reply_voice']}, the judge hears {hear(judge, converted.waveform, 16000)!r}")
display(Audio(str(source)), Audio(str(REFERENCE)), Audio(converted.waveform[0].numpy(), rate=16000))

# %% [markdown]
# Rate and pitch: slow and fast change the length, low and high the median F0. Measure them.

# %%
styles = {style: convert(converter, str(source), str(REFERENCE), style=style or None).waveform
          for style in ("", "slow", "fast", "low", "high")}
for style, wav in styles.items():
    print(f"{style or 'normal':>6}: {wav.shape[-1] / 16000:4.2f} s, "
          f"{speaking_rate(wav, 16000, source_row['reply']) or 0:4.1f} syllables/s, "
          f"median F0 {median_f0(wav, 16000) or 0:5.0f} Hz")
display(Audio(styles["slow"][0].numpy(), rate=16000), Audio(styles["high"][0].numpy(), rate=16000))

# %% [markdown]
# ## 4. A reply in a voice and a style
#
# The pipeline call of chapter 5, with `voice=` (a file or a waveform) and `style=`. From the shell:
# `s2s reply QUESTION.wav --voice REF.wav --style fast`. The reference must be at least 1 s of speech; longer
# references are cut to their first 4 s. The converter hears the whole reply, so its first audio comes when
# the reply is complete (`ttfa_ms` says so). In smoke mode the reply itself is a random model's noise. The
# pipeline of section 2 is built again around the model it loaded, with the converter of section 3.

# %%
pipeline = S2SPipeline(pipeline.model, pipeline.codec, converter)
GEN = {} if not SMOKE else {"temperature": 1.0, "max_thought_tokens": 16, "max_reply_tokens": 8,
                            "max_speech_frames": 40}
replies = {}
for style in ("", "slow", "fast", "low", "high"):
    reply = pipeline(text=prompted[0]["question_written"], voice=str(REFERENCE), style=style or None, **GEN)
    replies[style or "normal"] = reply
    print(f"{style or 'normal':>6}: {reply.reply_text!r}, {reply.waveform.shape[-1] / reply.sample_rate:.2f} s, "
          f"first audio after {reply.timings['ttfa_ms']} ms")
display(Audio(replies["normal"].waveform[0].numpy(), rate=pipeline.sample_rate))

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
figures = evaluate_style(pipeline, speaker, judge, corpus, limit={"smoke": 1, "shipped": 12, "reproduce": None}[MODE],
                         **GEN)
print(format_style_figures(figures))

# %% [markdown]
# ## What to take away
#
# - A style is only real if it is measured: syllable rate and median F0 move the asked way on the training
#   audio, and `StyleFollowed` checks that the model's audio does too.
# - Voice and style can ride in the prompt as codec tokens and text ids, but a small model learns them slowly;
#   a converter that splits *what* from *who* learns them in half an hour of CPU.
# - The converter never sees the speaker model or the judge that score it; rate is a stretched timeline and
#   pitch a learned word. The converter's model card gives the measured figures, beside chance.
