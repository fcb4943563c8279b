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
# # 09 · Does it generalise?
#
# A model scored on its own generator's sentences is scored on what it has read. A user asks in their own
# words, about bigger numbers, and about things the model cannot do. In this notebook you will put the shipped
# default model in front of each of those shifts and see where it holds and where it breaks:
#
# 1. render four small question sets: in-distribution (`test`), held-out phrasings (`phrasing`), sizes just
#    beyond training (`stretch`) and questions outside what the model can work on (`out_of_scope`);
# 2. answer every question typed and heard, and put the splits side by side;
# 3. listen to a question and the model's reply from each split;
# 4. print the generalization table that `s2s evaluate --shifts` prints, and learn to read it worst row first.
#
# Read alongside: `tutorials/09-does-it-generalise.md`.

# %% tags=["parameters"]
# MODE: "shipped" (the default: the shipped default model on 10 questions of each split and 5 out-of-scope ones,
#       no noise row: about a minute and a half on 2 CPU cores), "smoke" (the same model on 3 of each and 2
#       out-of-scope ones, for the tests: under a minute) or "reproduce" (the card's 200 of each split and 200
#       out-of-scope ones, with the white-noise row: tens of minutes). Nothing is trained here; every mode runs the
#       shipped model.
MODE = "shipped"

# %%
import tempfile
import time
from pathlib import Path

from IPython.display import Audio, Markdown, display

from s2s.data.manifest import read_manifest
from s2s.data.problems import OUT_OF_SCOPE, OUT_OF_SCOPE_FAMILY
from s2s.data.synth import synthesize
from s2s.eval.generalization import format_generalization, generalization
from s2s.eval.reasoning import answer_given
from s2s.eval.report import fraction, markdown_table
from s2s.notebook import check_mode
from s2s.pipeline import S2SPipeline

check_mode(MODE)
N, N_OUT_OF_SCOPE = {"smoke": (3, 2), "shipped": (10, 5), "reproduce": (200, 200)}[MODE]
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb09-"))
print("working in", WORKDIR)

# %% [markdown]
# ## 1. Four question sets, each a shift
#
# `synthesize` draws each set from its split of the question grammar (`s2s/data/grammar.py`) and speaks it in
# held-out voices: every split but `train` does, so no row below is heard in a training voice.
#
# * **in-distribution** (`test`): the phrasings and sizes the model trained on, fresh draws. The baseline.
# * **phrasing**: openings, verbs and sentence shapes held out of training ("Could you figure out ... for me?").
#   Does it read the question, or recognise a sentence?
# * **stretch**: training phrasings, sizes just beyond training (four operations, three-digit operands, four-step
#   stories, longer sequences and words). Does the method carry further?
# * **out of scope**: "Tell me a joke.", "Who won the world cup in 1998?". The right answer is to decline.

# %%
SPLITS = {"in-distribution": {"split": "test"}, "phrasing": {"split": "phrasing"},
          "stretch": {"split": "stretch"},
          "out of scope": {"split": "phrasing", "families": [OUT_OF_SCOPE_FAMILY], "n": N_OUT_OF_SCOPE}}
manifests = {}
for name, how in SPLITS.items():
    how = dict(how)
    n = how.pop("n", N)
    manifests[name] = synthesize(WORKDIR / name.replace(" ", "-"), n, seed=3, overwrite=True, progress=False, **how)
    first = read_manifest(manifests[name])[0]
    print(f"{name:<16} {n:4d} questions, e.g. {first['question_written']}   -> {first['answer']}")

# %% [markdown]
# ## 2. Typed and heard, side by side
#
# The shipped default model answers every question twice: from its written form (typed, no hearing: the
# ceiling) and from its audio (heard, the way a user asks). On an out-of-scope question, "right" means it
# declined, which the pipeline reports as `abstain_reason == "out of scope"` with a spoken reply that says so.

# %%
start = time.perf_counter()
pipeline = S2SPipeline.from_pretrained()
print(f"loaded the default model in {time.perf_counter() - start:.1f} s")

start = time.perf_counter()
results = {}  # split -> [(row, typed reply, heard reply)]
for name, manifest in manifests.items():
    results[name] = []
    for row in read_manifest(manifest):
        typed = pipeline(text=row["question_written"], max_speech_frames=0)  # the thought is enough here
        heard = pipeline(manifest.parent / row["question_audio"])
        results[name].append((row, typed, heard))
print(f"answered {sum(len(r) for r in results.values())} questions twice in {time.perf_counter() - start:.0f} s")

# %%
summary = []
for name, answers in results.items():
    typed_right = sum(answer_given(t) == row["answer"] for row, t, _ in answers)
    heard_right = sum(answer_given(h) == row["answer"] for row, _, h in answers)
    declined = sum(answer_given(h) == OUT_OF_SCOPE for _, _, h in answers)
    summary.append([name, len(answers), fraction(typed_right, len(answers)), fraction(heard_right, len(answers)),
                    fraction(declined, len(answers))])
display(Markdown(markdown_table(["questions", "n", "typed right", "heard right", "heard, declined"], summary)))

# %% [markdown]
# Each question, with what the ear wrote down. A heard answer that differs from the typed one is the ear's
# doing; a typed answer that is wrong is the reasoning's.

# %%
display(Markdown(markdown_table(
    ["split", "question", "expected", "typed", "heard as", "heard"],
    [[name, row["question_written"], row["answer"], answer_given(t), h.question_heard, answer_given(h)]
     for name, answers in results.items() for row, t, h in answers[:3]])))

# %% [markdown]
# ## 3. Listen
#
# One question of each split, and the model's spoken reply to it.

# %%
for name, answers in results.items():
    row, _, heard = answers[0]
    print(f"[{name}] {row['question']}  ->  {heard.reply_text}")
    display(Audio(str(manifests[name].parent / row["question_audio"])),
            Audio(heard.waveform[0].numpy(), rate=heard.sample_rate))

# %% [markdown]
# ## 4. The generalization table
#
# `generalization` runs the same questions the way `s2s evaluate --manifest M --shifts M2 M3 ...` does: one row
# per shift (engine and voice, question split, out of scope), heard rows worst first, then the typed rows. With
# `noise_db` it also hears the first manifest through white noise at that SNR (in reproduce mode only, to stay
# fast). Columns: thought answers right, every number heard right, the ear's character error rate against the
# written question, how often it abstained (heard no question) or declined (said the question is out of scope),
# and first audio at the median.

# %%
start = time.perf_counter()
result = generalization(pipeline, list(manifests.values()), noise_db=10.0 if MODE == "reproduce" else None)
print(format_generalization(result))
print(f"\n({time.perf_counter() - start:.0f} s)")

# %% [markdown]
# ## How to read it
#
# * **Lead with the worst row.** The table prints it first and names it on its last line. A user meets every
#   shift at once, so the worst in-scope row is closer to what they get than the average is.
# * **Compare heard with typed on the same questions.** The typed row is the ceiling hearing can reach; the gap
#   below it is the ear's. A typed row that drops from in-distribution to phrasing or stretch is the reasoning's.
# * **Do not tune to one split.** Each held-out split measures one shift only because nothing was chosen by
#   looking at it. Choose thresholds and settings on training data; a split looked at while building is a
#   development split, so report on a fresh seed.
# * **Expect questions no one here wrote.** The held-out phrasings were written by the same hands as the training
#   ones; a user's are not. Read the phrasing row as an optimistic estimate of how well the model reads new
#   sentences, not as the figure for people.
# * **Small n is a wide interval.** Ten questions per split prove little; run `MODE = "reproduce"` (200 each) before
#   reading a difference between rows.
#
# Next: the same table from the command line, in `tutorials/09-does-it-generalise.md`.
