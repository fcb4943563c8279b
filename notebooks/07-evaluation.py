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
# # 07 · Evaluation: does it reason, does it listen?
#
# A figure such as "78 % right from speech" is only worth what you know about how it was measured. In this
# notebook you will measure a model the way `s2s evaluate` does, piece by piece, and then read the figures
# with the suspicion they deserve:
#
# 1. render a small held-out test set (voices no model trained on);
# 2. load the model under test (the shipped default model; smoke mode: a random one, which must score at chance);
# 3. answer every question from its audio and from its written text: accuracy per family and the modality gap;
# 4. see that every figure is a torchmetrics `Metric`, and how a spoken answer is parsed;
# 5. listen to the replies with a judge, a recogniser that is not the model under test, and measure the
#    judge's own error first;
# 6. run the shortcut test: replace the question audio by silence, noise and another question, and compare
#    with chance;
# 7. write the report folder and look at its plots;
# 8. read the figures honestly: confidence intervals on small n, perception against reasoning, the judge's
#    error, latency on this CPU.
#
# Read alongside: `tutorials/07-evaluation.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: the shipped default model, s2s-reasoner-tiny, on 24 held-out questions, in about
#       a minute on 2 CPU cores), "smoke" (a tiny random model and 4 questions, for the tests: its answers are noise,
#       so every accuracy should sit at or below chance) or "reproduce" (the shipped model on the 200 questions its
#       card measured: about an hour). Nothing is trained here.
MODE = "shipped"

# %%
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torchmetrics
from IPython.display import Audio, Image, Markdown, display
from torchmetrics.text import CharErrorRate, WordErrorRate

from s2s import audio
from s2s.data.problems import FAMILIES, chance_level
from s2s.data.synth import synthesize
from s2s.data.voices import is_held_out
from s2s.eval import shortcut as shortcut_modes
from s2s.eval.judge import format_figures, judge_figures
from s2s.eval.metrics import AnswerAccuracy, NumbersHeard, ReplyErrorRates, normalise, sign_test, wilson_interval
from s2s.eval.reasoning import DEFAULT_JUDGE, evaluate, evaluate_manifest, hear, load_judge, spoken_answer
from s2s.eval.report import PLOTS, REPORT_FILE, format_interval, format_text, markdown_table, num, pct, write_report
from s2s.eval.shortcut import follows_audio
from s2s.lm.toy import tiny_random_model
from s2s.notebook import check_mode
from s2s.pipeline import S2SPipeline

check_mode(MODE)
SMOKE = MODE == "smoke"  # smoke: a random model; shipped and reproduce: the shipped default model
N_QUESTIONS = {"smoke": 4, "shipped": 24, "reproduce": 200}[MODE]
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb07-"))
print("working in", WORKDIR)

# %% [markdown]
# ## 1. A held-out test set
#
# A test set must hold what training never saw. For a spoken question that means new *problems* (a seed and
# split the training corpus did not use) and new *voices*: `s2s/data/voices.py` keeps a named set of espeak-ng
# voices out of every training corpus (`split="test"` draws only from them), so a model cannot score by having
# memorised how one speaker says "forty". `synthesize` renders the questions, their written form, the expected
# thought, answer and reply, and both recordings, in a second or two.

# %%
manifest = synthesize(WORKDIR / "test", n=N_QUESTIONS, seed=1, split="test", workers=1, progress=False)
rows = [json.loads(line) for line in manifest.read_text().splitlines()]
assert all(is_held_out(row["question_voice"]) for row in rows)  # no training voice in a test set
display(Markdown(markdown_table(
    ["id", "family", "voice", "written question", "answer"],
    [[r["id"], r["family"], r["question_voice"], r["question_written"], r["answer"]] for r in rows[:8]])))
print(f"{len(rows)} questions; the first, as spoken:", rows[0]["question"])
display(Audio(str(manifest.parent / rows[0]["question_audio"])))

# %% [markdown]
# ## 2. The model under test
#
# Shipped mode (the default) loads the shipped default model with `S2SPipeline.from_pretrained()`. Smoke mode
# builds the same parts at toy size with random weights (as notebook 04 does): every figure it gets is what chance
# gives, which makes it a good first test of the measuring itself. A measurement that finds a random model
# reasoning is broken.

# %%
pipeline = S2SPipeline.from_pretrained(tiny_random_model(WORKDIR)) if SMOKE else S2SPipeline.from_pretrained()
# Greedy decoding for the real model. A random model may end its reply before it speaks when greedy: sample it
# (seeded, so every run gives the same figures) and keep it short.
GEN = {} if not SMOKE else {"temperature": 1.0, "seed": 0, "max_thought_tokens": 24, "max_reply_tokens": 8,
                       "max_speech_frames": 25}
print("model under test:", "a tiny random model" if SMOKE else "s2s-reasoner-tiny",
      f"| format {pipeline.model.format.name} | codec {pipeline.codec.name}")

# %% [markdown]
# ## 3. From audio and from text: the modality gap
#
# `evaluate` (`s2s/eval/reasoning.py`, what `s2s evaluate` runs) answers every question twice with
# `evaluate_manifest`: once from its audio, heard through the model's recogniser, and once from its written
# text. For each answer it keeps
#
# * `thought_answer`: X of the thought's last line `So the answer is X.`, scored as `accuracy_thought`;
# * `reply_text_answer`: the answer read back from the reply's *words*, as a listener would (`accuracy_reply_text`);
# * with a judge, `spoken_answer`: the answer heard in the reply *audio* (`accuracy_spoken`, section 5).
#
# `accuracy_text` is the thought accuracy from written questions, and `modality_gap` = text − audio: what the
# ears lose, since the reasoning is the same. The judge we pass here is explained in section 5.

# %%
judge = load_judge("default")  # the shipped CTC judge, s2s/assets/models/s2s-judge-tiny
summary = evaluate(pipeline, manifest, judge=judge, progress=True, **GEN)
print(f"from audio {pct(summary['accuracy_thought'])}, from text {pct(summary['accuracy_text'])}, "
      f"modality gap {summary['modality_gap']:+.1%} on {summary['n']} questions")
display(Markdown(markdown_table(
    ["family", "n", "from audio", "from text", "gap", "chance"],
    [[family, f["n"], pct(f["accuracy_thought"]), pct(f["accuracy_text"]),
      f"{f['accuracy_text'] - f['accuracy_thought']:+.1%}", pct(f["chance"])]
     for family, f in summary["per_family"].items()])))

# %% [markdown]
# Every answer is kept (`summary["runs"]["audio"]["examples"]`), so a figure can always be traced back to the
# questions behind it. Here, per question: what the model's hearing wrote, the thought's answer from audio and
# from text, and the expected answer. A wrong answer from audio whose text answer is right is a hearing fault.

# %%
audio_run, text_run = summary["runs"]["audio"]["examples"], summary["runs"]["text"]["examples"]
display(Markdown(markdown_table(
    ["id", "written question", "heard", "from audio", "from text", "expected"],
    [[a["id"], a["question_written"], (a["question_heard"] or "")[:60], a["thought_answer"], t["thought_answer"],
      a["answer"]] for a, t in zip(audio_run[:8], text_run[:8])])))

# %% [markdown]
# ## 4. The figures are torchmetrics Metrics
#
# `AnswerAccuracy`, `NumbersHeard` and `ReplyErrorRates` (`s2s/eval/metrics.py`) are torchmetrics `Metric`s:
# `update` adds a batch, `compute` gives the figure so far, `reset` starts again. Their state is a count of
# right answers and a count of all answers, summed across processes, so a Lightning validation loop on eight
# GPUs logs exactly what `s2s evaluate` prints on one CPU. Answers are compared exactly as strings, and a
# missing answer (`None`: no `So the answer is X.` line) is wrong.

# %%
accuracy = AnswerAccuracy()
print("a torchmetrics Metric:", isinstance(accuracy, torchmetrics.Metric))
accuracy.update(["36", "-32", None, "9:45"], ["36", "32", "7", "9:45"])
print("2 of 4 right:", float(accuracy.compute()), "| state:", int(accuracy.correct), "of", int(accuracy.total))
accuracy.update([" 7 "], ["7"])  # updates accumulate; surrounding spaces do not count
print(f"after one more right answer: {float(accuracy.compute()):.3f}")
accuracy.reset()

# The same metric over this run's examples gives the summary's figure.
accuracy.update([e["thought_answer"] for e in audio_run], [e["answer"] for e in audio_run])
print("accuracy_thought recomputed:", float(accuracy.compute()), "| in the summary:", summary["accuracy_thought"])

# %% [markdown]
# A spoken reply says its answer in words. `spoken_answer(text, expected)` reads it back in the canonical form
# of the expected answer: a clock time ("9:45") when the expected answer is one, otherwise the *last* number
# in the text, in digits or words, with "minus" or "negative" for its sign. A parser is part of the metric:
# one that reads too much (any number in the sentence) would credit a reply that only repeats the question.

# %%
cases = [("The answer is forty-two.", "42"), ("It is 105.", "105"), ("It is minus thirty two.", "-32"),
         ("the answer is negative seven", "-7"), ("three plus four is seven", "7"),
         ("The time will be six oh five.", "6:05"), ("half past seven", "7:30"), ("a quarter to one", "12:45"),
         ("in twelve minutes", "9:45"), ("I do not know.", "3")]
display(Markdown(markdown_table(
    ["reply text", "expected", "read back", "right"],
    [[text, expected, spoken_answer(text, expected), spoken_answer(text, expected) == expected]
     for text, expected in cases])))

# %% [markdown]
# `NumbersHeard` asks a narrower question of the model's *hearing*: did it write down every number of the
# question, in order? With the hearing's character error rate it separates perception from reasoning
# (section 8).

# %%
numbers = NumbersHeard()
numbers.update(["What is 21 + 4", "What is 20 + 14?", "Which is smaller, 67 or 22?"],
               ["What is 21 + 4?", "What is 21 + 4?", "Which number is smaller, 67 or 22?"])
print(f"questions with every number heard: {float(numbers.compute()):.3f}")  # 2 of 3
print(f"this run: hearing CER {num(summary['hearing_cer'])}, every number heard in {pct(summary['numbers_heard'])}, "
      f"right where they were: {pct(summary['accuracy_when_numbers_heard'])}")

# %% [markdown]
# ## 5. The judge: a second pair of ears
#
# The thought's answer says what the model *meant*; a listener only gets the audio. To score the spoken reply,
# `evaluate` gives it to a **judge**, a character CTC recogniser, and parses the answer out of the transcript.
# Two rules:
#
# * **The judge is not the model under test.** The model's own recogniser was trained with it, on the same data,
#   and shares its blind spots; a model grading itself credits what it meant to say. The judge
#   (`configs/asr/judge.yaml`) is a separate network, trained on clean espeak-ng speech and never on the model's
#   codec output, so a garbled reply counts against the model, as it would for a person.
# * **The judge's own error is measured first**, on recordings whose words are known. A judge that mishears one
#   reply in ten caps `accuracy_spoken` near 90 % for a perfect model. Its card says how far to trust it:

# %%
card = (DEFAULT_JUDGE / "README.md").read_text()
display(Markdown(card[card.index("## How far to trust it"):]))
parameters = sum(p.numel() for p in judge.parameters()) / 1e6
print(f"judge: {parameters:.1f} M parameters, labels '{judge.labels.kind}' | model under test: "
      f"{'a tiny random model' if SMOKE else 's2s-reasoner-tiny'} (a different network)")

# %% [markdown]
# The same check on this test set: `judge_figures` (what `s2s judge` prints) transcribes the corpus's clean
# question recordings (held-out voices) and reply recordings (the assistant's voice) and scores them against
# their known text. With only a few rows the figures are rough (section 8 says how rough).

# %%
print(format_figures("s2s-judge-tiny on this test set's clean recordings", judge_figures(judge, manifest)))

# %% [markdown]
# Word and character error rates are torchmetrics' `WordErrorRate` and `CharErrorRate`: edit distance over
# words or characters, divided by the reference's length. Both texts are first normalised as the judge spells
# (lower case, no punctuation, hyphens as spaces); otherwise "Forty-two." against "forty two" would be two
# word errors the judge cannot help. `ReplyErrorRates` does both in one `MetricCollection`.

# %%
heard = [hear(judge, *audio.load(manifest.parent / r["reply_audio"])) for r in rows]
references = [normalise(r["reply"]) for r in rows]
display(Markdown(markdown_table(
    ["reply text", "normalised", "the judge heard"],
    [[r["reply"], ref, h] for r, ref, h in zip(rows[:8], references, heard)])))
wer, cer = WordErrorRate()(heard, references), CharErrorRate()(heard, references)
rates = ReplyErrorRates()
rates.update(heard, [r["reply"] for r in rows])  # normalises for you
print(f"clean replies: WER {float(wer):.3f}, CER {float(cer):.3f} | ReplyErrorRates: "
      + ", ".join(f"{k} {float(v):.3f}" for k, v in rates.compute().items()))

# %% [markdown]
# And the model's own replies, as the judge heard them in section 3. The reply WER of `s2s evaluate` is
# against the corpus's reply sentence, so it mixes two faults: saying the wrong words, and saying them unclearly.

# %%
display(Markdown(markdown_table(
    ["expected reply", "the model wrote", "the judge heard", "answer heard"],
    [[e["reply"], e["reply_text"][:50], e["heard"][:50], e["spoken_answer"]] for e in audio_run[:8]])))
print(f"accuracy_spoken {pct(summary['accuracy_spoken'])}, reply WER {num(summary['wer'])}, CER {num(summary['cer'])}")

# %% [markdown]
# ## 6. Does it listen? The shortcut test
#
# A model can score well without listening. If a family's answers are predictable (a comparison answers one
# of the two numbers it was given; a count is a small number, and a quarter of the counts are 6), a model that
# learned the family's habits beats zero with no ears at all. This is *shortcut learning*, and audio benchmarks
# are prone to it: a multiple-choice question whose options give the answer away can be answered without the
# audio. The test is simple: take the audio away and see what is left.
#
# `replaced_question` (`s2s/eval/shortcut.py`) makes three replacements of each question's audio:
#
# * **silence**: zeros of the same length;
# * **noise**: white noise at the question's loudness (so a model that keys on loudness or length learns nothing);
# * **swap**: the next question's audio, whose answer we know.

# %%
wav, rate = audio.load(manifest.parent / rows[0]["question_audio"])
other, _ = audio.load(manifest.parent / rows[1]["question_audio"])
print(f"the question: {wav.shape[-1] / rate:4.1f} s, RMS {float(wav.pow(2).mean().sqrt()):.3f}")
for mode in shortcut_modes.MODES:
    replaced = shortcut_modes.replaced_question(mode, wav, other, generator=torch.Generator().manual_seed(0))
    print(f"{mode:12s}  {replaced.shape[-1] / rate:4.1f} s, RMS {float(replaced.pow(2).mean().sqrt()):.3f}")
display(Audio(shortcut_modes.replaced_question("noise", wav)[0].numpy(), rate=rate))

# %% [markdown]
# What each should give is the **chance level**: the accuracy of a guesser that never hears the question, per
# family (`chance_level`: the larger of always giving the family's most common answer and picking one of the
# spoken options at random, 50 % for a comparison of two numbers).

# %%
display(Markdown(markdown_table(["family", "chance"], [[family, pct(chance_level(family))] for family in FAMILIES])))

# %% [markdown]
# Now the three runs. `shortcut_test` runs `evaluate_manifest(..., shortcut=mode)` for each mode and summarises
# each with `shortcut.summarise`; here we make the calls ourselves to keep the per-family figures, and put the
# result where `evaluate(..., shortcut=True)` would. Only the thought's answer matters, so the reply speech is
# skipped (`max_speech_frames=1`: the thought and the reply text are as before).
#
# A model that listens falls to chance on silence and noise, and on swap it answers the *other* question
# (`follows_audio` high, accuracy near chance). A model whose accuracy survives silence has learned a shortcut.

# %%
QUICK = {**GEN, "max_speech_frames": 1}
runs = {mode: evaluate_manifest(pipeline, manifest, question="audio", shortcut=mode, progress=True, **QUICK)
        for mode in shortcut_modes.MODES}
shortcut = {mode: shortcut_modes.summarise(mode, run) for mode, run in runs.items()}
summary["shortcut"] = {"chance": shortcut["silence"]["chance"], **shortcut}  # what shortcut_test returns
display(Markdown(markdown_table(
    ["family", "n", "real audio", *shortcut_modes.MODES, "swap: answers the other", "chance"],
    [[family, f["n"], pct(f["accuracy_thought"]),
      *(pct(runs[m]["per_family"][family]["accuracy_thought"]) for m in shortcut_modes.MODES),
      pct(follows_audio([e for e in runs["swap"]["examples"] if e["family"] == family])), pct(f["chance"])]
     for family, f in summary["per_family"].items()])))
print(f"all: real audio {pct(summary['accuracy_thought'])}; silence {pct(shortcut['silence']['accuracy_thought'])}, "
      f"noise {pct(shortcut['noise']['accuracy_thought'])}, swap {pct(shortcut['swap']['accuracy_thought'])} "
      f"(answers the other question {pct(shortcut['swap']['follows_audio'])}); chance {pct(summary['chance'])}")

# %% [markdown]
# Read the smoke model's figures as what they are: random weights answer at chance (or below, since they
# rarely even write `So the answer is X.`), with or without the audio, and with a handful of questions "0 %"
# and "15 % chance" cannot be told apart (section 8). Nothing here shows that it listens, and nothing can:
# there is nothing to listen with. The shipped model's card reports, on 40 questions: 50 % from their audio,
# 7.5 % on silence, 5 % on noise (chance 14.4 %), and on swapped audio it answers the other question 50 % of
# the time. It answers what it hears.

# %% [markdown]
# ## 7. The report
#
# `write_report` writes what `s2s evaluate --report DIR` writes: `report.md` (the headline figures, the tables
# per family and per voice, the shortcut test), `summary.json` (reusable with `--compare`) and the plots.
# `format_text` is the console table.

# %%
report = write_report(summary, WORKDIR / "report")
print(sorted(p.name for p in report.iterdir()))
print(format_text(summary))

# %%
markdown = (report / REPORT_FILE).read_text()
display(Markdown(markdown.split("## Plots")[0]))  # the plots' links are relative to the folder: shown below

# %%
for name in ("accuracy_by_family", "ttfa_histogram", "accuracy_vs_thought_length"):
    display(Image(filename=str(report / PLOTS[name])))

# %% [markdown]
# * **Accuracy by family**: from audio and from text, beside each family's chance level (the black dash). A
#   family whose bar sits on its dash is not being reasoned about.
# * **Latency**: the time to first audio (`ttfa_ms`) of every spoken answer, with p50 and p90.
# * **Accuracy against thought length**: longer thoughts are harder questions, and more steps to get wrong.
#   Each point is a bin of about equal count; its `n=` label says how much it can be trusted.

# %% [markdown]
# ## 8. Reading the figures honestly
#
# ### Small n: an accuracy is an interval
#
# "3 of 4 right" is 75 %, and also consistent with a model that is right a third of the time. The Wilson score
# interval gives a 95 % range for the true accuracy from k right of n; it behaves well at small n and near 0 or
# 1, where the textbook p ± 1.96·√(p(1−p)/n) gives nonsense such as negative accuracies.

# %%
k = sum(e["thought_correct"] for e in audio_run)
print("this run, from audio:  ", format_interval(k, len(audio_run)), f"| chance {pct(summary['chance'])}")
k = sum(e["thought_correct"] for e in runs["silence"]["examples"])
print("this run, on silence:  ", format_interval(k, len(audio_run)))
# Figures from the shipped model's card (s2s/assets/models/s2s-reasoner-tiny/README.md):
print("card, all 200 from speech:    ", format_interval(117, 200))
print("card, counting (33) from speech:", format_interval(12, 33), "| from text:", format_interval(26, 33))
print("card, comparison (33) from speech:", format_interval(20, 33), "| sequence:", format_interval(24, 33))
print("card, shortcut test, silence: ", format_interval(3, 40), "| chance 14.4 %")

# %%
ns = range(2, 401)
fig, ax = plt.subplots(figsize=(6, 3.2))
for p in (0.5, 0.85):
    widths = [wilson_interval(round(p * n) / n, n) for n in ns]  # [low, high] for each n
    ax.plot(ns, [(high - low) / 2 for low, high in widths], label=f"accuracy {p:.0%}")
for n in (len(audio_run), 33, 200):
    ax.axvline(n, color="grey", linestyle=":")
    ax.annotate(f"n={n}", (n, 0.45), fontsize=8, xytext=(3, 0), textcoords="offset points")
ax.set_xscale("log")
ax.set_xlabel("questions (n)")
ax.set_ylabel("95 % interval, ± (half width)")
ax.set_title("How many questions a figure needs")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the card with this in mind: 87.5 % of 200 is 82.2 to 91.4 %; a family of 33 questions is ± about 16
# points, so "comparison 78.8 %" and "word_problem 82.4 %" are not shown to differ, while time's 93.9 % from
# speech against 51.5 % for release 0.0.3 (same questions) is a real change. And the shortcut
# test's 7.5 % on silence (3 of 40) is below the 14.4 % chance level, but its interval reaches 20 %: "at
# chance", not "below".
#
# ### The modality gap is paired
#
# Both runs answer the *same* questions, so compare them question by question: only the questions where the
# two disagree carry information. If hearing cost nothing, "right from text, wrong from audio" and the
# reverse would be equally likely; an exact sign test on the disagreements (McNemar's test) says how surprising
# the split is.

# %%
text_only = sum(t["thought_correct"] and not a["thought_correct"] for a, t in zip(audio_run, text_run))
audio_only = sum(a["thought_correct"] and not t["thought_correct"] for a, t in zip(audio_run, text_run))
p_value = sign_test(text_only, audio_only)
print(f"right only from text: {text_only}, right only from audio: {audio_only}; two-sided p = {p_value:.3g}")

# %% [markdown]
# ### Perception, then reasoning
#
# A wrong answer from audio has two possible causes: the ears (a number misheard) and the reasoning. Because
# the model hears through a recogniser that writes text, the two can be measured apart: `hearing_cer`,
# `numbers_heard` (every number of the question heard right) and `accuracy_when_numbers_heard`. A benchmark
# that reports one accuracy mixes them: on Big Bench Audio (Artificial Analysis, 2024) GPT-4o answered 92 % of
# the text version and its realtime speech-to-speech mode 66 % of the same questions. The reasoning asked for
# was the same; what changed was the audio path in and out (a cascade that first wrote the question down with
# Whisper lost little).
#
# The shipped model's card, as a worked example: every number heard in 90.5 % of questions, and where they
# were, 94.5 % right; overall 87.5 %. So where a number was lost the answer was right only
# (87.5 − 90.5 × 94.5 %) / 9.5 % ≈ 21 % of the time, largely luck and families with few possible answers.

# %%
heard_ok = [e for e in audio_run if NumbersHeard.right(e["question_heard"], e["question_written"])]
print(f"this run: every number heard in {len(heard_ok)}/{len(audio_run)}; right where they were: "
      f"{sum(e['thought_correct'] for e in heard_ok)}/{len(heard_ok)}")
p_heard, right_heard, overall = 0.875, 0.937, 0.840  # the card's figures
print(f"card: right where a number was lost ≈ {(overall - p_heard * right_heard) / (1 - p_heard):.0%}")

# %% [markdown]
# ### The judge's error is in every spoken figure
#
# `accuracy_spoken` measures the model *and* the judge. The shipped judge reads the right answer out of 200 of
# 200 clean espeak-ng replies, so a perfect model would score about 99 %, and less through a 2 kbit/s
# codec the judge never trained on. Read `accuracy_spoken` from this judge as a lower bound, and check it
# against a second listener that shares nothing with s2s (`s2s evaluate --sphinx`): where two independent
# judges agree, the figure is about the model.
#
# ### Latency belongs to a machine
#
# `ttfa_ms` is measured on this CPU, under whatever else it is doing. The card's 260-275 ms p50 was measured on 2
# AVX2 cores with nothing else running (two runs); the same architecture reached 266 ms on a CPU with avx512_bf16. The
# first question of a run also pays for warming up, and with a few questions p90 is simply the slowest
# one. Always quote the machine with the figure.

# %%
ttfa = [e["ttfa_ms"] for e in audio_run if e.get("ttfa_ms") is not None]
print(f"this CPU: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} torch threads, "
      f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
print("time to first audio per question, in order (ms):", [round(t) for t in ttfa])
print(f"p50 {summary['ttfa_ms_p50']} ms, p90 {summary['ttfa_ms_p90']} ms over {len(ttfa)} replies"
      + (" (a random model's figures on a busy CPU: no claim about the real one)" if SMOKE else ""))

# %% [markdown]
# ## Exercises
#
# 1. Set `MODE = "reproduce"` (200 questions) and run the notebook. Which family has the largest modality gap, and
#    is it larger than its Wilson interval? Is the fault in the ears (`numbers_heard`) or in the reasoning
#    (`from text`)?
# 2. Evaluate with `calculator=False` (pass it in `GEN`). Which families lose most, and is the loss the same
#    from audio and from text? What does that say about where arithmetic happens?
# 3. Write a "deaf" pipeline: a wrapper whose `__call__` ignores the audio and answers each family's most
#    common answer. Run the shortcut test on it. What does `follows_audio` show, and which family fools a
#    single accuracy figure?
# 4. How many questions would you need to tell 62 % from 68 % with 95 % intervals that do not overlap?
#    Use `wilson_interval` to find out, then compare with the 200 of the card.
# 5. Run `judge_figures` on the question audio of a larger test set (`s2s data synth --split test --n 200`).
#    Why is the judge worse on questions than on replies (far worse with `judge.use_text_lm(None)`), and why
#    does that not spoil `accuracy_spoken`?
#
# Next: chapter 8, scaling up: pretrained LLMs and codecs, DDP / FSDP, many nodes (planned).
