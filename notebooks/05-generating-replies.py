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
# # 05 · Generating spoken replies: phases, sampling, streaming and latency
#
# Notebook 04 loaded the pipeline and let a reply stream out. This one opens the generation loop and puts a
# stopwatch on it. You will:
#
# 1. walk the **phase machine** through a short reply: which ids are legal at each step, how big each mask
#    is, and how the caps make every reply end;
# 2. try the **sampling controls** (greedy, temperature, top-k, top-p, seed) and see how the thought varies;
# 3. **stream** a reply, and check that the streamed audio is the full decode of the same codes;
# 4. **measure latency honestly**: time to first audio (TTFA), total time and real-time factor, a breakdown
#    of where the TTFA goes, a histogram over several questions, and what `frames_per_chunk` changes;
# 5. measure the **latency cost of thinking before speaking** in the three formats, with random weights and
#    forced lengths.
#
# Read alongside: `tutorials/05-generating-replies.md`.

# %% tags=["parameters"]
# "shipped" (the default): the shipped model s2s-reasoner-tiny (a few minutes);
# "smoke": a tiny random model built in seconds, for the tests (its words are noise);
# "reproduce": as "shipped" (this notebook trains nothing; notebook 04 reproduces the model).
MODE = "shipped"

# %%
import json
import random
import statistics
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Audio, display

from s2s.codecs.base import STREAM_TOLERANCE
from s2s.data.problems import generate_problem
from s2s.demo import EXAMPLE_INFO, EXAMPLE_QUESTION
from s2s.lm.batching import reply_opening, word_runs
from s2s.lm.draw import draw
from s2s.lm.formats import FORMATS, SEGMENT_NAMES, SPEECH, Sequence, Turn, even_alignment
from s2s.lm.generate import DONE, generate, phase_machine, sample_next
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.scripted import ScriptedModel, reply_ids, reply_script
from s2s.lm.toy import TINY_LLAMA, tiny_random_model
from s2s.lm.tools import answer_from_thought
from s2s.notebook import check_mode
from s2s.pipeline import DEFAULT_MODEL, S2SPipeline

SMOKE = check_mode(MODE) == "smoke"
FULL = not SMOKE and DEFAULT_MODEL.is_dir()  # the real model, installed
if not SMOKE and not FULL:
    print(f"No default model at {DEFAULT_MODEL} yet, so this run uses a tiny random model, as smoke mode does.")
WORKDIR = Path(tempfile.mkdtemp(prefix="s2s-nb05-"))
# Latency depends on how many threads torch splits each matrix product over. A toy model's matrices are too
# small to share out (threads only wait for each other); the real one uses 2, as benchmarks/latency.py does.
torch.set_num_threads(2 if FULL else 1)
print("working in", WORKDIR, "|", torch.get_num_threads(), "torch thread(s)")

# %% [markdown]
# ## 1. Load the pipeline
#
# As in notebook 04: the shipped default model, or in smoke mode the same parts at toy size with random
# weights (a tokenizer, a recogniser, a codec and an LM, saved to a folder and loaded the same way).

# %%
pipeline = S2SPipeline.from_pretrained() if FULL else S2SPipeline.from_pretrained(tiny_random_model(WORKDIR))
model, tokenizer, vocab, codec = pipeline.model, pipeline.model.tokenizer, pipeline.model.vocab, pipeline.codec
K = vocab.num_codebooks
# A random model may end its reply before it speaks when greedy: sample it, and keep it short.
GEN = {} if FULL else {"temperature": 1.0, "max_thought_tokens": 24, "max_reply_tokens": 8, "max_speech_frames": 25}
# Its random ear writes noise, which the pipeline's abstention gates would (rightly) refuse as no question.
LISTEN = {} if FULL else {"abstain_gates": False}
info = json.loads(EXAMPLE_INFO.read_text())
written_prompt, _ = pipeline.prompt(text=info["question_written"])  # ends with the <think> that opens the reply
print(f"{model.format.name}; vocabulary {vocab.size} ids = {vocab.text_vocab_size} text + "
      f"{len(vocab.special_range)} special + {K} codebooks x {vocab.codebook_size}; codec {codec.name} at "
      f"{codec.frame_rate:g} frames/s")

# %% [markdown]
# ## 2. The phase machine: what may come next
#
# At every step the model scores all `vocab.size` ids, and a **phase machine** (`s2s/lm/generate.py`) masks
# that score to the ids that may legally come next. Whatever the model prefers, the reply is then well
# formed: a thought, a reply text and speech frames whose codebooks come in order, then `<eot>`.
#
# Here is a short hand-made reply in the model's format (a two-line thought, a short reply, 3 speech frames),
# fed id by id through a fresh machine. Each row: the step, the phase, how many ids the mask allows, which,
# and the id the reply writes there.

# %%
PHASE_NAMES = {**dict(enumerate(SEGMENT_NAMES)), DONE: "done"}
# The format's own layout of this reply after the prompt's <think> (`reply_script`: random codes, the frames
# shared out among the reply's words where the format times words).
hand_made = reply_script(model, tokenizer.encode("3 + 4 = 7.\nSo the answer is 7.", add_special_tokens=False),
                         tokenizer.encode("Seven.", add_special_tokens=False), frames=3, seed=0)
machine = phase_machine(model.format)  # default caps: 256 thought ids, 128 reply ids, 500 frames
state, sizes = machine.start(), {}
print(f"{'step':>4}  {'phase':<10} {'allowed':>7}  {'which':<34} written")
for step, token in enumerate(hand_made):
    mask = machine.allowed_mask(state)
    sizes.setdefault(PHASE_NAMES[state.phase], set()).add(int(mask.sum()))
    written = repr(tokenizer.decode([token])) if vocab.is_text(token) else vocab.describe(token)
    print(f"{step:>4}  {PHASE_NAMES[state.phase]:<10} {int(mask.sum()):>7}  {vocab.describe_mask(mask):<34} {written}")
    machine.advance(state, token)
print(f"then: {PHASE_NAMES[state.phase]}; counters {state}")

# %% [markdown]
# The mask sizes per phase, out of the whole vocabulary. Inside a thought or a reply text the model chooses
# among text ids and one closing marker; in speech, between frames, among codebook 0 and `<eot>`; inside a
# frame it has no choice of *kind* at all, only which code of the codebook that is due.

# %%
for phase, allowed in sizes.items():
    print(f"{phase:<10} {sorted(allowed)} of {vocab.size} ids")

# %% [markdown]
# The machine refuses an id out of place (generation never asks it to: it samples from the mask; a
# hand-written reply or a bug would):

# %%
state = machine.start()
try:
    machine.advance(state, vocab.speech_id(1, 5))  # a codebook 1 code inside the thought
except ValueError as error:
    print("refused:", error)

# %% [markdown]
# ### Caps: every reply ends
#
# A model that never writes `</think>` would think forever. Each phase has a cap: at `max_thought_tokens`
# thought ids the only legal id is `</think>`, at `max_reply_tokens` it is `<speak>`, at `max_speech_frames`
# it is `<eot>`. So a think-then-speak reply holds at most `max_thought_tokens + max_reply_tokens +
# K * max_speech_frames + 3` ids, whatever the weights. `Reply.capped` lists the phases a cap closed (the
# model did not choose to stop): a capped thought has probably lost its answer line.

# %%
for caps in ({"max_thought_tokens": 0, "max_reply_tokens": 0, "max_speech_frames": 0},
             {"max_thought_tokens": 3, "max_reply_tokens": 2, "max_speech_frames": 2}):
    reply = generate(model, written_prompt, temperature=1.0, **caps)  # no codec: ids only, nothing decoded
    bound = caps["max_thought_tokens"] + caps["max_reply_tokens"] + K * caps["max_speech_frames"] + 3
    layout = model.format.build(reply.turn)  # the reply parses back into a Turn, which lays out the same ids
    assert torch.equal(layout.ids, reply.ids)
    start = reply.prompt_length - 1  # from the prompt's <think>
    print(f"{caps}\n  {len(reply.generated_ids)} ids (at most {bound}), capped: "
          f"{[SEGMENT_NAMES[p] for p in reply.capped]}\n  "
          + draw(Sequence(layout.ids[start:], layout.segment[start:]), vocab))

# %% [markdown]
# ## 3. Sampling: greedy, temperature, top-k, top-p
#
# `sample_next` turns the masked scores (logits) into one id. Temperature 0 is **greedy**: the best id,
# always. Otherwise the logits are divided by the temperature (below 1 sharpens, above 1 flattens), **top-k**
# keeps the k best ids, **top-p** keeps the most likely ids until they hold p of the probability, and one id
# is drawn. The mask comes first, so top-k and top-p only ever choose among legal ids.
#
# On six made-up candidates for the next word, 1000 draws each:

# %%
words = ["seven", "7", "eight", "six", "banana", "the"]
logits = torch.tensor([4.0, 3.5, 2.0, 1.5, 0.0, -1.0])
every = torch.ones(len(words), dtype=torch.bool)
settings = {"greedy": {"temperature": 0.0}, "T=0.5": {"temperature": 0.5}, "T=1": {"temperature": 1.0},
            "T=2": {"temperature": 2.0}, "T=1, top-k 2": {"temperature": 1.0, "top_k": 2},
            "T=1, top-p 0.9": {"temperature": 1.0, "top_p": 0.9}}
print(f"{'':<16}" + "".join(f"{w:>8}" for w in words))
for name, options in settings.items():
    generator = torch.Generator().manual_seed(0)
    counts = Counter(sample_next(logits, every, generator=generator, **options) for _ in range(1000))
    print(f"{name:<16}" + "".join(f"{counts[i] / 1000:>8.0%}" for i in range(len(words))))

# %% [markdown]
# Now the model, on the example question written, with four seeds per setting (speech capped at 0 frames:
# only the text matters here). Greedy ignores the seed; sampling with the same seed repeats itself exactly,
# so a sampled reply is reproducible too. (In smoke mode the "thoughts" are random tokens: watch how many
# *different* ones each setting gives, not what they say. A random model's choices are nearly uniform, so one
# seed, which draws the same random numbers, can pick the same ids at several temperatures.)

# %%
TEXT_ONLY = {**GEN, "max_speech_frames": 0, "calculator": True}
sampled = {}
for name, options in {"greedy": {"temperature": 0.0}, "T=0.7": {"temperature": 0.7},
                      "T=1.0": {"temperature": 1.0}, "T=1.5": {"temperature": 1.5},
                      "T=1.0, top-k 5": {"temperature": 1.0, "top_k": 5},
                      "T=1.0, top-p 0.8": {"temperature": 1.0, "top_p": 0.8}}.items():
    replies = sampled[name] = [generate(model, written_prompt, **{**TEXT_ONLY, **options, "seed": seed})
                               for seed in range(4)]
    answers = Counter(answer_from_thought(r.thought) for r in replies)
    print(f"{name:<17} {len({r.thought for r in replies})} different thoughts of 4; answers {dict(answers)}")
    print(f"{'':<17} seed 0: {replies[0].thought.replace(chr(10), ' | ')[:90]!r}")
again = generate(model, written_prompt, **{**TEXT_ONLY, "temperature": 1.0, "seed": 3})
print("T=1.0 with seed 3 again, the same thought:", again.thought == sampled["T=1.0"][3].thought)

# %% [markdown]
# A trained model is sure of its short thoughts: it takes a high temperature before they change, and then
# they change for the worse. Greedy is the pipeline's default: for a reasoning model the most likely thought
# is usually the best one.
# Sampling earns its place when you draw several thoughts and vote on the answer (self-consistency), which
# multiplies the time to the first audio unless the answers are drawn in parallel.

# %% [markdown]
# ## 4. Streaming, and the streamed audio is the full decode
#
# `pipeline.stream` yields events as they happen (notebook 04, section 4). Speech ids go to the codec's
# **streaming decoder** every `frames_per_chunk` whole frames. The last event is ("done", Reply), and the
# Reply keeps when each part of it began (`marks_ms`, from the start of generation).
#
# A random model may end its reply before it speaks, so smoke mode tries seeds until one reply has a few
# frames of speech. The real model speaks greedily on the first try.

# %%
for seed in range(20):
    STREAM = {**GEN, **LISTEN, "seed": seed}
    events = list(pipeline.stream(audio=EXAMPLE_QUESTION, **STREAM))
    spoken_reply = events[-1][1]
    if spoken_reply.reply_codes.shape[-1] >= 8:
        break
chunks = [value for kind, value in events if kind == "audio"]
print(f"seed {STREAM['seed']}: {len(events)} events; kinds in order of arrival:",
      " ".join(kind for kind, _ in events[:12]), "..." if len(events) > 12 else "")
print("parts began (ms from the start of generation):", spoken_reply.marks_ms)
print(f"{spoken_reply.reply_codes.shape[-1]} speech frames -> {len(chunks)} audio chunks of",
      [c.shape[-1] for c in chunks], "samples")

# %% [markdown]
# Decode the same codes in one go with `codec.decode` and compare. The streaming decoder re-decodes
# `stream_context_frames` past frames with every step and holds back the last `stream_lookahead_frames`
# frames until the frames after them arrive (the decoder looks a little ahead), so the stream matches the
# full decode up to float noise (`STREAM_TOLERANCE`).

# %%
streamed = torch.cat(chunks, dim=-1)  # [1, T]
full = codec.decode(spoken_reply.reply_codes[None])[0]  # [1, 1, F * hop] -> [1, T]
difference = float((streamed - full).abs().max())
print(f"streamed {streamed.shape[-1]} samples, full decode {full.shape[-1]}; max |difference| {difference:.2e} "
      f"(tolerance {STREAM_TOLERANCE:g})")
assert streamed.shape == full.shape and difference <= STREAM_TOLERANCE
display(Audio(streamed[0].numpy(), rate=codec.sample_rate))

# %% [markdown]
# The same decoder by hand: open a stream with `codec.streaming()`, feed it 2 frames at a time with
# `decode_step`, and `flush()` what is held back at the end. The first step returns nothing: with
# `stream_lookahead_frames` frames of lookahead, a frame's samples are final only once the frames after it
# exist. That wait is part of every time to first audio.

# %%
codes = spoken_reply.reply_codes[None]  # [1, K, F]
with codec.streaming(1):
    pieces = [codec.decode_step(chunk) for chunk in codes.split(2, dim=-1)]
    pieces.append(codec.flush())
by_hand = torch.cat(pieces, dim=-1)[0]
print(f"lookahead {codec.stream_lookahead_frames} frames, context {codec.stream_context_frames} frames")
print("frames of audio out per step:", [p.shape[-1] // codec.hop_samples for p in pieces[:-1]],
      "| flush:", pieces[-1].shape[-1] // codec.hop_samples)
print(f"max |by hand - full| {float((by_hand - full).abs().max()):.2e}")

# %% [markdown]
# ## 5. Measuring latency honestly
#
# What a listener feels is the silence between the end of their question and the first sound of the reply:
# the **time to first audio** (TTFA). `pipeline(...)` reports three timings, all from the moment the
# question is complete (the file read):
#
# * `ttfa_ms`: to the first sample of reply audio: hearing, the prompt, every id before the first audible
#   frames, and the decoder step that makes them;
# * `total_ms`: to the last sample;
# * `rtf`: seconds of work per second of reply audio (below 1: faster than real time; once speech has
#   started, an RTF below 1 means it never stalls).
#
# (`Reply.first_audio_ms` counts from the start of *generation*, after hearing: the smaller number.)
#
# ### Where the time to first audio goes
#
# `pipeline(...)` splits its `ttfa_ms` stage by stage (`timings["ttfa_stages_ms"]`): hearing and the prompt
# ids before generation starts, then the stages generation records as it goes (`Reply.ttfa_stages_ms`): the
# prompt's forward, the first thought piece, the rest of the thought, the reply text, the speech ids before
# the first decoder step, and that step.

# %%
pipeline(audio=EXAMPLE_QUESTION, **STREAM)  # warm-up: the first call in a process pays for setting up
timed_reply = pipeline(audio=EXAMPLE_QUESTION, **STREAM)
stages, ttfa = timed_reply.timings["ttfa_stages_ms"], timed_reply.timings["ttfa_ms"]
for name, ms in stages.items():
    print(f"{name:<34} {ms:>8.1f} ms  {ms / ttfa:>4.0%}")
print(f"{'time to first audio':<34} {ttfa:>8.1f} ms | thought {timed_reply.thought[:60]!r}...")

# %% [markdown]
# In think-then-speak the thought and the reply text are written before any speech, so on a real model they
# are most of the TTFA: latency grows with the length of the reasoning. (With random weights the thought is
# as long as its cap allows.)
#
# ### Several questions
#
# One measurement is an anecdote. Answer several questions, after one warm-up, and look at the spread; quote
# a median and a high percentile (p90), never the best run. Smoke mode (and a checkout without
# `data/synth/test`) uses the spoken example and written problems; shipped mode spoken test questions.

# %%
TEST_MANIFEST = Path("../data/synth/test/manifest.jsonl").resolve()
if FULL and TEST_MANIFEST.is_file():
    rows = [json.loads(line) for line in TEST_MANIFEST.read_text().splitlines()[:8]]
    questions = [{"audio": TEST_MANIFEST.parent / row["question_audio"]} for row in rows]
else:
    rng = random.Random(1)
    questions = [{"audio": EXAMPLE_QUESTION}] + [{"text": generate_problem(rng).question_written} for _ in range(7)]
seeds = range(1) if FULL else range(3)  # a random model's reply lengths vary with the seed: more samples
pipeline(**questions[0], **STREAM)  # warm-up
timings = [pipeline(**question, **{**STREAM, "seed": seed}).timings for question in questions for seed in seeds]
spoken = [t for t in timings if t["ttfa_ms"] is not None]
print(f"{len(timings)} replies, {len(timings) - len(spoken)} without speech (no TTFA)")
for key in ("ttfa_ms", "total_ms", "rtf"):
    values = sorted(t[key] for t in spoken)
    print(f"{key:<9} median {statistics.median(values):>8.1f}   p90 {values[int(0.9 * (len(values) - 1))]:>8.1f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, (key, label) in zip(axes, {"ttfa_ms": "time to first audio (ms)", "total_ms": "total (ms)",
                                   "rtf": "real-time factor"}.items()):
    ax.hist([t[key] for t in spoken], bins=10)
    ax.set_xlabel(label)
axes[0].set_ylabel("replies")
fig.tight_layout()

# %% [markdown]
# ### How `frames_per_chunk` changes TTFA
#
# The decoder runs every `frames_per_chunk` frames. Fewer frames per step could mean sound sooner, but the
# decoder's lookahead sets a floor: no sample is final before `stream_lookahead_frames + 1` frames exist.
# Same question, same seed (so the very same ids), four chunk sizes, the median of 3 runs each. The frames
# written before the first audio are read off the first chunk: its samples plus the held-back lookahead.

# %%
print(f"{'frames_per_chunk':>16} {'first audio ms (from generation)':>33} {'frames first':>13} {'chunks':>7}")
for frames_per_chunk in (1, 2, 4, 8):
    runs = [list(pipeline.stream(audio=EXAMPLE_QUESTION, **STREAM, frames_per_chunk=frames_per_chunk))
            for _ in range(3)]
    audio = [value for kind, value in runs[0] if kind == "audio"]
    frames = min(audio[0].shape[-1] // codec.hop_samples + codec.stream_lookahead_frames,
                 spoken_reply.reply_codes.shape[-1])  # written before the first audio: its samples + lookahead
    first_ms = statistics.median(run[-1][1].first_audio_ms for run in runs)
    print(f"{frames_per_chunk:>16} {first_ms:>33.1f} {frames:>13} {len(audio):>7}")

# %% [markdown]
# Up to the lookahead, a smaller chunk changes nothing but the number of decoder calls (each re-decodes its
# context, so more calls cost more in total); beyond it, each extra frame per chunk is one more frame of ids
# (K of them) to write before the first sound. With the pipeline's default of 2 and the tiny codec's
# lookahead of 3 frames, the first audio waits for 4 frames (80 ms of speech at 50 frames a second).

# %% [markdown]
# ### Speculative decoding: several ids a forward
#
# On a CPU a forward of a few ids costs little more than a forward of one: the weights are read once either
# way. So the loop *drafts* the next few thought and reply ids, feeds them with the id it must feed anyway,
# and keeps the logits after each drafted id. While the ids it chooses (greedy or sampled, from the model's
# own logits) agree with the draft, the next logits are already there; at the first disagreement the rest
# of the draft leaves the cache. The ids are exactly those of decoding one id a forward, in fewer forwards.
# The drafts need no model: a **phrase table** of the training corpus's thoughts ("So the answer is",
# counted into the model folder by `s2s lm phrases`) and **prompt lookup** (what followed the last ids where
# they came before, in the question as heard); a word-timed reply's speech is drafted from how the corpus's one
# voice says each word (`speech_drafts.json.gz`, `s2s lm phrases --align-with JUDGE`). `speculate=0` turns it off. (Smoke mode's random model has no
# phrase table and writes little that repeats; shipped mode shows the real gain.)

# %%
phrases = pipeline.model.phrases
print(f"phrase table: {len(phrases):,} phrases" if phrases is not None else "phrase table: none (prompt lookup only)")
words = pipeline.model.speech_drafts
print(f"speech drafts: {len(words):,} words at their usual lengths" if words is not None else "speech drafts: none")
print(f"{'question':>8} {'ids':>5} {'forwards, one id each':>22} {'with drafts':>12} {'first audio ms':>22}")
for i, question in enumerate(questions[:4]):
    list(pipeline.stream(**question, **STREAM))  # warm-up
    one = list(pipeline.stream(**question, **STREAM, speculate=0))[-1][1]
    drafted = list(pipeline.stream(**question, **STREAM))[-1][1]
    assert drafted.ids.tolist() == one.ids.tolist()  # the very same reply
    ms = "-" if one.first_audio_ms is None else f"{one.first_audio_ms:.0f} -> {drafted.first_audio_ms:.0f}"
    print(f"{i:>8} {len(one.generated_ids):>5} {one.forwards:>22} {drafted.forwards:>12} {ms:>22}")

# %% [markdown]
# ## 6. The latency cost of thinking before speaking
#
# Notebook 04 counted the ids each format writes before its first speech id. Here we time them. We build a
# model with **random weights** in each format (the shipped architecture in shipped mode, the toy one in smoke
# mode) and force its output layer to write the format's own layout of a reply with a thought of a chosen
# length (`ScriptedModel`, `s2s/lm/scripted.py`: a forward hook overwrites the logits, as
# `benchmarks/latency.py --random` does). All the real work
# still runs: every forward, the masks, the decoder. Questions are written, so hearing (the same for every
# format) is left out. These figures are latency only, never quality.

# %%
ARCH = ({"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 8, "num_attention_heads": 4,
         "intermediate_size": 768, "max_position_embeddings": 1024} if FULL else TINY_LLAMA)
TOKENIZER = str(DEFAULT_MODEL if FULL else WORKDIR / "tokenizer")
CODEC = "s2s-tiny" if FULL else str(WORKDIR / "codec")
THOUGHT_LENGTHS, REPLY_LENGTH, FRAMES, REPEATS = (8, 32, 96), 6, 12, 3
thought_text = tokenizer.encode(info["question_written"] + " So the answer is 14.\n", add_special_tokens=False) * 10
reply_text = tokenizer.encode("Ben has fourteen stickers now.", add_special_tokens=False) * 3
words = [len(word) for word in word_runs(tokenizer, reply_text[:REPLY_LENGTH])]  # how word_timed reads it aloud
OPENING = min(reply_opening(tokenizer, tokenizer.decode(reply_text[:REPLY_LENGTH])), REPLY_LENGTH)  # "Ben has"
codes = torch.randint(0, vocab.codebook_size, (K, FRAMES), generator=torch.Generator().manual_seed(0))
# One id a forward (no drafts): the forced reply is counted in ids fed back, and drafted ids are fed too.
caps = {"max_thought_tokens": 256, "max_reply_tokens": 128, "max_speech_frames": 500, "calculator": False,
        "speculate": 0}

results = {}
for name in FORMATS:
    torch.manual_seed(0)
    lm = SpeechReasoningLM(backbone_config=ARCH, tokenizer=TOKENIZER, codec=CODEC, num_codebooks=K, format=name).eval()
    forced, timed = ScriptedModel(lm), S2SPipeline(lm, codec)
    for n, length in enumerate((THOUGHT_LENGTHS[0],) + THOUGHT_LENGTHS):  # the first is a warm-up
        turn = Turn(heard_length=1, thought_ids=thought_text[:length], reply_ids=reply_text[:REPLY_LENGTH],
                    reply_codes=codes, reply_alignment=even_alignment(REPLY_LENGTH, FRAMES, words),
                    reply_opening=OPENING)
        script = reply_ids(lm.format, turn)
        layout = lm.format.build(turn)
        before = int((layout.segment == SPEECH).nonzero()[0]) - int((layout.ids == vocab.think).nonzero()[0]) - 1
        ttfa = []
        for _ in range(REPEATS):
            forced.script(script)
            spoken = timed(text=info["question_written"], **caps)
            # Every id fed back is the script's, and all the frames were spoken: no scripted id was refused.
            assert forced.fed == script[:len(forced.fed)], "the phase machine refused a scripted id"
            assert spoken.waveform.shape[-1] == FRAMES * codec.hop_samples
            ttfa.append(spoken.timings["ttfa_ms"])
        if n:
            results[name, length] = (before, statistics.median(ttfa))

print(f"{'format':<22}" + "".join(f"{f'thought {n}':>20}" for n in THOUGHT_LENGTHS))
for name in FORMATS:
    print(f"{name:<22}" + "".join(f"{results[name, n][0]:>6} ids {results[name, n][1]:>7.1f} ms"
                                  for n in THOUGHT_LENGTHS))
fig, ax = plt.subplots(figsize=(6, 3.5))
for name in FORMATS:
    ax.plot(THOUGHT_LENGTHS, [results[name, n][1] for n in THOUGHT_LENGTHS], marker="o", label=name)
ax.set_xlabel("thought ids")
ax.set_ylabel("time to first audio (ms)")
ax.legend()
fig.tight_layout()

# %% [markdown]
# * **think_then_speak**, **text_guided**, **word_aligned** and **word_timed** wait for the whole thought: their
#   TTFA rises with its length, one forward per id (text-guided then needs a few reply ids, word-aligned one
#   word, think-then-speak all of them, word-timed all of them and one duration; the word it reads aloud is
#   written for it and costs no forward of its own).
# * **think_while_speaking** speaks after the first thought chunk (8 ids by default): the same 10 ids before
#   its first speech whatever the thought's length, so its line is flat up to noise (on a busy machine noise
#   only ever adds time: rerun, or compare minima). The price is that the first words are spoken before the
#   answer is known, so the model must learn to start with words that commit to nothing ("Let me see, ...").
# * **word_timed_while_thinking** is flat too (8 thought ids, then the first word of the reply's opening),
#   and it makes that price explicit: only the words before the first number ("Ben has") may be said before
#   the thought is whole, so the number is never guessed.
#
# Reasoning depth is paid in silence unless the format lets speech start early. Other ways out, from the
# field, are in the tutorial: a faster drafter for the thought (speculative decoding), a short spoken
# acknowledgement while thinking, or thinking while the user is still talking.

# %% [markdown]
# ## Exercises
#
# 1. **Caps.** Answer the test questions with `max_thought_tokens` 16, 32 and 64 (shipped mode). How often is
#    the thought capped (`Reply.capped`), how often is the answer then lost, and what does each cap save in
#    TTFA?
# 2. **Self-consistency.** Sample five thoughts per question at `temperature=0.7` and take the majority
#    answer. Does accuracy rise? What would it cost in TTFA if the five ran one after another, and if they
#    ran as one batch?
# 3. **Threads.** Repeat the histogram with `torch.set_num_threads(1)` and `(2)`. Which is faster for the toy
#    model and which for the real one, and why?
# 4. **Chunk sizes.** Rebuild section 6's think-while-speaking model with `format_options=
#    {"thought_chunk_tokens": 4}` and `16`. How does the flat line move? What does a first chunk of 4 ids
#    leave the model to say?
# 5. **The decoder's share.** Time `codec.decode_step` alone on 4 frames of the real codec and compare it
#    with one LM forward (`1000 / reply.tokens_per_s` ms). Which one should you optimise first?
#
# Next: chapter 6, style transfer: voices, conversion and style controls (planned).
