"""Time to first audio: median ttfa_ms on this CPU, hearing included; targets think-then-speak <= 300 ms,
think-while-speaking <= 150 (and <= 350 ms with the Whisper ear on held-out engines).

ttfa_ms is `S2SPipeline.__call__`'s: from the moment the question is
complete to the first sample of reply audio. It holds hearing the question
(the VAD, the CTC ear and, where it is unsure, Whisper; printed apart as
hear_ms, and the thought as think_ms), the prompt forward, every id written
before the first speech frames (the thought; in think-then-speak also the
reply text) and the codec's streaming decoder for the first chunk
(`--frames-per-chunk` frames, the pipeline's default 2). total_ms runs to the
last sample, rtf = processing seconds per second of reply audio.

Two kinds of row:

  model    `--ckpt DIR` (default: the shipped `s2s.pipeline.DEFAULT_MODEL`), in its own format, greedy, on
           `--questions` spoken questions of `--manifest` (and the bundled example question): what a user sees,
           with the pipeline's speculative decoding (`--speculate 0` for one id a forward: the same replies;
           `--no-speech-drafts` leaves the folder's speech drafts out and drafts thought and reply text only).
  random   `--random`: for each of `--formats`, a SpeechReasoningLM of the shipped architecture
           (configs/lm/reasoner-tiny.yaml: llama 256 x 8 layers, 4 heads, ff 768; hearing a conformer of
           192 x 5 layers as configs/asr/question-encoder.yaml; tokenizer runs/lm/tokenizer; s2s-tiny, 4
           codebooks) with RANDOM weights, through the same pipeline on the same question wavs. These rows
           measure latency only, never quality, one id a forward (no drafts): the LM head's logits are
           overwritten (a forward hook) so that greedy decoding writes exactly the format's own layout
           (`Format.build`) of a reply of `--thought` thought ids, `--reply` reply ids and `--frames` speech
           frames (defaults: the corpus means with the shipped tokenizer: 45, 6 and 75 = 1.5 s), and the
           recogniser's logits so that each question is heard as its written text's tokens (a trained
           recogniser's segment count). All the real computation still runs: every forward, the masks, the
           text decoding, the codec.

Think-while-speaking uses its format's default chunk sizes unless `--thought-chunk` / `--speech-chunk`
are given; the figures printed say which. Medians over questions x `--repeats`, after one warm-up run.

    python benchmarks/latency.py                               # the shipped model, 20 test questions
    python benchmarks/latency.py --manifest data/synth/test-piper/manifest.jsonl --questions 100 \
        --hearing hearing whisper-tiny.en                      # held-out engine; beside the CTC ear and Whisper alone
    python benchmarks/latency.py --random                      # every format, random weights, forced lengths
    python benchmarks/latency.py --random --ckpt DIR --threads 2 --repeats 3
    python benchmarks/latency.py --random --questions 0 --frames 8 --repeats 1   # smoke run: the example only
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from pathlib import Path

import torch

from s2s.asr.recognizer import CTCRecognizer
from s2s.asr.whisper import forget_encodings
from s2s.codecs import load_codec
from s2s.lm.batching import tokenize
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.scripted import ScriptedModel, reply_script
from s2s.pipeline import DEFAULT_MODEL, S2SPipeline

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "s2s" / "assets" / "example_question.wav"
FORMAT_NAMES = ("think_then_speak", "think_while_speaking", "text_guided", "word_aligned", "word_timed",
                "word_timed_while_thinking")
TARGETS_MS = {"think_then_speak": 350.0, "think_while_speaking": 150.0, "word_timed": 350.0,  # hearing included
              "word_timed_while_thinking": 150.0}
# Texts of the example question's reply, for the forced thought and reply ids (repeated or cut to length).
EXAMPLE_THOUGHT = "Ben has 9 stickers and buys 5 more.\nThen 9 + 5 = 14.\nSo the answer is 14."
EXAMPLE_REPLY = "Ben has fourteen stickers now."


# ------------------------------------------------------------------ questions
def questions(manifest: Path, count: int) -> list[dict]:
    """The bundled example question, then the first `count` spoken questions of `manifest` (if it exists).

    Each: {"audio": path, "written": question text, "thought": ..., "reply": ...}.
    """
    example = json.loads(EXAMPLE.with_suffix(".json").read_text())
    rows = [{"audio": str(EXAMPLE), "written": example["question_written"], "thought": EXAMPLE_THOUGHT,
             "reply": EXAMPLE_REPLY}]
    if count > 0 and manifest.is_file():
        with manifest.open() as lines:
            for line in lines:
                row = json.loads(line)
                if row.get("question_audio"):
                    rows.append({"audio": str(manifest.parent / row["question_audio"]),
                                 "written": row.get("question_written") or row.get("question") or "",
                                 "thought": row.get("thought") or EXAMPLE_THOUGHT,
                                 "reply": row.get("reply") or EXAMPLE_REPLY})
                if len(rows) > count:
                    break
    return rows


# ------------------------------------------------------------------ random weights, forced lengths
def exactly(ids: list[int], n: int) -> list[int]:
    """`ids` repeated or cut to exactly n ids."""
    ids = ids or [0]
    return (ids * math.ceil(n / len(ids)))[:n]


def build_random(format_name: str, args, hearing_dir: str) -> SpeechReasoningLM:
    """The shipped architecture (or the sizes given) with random weights, in `format_name`, eval mode. The
    weights are rounded to float16 values, as a model saved with `s2s export --half` (the shipped one) has
    them, so FastDecoder times the same float16 products it uses for such a model."""
    backbone = {"model_type": "llama", "hidden_size": args.dim, "num_hidden_layers": args.layers,
                "num_attention_heads": args.heads, "num_key_value_heads": args.heads,
                "intermediate_size": args.ffn, "max_position_embeddings": 4096, "tie_word_embeddings": False}
    options = {}
    if format_name == "think_while_speaking":
        options = {k: v for k, v in (("thought_chunk_tokens", args.thought_chunk),
                                     ("speech_chunk_frames", args.speech_chunk)) if v is not None}
    if format_name == "word_timed_while_thinking" and args.thought_chunk is not None:
        options = {"thought_chunk_tokens": args.thought_chunk}
    torch.manual_seed(0)
    model = SpeechReasoningLM(backbone_config=backbone, tokenizer=str(args.tokenizer), codec=args.codec,
                              num_codebooks=args.codebooks, format=format_name, format_options=options,
                              hearing=hearing_dir).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    return model


# ------------------------------------------------------------------ timing
def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(100 * q) - 1]


def summarise(source: str, format_name: str, replies: list, extra: dict) -> dict:
    ttfa = [r.timings["ttfa_ms"] for r in replies]
    hear = [r.timings["hear_ms"] for r in replies if r.timings.get("hear_ms") is not None]
    think = [r.timings["think_ms"] for r in replies if r.timings.get("think_ms") is not None]
    return {"source": source, "format": format_name, "runs": len(replies),
            "hear_ms_p50": statistics.median(hear) if hear else None,
            "think_ms_p50": statistics.median(think) if think else None,
            "ttfa_ms_p50": statistics.median(ttfa), "ttfa_ms_p90": percentile(ttfa, 0.9),
            "total_ms_p50": statistics.median(r.timings["total_ms"] for r in replies),
            "rtf_p50": statistics.median(r.timings["rtf"] for r in replies),
            "audio_s_mean": statistics.mean(r.waveform.shape[-1] / r.sample_rate for r in replies), **extra}


def run_model(ckpt: Path, rows: list[dict], args, hearing: str | None = None) -> dict:
    """The real model in its own format (with `hearing` for its ear, "a,b" for ears in turn): figures over
    `rows` x repeats."""
    ears = None if hearing is None else hearing.split(",") if "," in hearing else hearing
    pipeline = S2SPipeline.from_pretrained(ckpt, hearing=ears)
    if args.no_speech_drafts:
        pipeline.model.speech_drafts = None
    options = {"frames_per_chunk": args.frames_per_chunk, "speculate": args.speculate}
    pipeline(audio=rows[0]["audio"], **options)  # warm-up

    def first_hearing(row):  # Whisper keeps its last question's encoding: each timed reply encodes anew
        forget_encodings()
        return pipeline(audio=row["audio"], **options)

    replies = [first_hearing(row) for _ in range(args.repeats) for row in rows]
    spoken = [r for r in replies if r.timings["ttfa_ms"] is not None]
    thought = [len(tokenize(pipeline.model.tokenizer, [r.thought])[0]) for r in replies]
    extra = {"thought_tokens": statistics.mean(thought), "silent": len(replies) - len(spoken),
             "chunks": chunk_note(pipeline.model.format), "speech_drafts": pipeline.model.speech_drafts is not None}
    extra["hearing"] = hearing or "its own"
    if not spoken:  # no time to first audio exists; the other rows still run
        return {"source": str(ckpt), "format": pipeline.model.format.name, "runs": 0, **extra}
    return summarise(str(ckpt), pipeline.model.format.name, spoken, extra)


def run_random(format_name: str, rows: list[dict], args, hearing_dir: str) -> dict:
    """One format with random weights and forced lengths: figures over `rows` x repeats."""
    model = build_random(format_name, args, hearing_dir)
    forced = ScriptedModel(model)
    k = model.vocab.num_codebooks
    pipeline = S2SPipeline(model, load_codec(args.codec, num_codebooks=k))
    caps = {"max_thought_tokens": max(256, args.thought), "max_reply_tokens": max(128, args.reply),
            "max_speech_frames": max(500, args.frames), "frames_per_chunk": args.frames_per_chunk,
            # A thought cut to --thought ids may end in "=", where the calculator would write ids the script
            # does not hold; the forced lengths are the point here, so no calculator. Nor drafts: the script
            # counts ids fed back, and drafted ids are fed too (and some taken back).
            "calculator": False, "speculate": 0}
    tokenizer = model.tokenizer
    prepared = []
    for i, row in enumerate(rows):
        thought = exactly(tokenize(tokenizer, [row["thought"]])[0], args.thought)
        reply = exactly(tokenize(tokenizer, [row["reply"]])[0], args.reply)
        prepared.append((row, reply_script(model, thought, reply, args.frames, seed=i),
                         tokenize(tokenizer, [row["written"]])[0]))

    def answer(row, script, heard):
        forced.script(script)
        forced.hear(heard)
        spoken = pipeline(audio=row["audio"], **caps)
        samples = args.frames * pipeline.codec.hop_samples
        fed = forced.fed or []
        if fed != script[:len(fed)] or len(fed) < len(script) - 2 or spoken.waveform.shape[-1] != samples:
            raise RuntimeError(f"{format_name}: the forced reply was not written as scripted ({len(fed)} of "
                               f"{len(script)} ids fed back, {spoken.waveform.shape[-1]} of {samples} samples)")
        return spoken

    answer(*prepared[0])  # warm-up
    replies = [answer(*p) for _ in range(args.repeats) for p in prepared]
    return summarise("random", format_name, replies,
                     {"thought_tokens": args.thought, "silent": 0, "chunks": chunk_note(model.format)})


def chunk_note(fmt) -> str:
    if fmt.name == "think_while_speaking":
        return f"thought chunk {fmt.thought_chunk_tokens} ids, speech chunk {fmt.speech_chunk_frames} frames"
    if fmt.name == "text_guided":
        return (f"offset {fmt.offset_tokens} ids, then {fmt.speech_chunk_frames} frames / "
                f"{fmt.text_chunk_tokens} ids")
    if fmt.name == "word_timed_while_thinking":
        return f"a word of the reply's opening after every {fmt.thought_chunk_tokens} thought ids"
    return ""


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> list[dict]:
    """Print the table and the target lines; returns one dict of figures per row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, default=None,
                        help="a SpeechReasoningLM.save_pretrained folder (default: the shipped model, unless only "
                             "--random rows are asked for)")
    parser.add_argument("--manifest", type=Path, default=ROOT / "data/synth/test/manifest.jsonl",
                        help="spoken questions (default data/synth/test/manifest.jsonl)")
    parser.add_argument("--questions", type=int, default=20,
                        help="questions of the manifest, after the bundled example (default 20; 0: the example only)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the questions (default 1)")
    parser.add_argument("--hearing", nargs="+", default=None, metavar="EAR",
                        help="also time the model with these ears in the same run (whisper-tiny.en, hearing: its "
                             "own CTC ear, or hearing,whisper-tiny.en: ears in turn), beside its own")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--frames-per-chunk", type=int, default=2,
                        help="speech frames per streaming decoder step (default 2, the pipeline's)")
    parser.add_argument("--speculate", type=int, default=8,
                        help="the model row's drafted ids a forward (default 8, the pipeline's; 0: one id a forward)")
    parser.add_argument("--no-speech-drafts", action="store_true",
                        help="the model row without the folder's speech drafts (speech_drafts.json.gz)")
    random = parser.add_argument_group("--random rows: random weights, forced lengths (latency only)")
    random.add_argument("--random", action="store_true", help="measure --formats with random weights")
    random.add_argument("--formats", nargs="+", choices=FORMAT_NAMES, default=list(FORMAT_NAMES))
    random.add_argument("--thought", type=int, default=45, help="thought ids (default 45, the corpus mean)")
    random.add_argument("--reply", type=int, default=6, help="reply-text ids (default 6)")
    random.add_argument("--frames", type=int, default=75, help="speech frames (default 75: 1.5 s of s2s-tiny)")
    random.add_argument("--thought-chunk", type=int, default=None,
                        help="think_while_speaking (and word_timed_while_thinking) thought chunk ids (default: "
                             "the format's)")
    random.add_argument("--speech-chunk", type=int, default=None,
                        help="think_while_speaking speech chunk frames (default: the format's)")
    random.add_argument("--dim", type=int, default=256, help="LM hidden size (default 256)")
    random.add_argument("--layers", type=int, default=8, help="LM layers (default 8)")
    random.add_argument("--heads", type=int, default=4, help="LM attention heads (default 4)")
    random.add_argument("--ffn", type=int, default=768, help="LM feed-forward size (default 768)")
    random.add_argument("--hearing-dim", type=int, default=192, help="conformer width (default 192)")
    random.add_argument("--hearing-layers", type=int, default=5, help="conformer layers (default 5)")
    random.add_argument("--hearing-heads", type=int, default=4, help="conformer heads (default 4)")
    random.add_argument("--tokenizer", type=Path, default=ROOT / "runs/lm/tokenizer",
                        help="text tokenizer folder (default runs/lm/tokenizer)")
    random.add_argument("--codec", default="s2s-tiny", help="codec name or folder (default s2s-tiny)")
    random.add_argument("--codebooks", type=int, default=4, help="codebooks the LM writes (default 4)")
    args = parser.parse_args(argv)
    if args.speculate < 0:
        parser.error("--speculate must be at least 0")
    for name in ("questions", "repeats", "threads", "frames_per_chunk", "thought", "reply", "frames"):
        if getattr(args, name) < (0 if name == "questions" else 1):
            parser.error(f"--{name.replace('_', '-')} must be at least {0 if name == 'questions' else 1}")
    torch.set_num_threads(args.threads)

    ckpt = args.ckpt
    if ckpt is None and not args.random:
        if DEFAULT_MODEL.is_dir():
            ckpt = DEFAULT_MODEL
        else:
            print(f"no shipped model at {DEFAULT_MODEL} yet: measuring the --random rows only")
            args.random = True
    if args.random and not args.tokenizer.is_dir():
        parser.error(f"no tokenizer folder at {args.tokenizer}; pass --tokenizer DIR (the LM's text tokenizer)")
    rows = questions(args.manifest, args.questions)
    if args.questions and len(rows) == 1:
        print(f"note: no spoken questions in {args.manifest}; timing the bundled example question only")

    results = []
    if ckpt is not None:
        results.append(run_model(ckpt, rows, args))
        for hearing in args.hearing or []:
            results.append(run_model(ckpt, rows, args, hearing))
    if args.random:
        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            recognizer = CTCRecognizer(labels=f"tokenizer:{args.tokenizer}", dim=args.hearing_dim,
                                       layers=args.hearing_layers, heads=args.hearing_heads)
            hearing_dir = str(recognizer.save_pretrained(Path(tmp) / "hearing"))
            for name in args.formats:
                results.append(run_random(name, rows, args, hearing_dir))

    report(results, rows, args)
    return results


def report(results: list[dict], rows: list[dict], args) -> None:
    print(f"CPU, {torch.get_num_threads()} torch threads; {len(rows)} questions x {args.repeats} repeats "
          f"(p50/p90 over them, after one warm-up); {args.frames_per_chunk} frames per decoder step")
    if args.random:
        print(f"random rows: llama {args.dim} x {args.layers} layers, {args.heads} heads, ffn {args.ffn}; hearing "
              f"conformer {args.hearing_dim} x {args.hearing_layers} layers; {args.codec}, {args.codebooks} "
              f"codebooks; forced {args.thought} thought ids, {args.reply} reply ids, {args.frames} frames "
              "(random weights: latency only)")
    print(f"{'source':<8} {'format':<26} {'runs':>4} {'ttfa p50':>9} {'ttfa p90':>9} {'total p50':>10} "
          f"{'rtf p50':>8} {'thought':>8}  chunks")
    for r in results:
        source = "random" if r["source"] == "random" else "model"
        if not r["runs"]:
            print(f"{source:<8} {r['format']:<26} {0:>4}  no reply had speech: no time to first audio")
            continue
        print(f"{source:<8} {r['format']:<26} {r['runs']:>4} {r['ttfa_ms_p50']:>9.1f} {r['ttfa_ms_p90']:>9.1f} "
              f"{r['total_ms_p50']:>10.1f} {r['rtf_p50']:>8.3f} {r['thought_tokens']:>8.1f}  {r['chunks']}")
        if r.get("hear_ms_p50") is not None:
            think = "-" if r["think_ms_p50"] is None else f"{r['think_ms_p50']:.1f}"
            print(f"{'':<8} ear: {r.get('hearing', 'its own')}; of first audio p50: hearing {r['hear_ms_p50']:.1f} ms, "
                  f"thinking {think} ms, the rest is the reply text and the first speech chunk")
    for r in results:
        if r["source"] != "random":
            print(f"model: {r['source']}" + (f" ({r['silent']} replies without speech left out)" if r["silent"]
                                              else ""))
    for name, target in TARGETS_MS.items():
        for r in (r for r in results if r["format"] == name and r["runs"]):
            verdict = "met" if r["ttfa_ms_p50"] <= target else "NOT met"
            which = "random weights, forced lengths" if r["source"] == "random" else "the model"
            print(f"{name} p50 ttfa {r['ttfa_ms_p50']:.1f} ms (target <= {target:g}): {verdict}  [{which}]")


if __name__ == "__main__":
    main()
