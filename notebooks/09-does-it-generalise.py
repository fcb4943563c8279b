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
# "smoke": the shipped default model on 3 questions of each split and 2 out-of-scope ones, no noise row
#          (about a minute; the test suite runs this);
# "full": 200 questions of each split and 200 out-of-scope ones, with the white-noise row (tens of minutes on
#         2 CPU cores).
MODE = "smoke"

# %%
import tempfile
import time
from pathlib import Path

from IPython.display import Audio, Markdown, display

from s2s.data.manifest import read_manifest
from s2s.data.problems import OUT_OF_SCOPE, OUT_OF_SCOPE_FAMILY
from s2s.data.synth import synthesize
from s2s.eval.generalization import format_generalization, generalization
from s2s.pipeline import S2SPipeline

assert MODE in ("smoke", "full"), MODE
SMOKE = MODE == "smoke"
N, N_OUT_OF_SCOPE = (3, 2) if SMOKE else (200, 200)
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb09-"))
print("working in", WORKDIR)


def table(header: list[str], rows: list[list]) -> None:
    """Show rows as a Markdown table (None as '-')."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v).replace("|", "/") for v in row) + " |" for row in rows]
    display(Markdown("\n".join(lines)))


def pct(right: int, n: int) -> str:
    return f"{right}/{n} ({right / n:.0%})" if n else "-"


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


def answered(reply) -> str | None:
    """The model's answer, with declining as an answer: what the question's `answer` field is compared with."""
    return OUT_OF_SCOPE if reply.abstain_reason == OUT_OF_SCOPE else reply.answer


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
    typed_right = sum(answered(t) == row["answer"] for row, t, _ in answers)
    heard_right = sum(answered(h) == row["answer"] for row, _, h in answers)
    declined = sum(answered(h) == OUT_OF_SCOPE for _, _, h in answers)
    summary.append([name, len(answers), pct(typed_right, len(answers)), pct(heard_right, len(answers)),
                    pct(declined, len(answers))])
table(["questions", "n", "typed right", "heard right", "heard, declined"], summary)

# %% [markdown]
# Each question, with what the ear wrote down. A heard answer that differs from the typed one is the ear's
# doing; a typed answer that is wrong is the reasoning's.

# %%
table(["split", "question", "expected", "typed", "heard as", "heard"],
      [[name, row["question_written"], row["answer"], answered(t), h.question_heard, answered(h)]
       for name, answers in results.items() for row, t, h in answers[:3]])

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
# `noise_db` it also hears the first manifest through white noise at that SNR (left out in smoke mode, to stay
# fast). Columns: thought answers right, every number heard right, the ear's character error rate against the
# written question, how often it abstained (heard no question) or declined (said the question is out of scope),
# and first audio at the median.

# %%
start = time.perf_counter()
result = generalization(pipeline, list(manifests.values()), noise_db=None if SMOKE else 10.0)
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
# * **Small n is a wide interval.** Three questions per split prove nothing; run `MODE = "full"` (200 each) before
#   reading a difference between rows.
#
# Next: the same table from the command line, in `tutorials/09-does-it-generalise.md`.
