"""Generation speed on this machine: speech frames per second and time to first audio frame, three generators.

One SpeechReasoningLM (a llama built from scratch with random weights, sized
like `configs/lm/tiny.yaml` unless told otherwise, codec s2s-tiny for the
speech ids) writes the same think-then-speak reply after the same prompt
(`--prompt-frames` of question audio) with

  ours       `s2s.lm.generate.stream`: greedy, phase masks, KV cache, text streamed as it comes;
  generate   transformers' `backbone.generate()` (greedy, KV cache, no masks) on the same backbone
             and prompt, for exactly as many new ids as ours wrote: the same work without our machinery;
  moshi      the `moshi` package's streaming generator (`LMModel` + `LMGen`, greedy), random weights,
             its temporal transformer as ours (dim, layers, heads, feed-forward) plus a small depth
             transformer, n_q = our codebooks, card = codebook size, text_card = our text vocabulary.

The reply has fixed lengths (`--thought` thought ids, `--reply` reply-text
ids, `--frames` speech frames: the caps, reached because the weights are
changed so that the model never closes a part itself), so every run writes
the same ids.

  TTFA       ms from the start of the call until the first whole speech frame (K ids) exists, not yet
             decoded to audio. Ours and generate() first read the prompt and write the thought and the
             reply text; moshi has no prompt and no text before its speech (its inner monologue runs
             beside the audio), only its codebook delay: its first frame leaves `LMGen.step` at step 2.
  frames/s   speech frames per second while speech is written: (frames - 1) / (last frame - first frame).
             For generate() a frame is K ids, timed by a streamer. x RT: over the codec's frame rate
             (s2s-tiny: 50 frames per second of audio); above 1 is faster than real time.
  total      ms of the whole call, ids/s: ids written per second of it (moshi: text + audio ids).

Figures are medians of `--repeats` runs, the generators interleaved, after
one warm-up run each. Moshi's attention context is set to the steps it runs
(its KV cache is a ring of `context` steps, all attended to each step).

moshi is optional and not in pyproject's extras: moshi 0.2.13 pins
huggingface-hub < 1.0, safetensors < 0.8 and numpy < 2.3, which conflict
with transformers 5 (huggingface-hub >= 1.31, safetensors >= 0.8), so a
resolver would downgrade transformers. Its torch pin (< 2.10) is fine, and
its LM needs only sentencepiece beside what s2s installs, so:

    pip install --no-deps moshi sentencepiece

    python benchmarks/generate.py                       # tiny.yaml size, 50 frames, 5 repeats: about a minute
    python benchmarks/generate.py --frames 8 --repeats 1 --threads 1   # smoke run
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from s2s.lm.generate import build_prompt, stream
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.module import SpeechReasoningModule
from s2s.lm.text_tokenizer import train_text_tokenizer

CODEC_FRAMES_PER_S = 50  # s2s-tiny: 16 kHz audio, hop 320


# ------------------------------------------------------------------ the model
def tokenizer_texts() -> list[dict]:
    """Some English to train a byte-level BPE on, deterministically: the docstrings and comments of s2s itself."""
    root = Path(__file__).resolve().parents[1] / "s2s"
    lines = [line.strip() for path in sorted(root.rglob("*.py")) for line in path.read_text().splitlines()]
    return [{"thought": line} for line in lines if line]


def build_lm(dim: int, layers: int, heads: int, codebooks: int, ffn: int, text_vocab: int,
             codec: str = "s2s-tiny", train: bool = False) -> SpeechReasoningLM | SpeechReasoningModule:
    """A SpeechReasoningLM with random weights that never closes a part itself, in eval mode
    (`train`: its training module as built, for the training benchmark)."""
    backbone = {"model_type": "llama", "hidden_size": dim, "num_hidden_layers": layers, "num_attention_heads": heads,
                "num_key_value_heads": heads, "intermediate_size": ffn, "max_position_embeddings": 4096,
                "tie_word_embeddings": False}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.jsonl"
        manifest.write_text("".join(json.dumps(row) + "\n" for row in tokenizer_texts()))
        train_text_tokenizer(manifest, text_vocab).save_pretrained(Path(tmp) / "tokenizer")
        lm = (SpeechReasoningModule if train else SpeechReasoningLM)(
            backbone_config=backbone, tokenizer=str(Path(tmp) / "tokenizer"), codec=codec, num_codebooks=codebooks)
    if train:
        return lm
    # Zero output rows for </think>, <speak> and <eot>: their logit is 0 while the best legal id's is well above,
    # so greedy decoding runs every part to its cap and each run writes the same number of ids.
    vocab = lm.vocab
    with torch.no_grad():
        lm.backbone.get_output_embeddings().weight[[vocab.end_think, vocab.speak, vocab.eot]] = 0.0
    return lm.eval()


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------ ours
class FrameClock:
    """A stand-in codec for `stream`: it decodes nothing, it notes when each whole frame reaches the decoder."""

    name = "frame-clock"

    def __init__(self, codebook_size: int, codebooks: int):
        self.codebook_size, self.max_codebooks = codebook_size, codebooks
        self.frame_times: list[float] = []

    @contextmanager
    def streaming(self, batch_size: int):
        yield

    def decode_step(self, codes: torch.Tensor) -> torch.Tensor:
        now = time.perf_counter()
        self.frame_times += [now] * codes.shape[-1]
        return codes.new_zeros(1, 1, 0, dtype=torch.float32)

    def flush(self) -> torch.Tensor:
        return torch.zeros(1, 1, 0)


def run_ours(lm, prompt: torch.Tensor, caps: dict) -> dict:
    clock = FrameClock(lm.vocab.codebook_size, lm.vocab.num_codebooks)
    start = time.perf_counter()
    for kind, value in stream(lm, prompt, codec=clock, frames_per_chunk=1, temperature=0.0, **caps):
        if kind == "done":
            reply = value
    end = time.perf_counter()
    return {"start": start, "frames": clock.frame_times, "end": end, "ids": reply.generated_ids.numel(),
            "reply": reply}


# ------------------------------------------------------------------ transformers' generate()
def _base_streamer():
    try:
        from transformers.generation.streamers import BaseStreamer
    except ImportError:  # older transformers
        from transformers import BaseStreamer
    return BaseStreamer


class FrameStreamer(_base_streamer()):
    """Notes the time at which the new-id count reaches first_frame_ids, then every `codebooks` ids after."""

    def __init__(self, first_frame_ids: int, codebooks: int):
        self.first, self.codebooks = first_frame_ids, codebooks
        self.prompt_seen, self.count, self.frame_times = False, 0, []

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() hands the prompt over first
            self.prompt_seen = True
            return
        self.count += value.numel()
        if self.count >= self.first and (self.count - self.first) % self.codebooks == 0:
            self.frame_times.append(time.perf_counter())

    def end(self) -> None:
        pass


def run_generate(lm, prompt: torch.Tensor, new_ids: int, first_frame_ids: int) -> dict:
    backbone = lm.backbone
    streamer = FrameStreamer(first_frame_ids, lm.vocab.num_codebooks)
    eos = backbone.generation_config.eos_token_id
    pad = eos[0] if isinstance(eos, list) else eos
    start = time.perf_counter()
    with torch.no_grad():
        out = backbone.generate(input_ids=prompt[None], attention_mask=torch.ones_like(prompt)[None],
                                max_new_tokens=new_ids, min_new_tokens=new_ids, do_sample=False, use_cache=True,
                                streamer=streamer, pad_token_id=pad)
    end = time.perf_counter()
    return {"start": start, "frames": streamer.frame_times, "end": end, "ids": out.shape[1] - prompt.numel()}


# ------------------------------------------------------------------ moshi
def build_moshi(dim: int, layers: int, heads: int, codebooks: int, ffn: int, codebook_size: int, text_vocab: int,
                steps: int):
    """moshi's LMModel, `loaders._lm_kwargs` shrunk: our temporal size, a one-layer depth transformer of dim / 2."""
    from moshi.models.lm import LMModel

    depth_dim = dim // 2
    kwargs = {
        "dim": dim, "text_card": text_vocab, "existing_text_padding_id": 3, "n_q": codebooks, "dep_q": codebooks,
        "card": codebook_size, "num_heads": heads, "num_layers": layers,
        # moshi's SiLU gating has 2/3 of dim_feedforward hidden units (11/4 dim when it is exactly 4 dim)
        "hidden_scale": 1.5 * ffn / dim, "causal": True, "layer_scale": None, "context": steps,
        "max_period": 10000, "gating": "silu", "norm": "rms_norm_f32", "positional_embedding": "rope",
        "depformer_dim": depth_dim, "depformer_dim_feedforward": int(1.5 * ffn / 2),
        "depformer_num_heads": max(1, heads // 2), "depformer_num_layers": 1, "depformer_layer_scale": None,
        "depformer_multi_linear": True, "depformer_context": codebooks, "depformer_max_period": 10000,
        "depformer_gating": "silu", "depformer_pos_emb": "none", "depformer_weights_per_step": True,
        "delays": [0, 0] + [1] * (codebooks - 1),  # text, codebook 0, then the others one step late (as moshi)
    }
    return LMModel(**kwargs).eval()


def run_moshi(lm_gen, frames: int) -> dict:
    lm = lm_gen.lm_model
    no_input = torch.zeros(1, lm.n_q - lm.dep_q, 1, dtype=torch.long)  # no user stream: n_q == dep_q
    times, ids = [], 0
    start = time.perf_counter()
    with lm_gen.streaming(1):
        while len(times) < frames:
            out = lm_gen.step(no_input)  # [1, 1 + dep_q, 1] text and audio ids, None while the delay fills
            if out is not None:
                times.append(time.perf_counter())
                ids += out.numel()
    end = time.perf_counter()
    return {"start": start, "frames": times, "end": end, "ids": ids}


# ------------------------------------------------------------------ figures
def figures(run: dict) -> dict:
    frames = run["frames"]
    speech_s = frames[-1] - frames[0]
    total_s = run["end"] - run["start"]
    return {"ttfa_ms": 1000 * (frames[0] - run["start"]),
            "frames_per_s": (len(frames) - 1) / speech_s if len(frames) > 1 and speech_s > 0 else float("nan"),
            "total_ms": 1000 * total_s, "ids_per_s": run["ids"] / total_s, "frames": len(frames)}


def median_row(runs: list[dict]) -> dict:
    rows = [figures(run) for run in runs]
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Print the table; returns {generator: figures} (moshi's entry holds `error` when it cannot run)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=192, help="hidden size (default 192, as tiny.yaml)")
    parser.add_argument("--layers", type=int, default=4, help="transformer layers (default 4)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument("--ffn", type=int, default=None, help="feed-forward size (default 8/3 dim: 512 at 192)")
    parser.add_argument("--codebooks", type=int, default=4, help="speech codebooks K, of s2s-tiny's 8 (default 4)")
    parser.add_argument("--text-vocab", type=int, default=512, help="text tokenizer ids (default 512)")
    parser.add_argument("--frames", type=int, default=50, help="speech frames of the reply (default 50: 1 s)")
    parser.add_argument("--thought", type=int, default=32, help="thought ids before the reply (default 32)")
    parser.add_argument("--reply", type=int, default=8, help="reply-text ids before the speech (default 8)")
    parser.add_argument("--prompt-frames", type=int, default=150, help="question audio frames (default 150: 3 s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per generator; the median counts")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-moshi", action="store_true", help="skip moshi even when it is installed")
    parser.add_argument("--moshi-eager", action="store_true",
                        help="run moshi without the torch.compile it applies to its norms, rope and gating")
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error("--frames must be at least 2 (frames/s is timed from the first frame to the last)")
    if args.threads:
        torch.set_num_threads(args.threads)
    ffn = args.ffn or 8 * args.dim // 3
    torch.manual_seed(0)
    lm = build_lm(args.dim, args.layers, args.heads, args.codebooks, ffn, args.text_vocab)
    vocab = lm.vocab
    question = torch.randint(0, vocab.codebook_size, (vocab.num_codebooks, args.prompt_frames),
                             generator=torch.Generator().manual_seed(0))
    prompt = build_prompt(lm.format, question_codes=question)
    caps = {"max_thought_tokens": args.thought, "max_reply_tokens": args.reply, "max_speech_frames": args.frames}

    # Ours once, to learn the ids generate() must write and where the first frame ends.
    warm = run_ours(lm, prompt, caps)
    generated = warm["reply"].generated_ids
    new_ids = generated.numel()
    first_frame_ids = int(vocab.is_speech(generated).nonzero()[vocab.num_codebooks - 1]) + 1

    runners = {"ours": lambda: run_ours(lm, prompt, caps),
               "generate()": lambda: run_generate(lm, prompt, new_ids, first_frame_ids)}
    params = {"ours": n_params(lm.backbone), "generate()": n_params(lm.backbone)}
    notes = {"ours": "s2s.lm.generate.stream", "generate()": "transformers " + __import__("transformers").__version__}
    moshi_error = None
    if args.no_moshi:
        moshi_error = "skipped (--no-moshi)"
    else:
        try:
            import moshi
            from moshi.models.lm import LMGen

            steps = args.frames + 1  # + its largest codebook delay
            moshi_lm = build_moshi(args.dim, args.layers, args.heads, args.codebooks, ffn, vocab.codebook_size,
                                   len(lm.tokenizer), steps)
            lm_gen = LMGen(moshi_lm, use_sampling=False, temp=0.0, temp_text=0.0)
            from moshi.utils.compile import no_compile

            def moshi_run():
                with no_compile() if args.moshi_eager else nullcontext():
                    return run_moshi(lm_gen, args.frames)

            runners["moshi"] = moshi_run
            params["moshi"] = n_params(moshi_lm)
            notes["moshi"] = f"moshi {moshi.__version__} LMGen" + (", eager" if args.moshi_eager else
                                                                    ", its torch.compile")
        except Exception as err:  # not installed, or its imports fail here
            moshi_error = f"{type(err).__name__}: {err}"

    for run in runners.values():  # warm-up
        run()
    runs = {name: [] for name in runners}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
        for name, run in runners.items():
            runs[name].append(run())

    rows = {name: median_row(results) | {"params_m": params[name] / 1e6} for name, results in runs.items()}
    reply = warm["reply"]
    print(f"CPU, {torch.get_num_threads()} torch threads, median of {args.repeats}; llama dim {args.dim}, "
          f"{args.layers} layers, {args.heads} heads, ffn {ffn}; {vocab.num_codebooks} codebooks of "
          f"{vocab.codebook_size}, {len(lm.tokenizer)} text ids")
    print(f"reply: {prompt.numel()} prompt ids, then {new_ids} ids ({args.thought} thought, {args.reply} reply "
          f"text, {args.frames} frames x {vocab.num_codebooks} + 3 markers; capped: {len(reply.capped)} of 3 parts); "
          f"first frame whole at id {first_frame_ids}")
    print(f"{'generator':<11} {'params':>7} {'TTFA ms':>8} {'frames/s':>9} {'x RT':>6} {'total ms':>9} {'ids/s':>7}")
    for name, row in rows.items():
        print(f"{name:<11} {row['params_m']:>6.2f}M {row['ttfa_ms']:>8.1f} {row['frames_per_s']:>9.1f} "
              f"{row['frames_per_s'] / CODEC_FRAMES_PER_S:>6.2f} {row['total_ms']:>9.1f} {row['ids_per_s']:>7.0f}"
              f"   {notes[name]}")
    if moshi_error is not None:
        print(f"{'moshi':<11} not run: {moshi_error}  (install: pip install --no-deps moshi sentencepiece)")
        rows["moshi"] = {"error": moshi_error}
    ratio = rows["generate()"]["frames_per_s"] / rows["ours"]["frames_per_s"]
    if ratio > 1.05:  # few frames or repeats on a busy machine make this noisy: rerun before believing it
        print(f"note: ours wrote speech {ratio:.2f}x slower than generate() (median of {args.repeats})")
    return rows


if __name__ == "__main__":
    main()
