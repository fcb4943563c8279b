"""Exposure bias in a word-timed reply: is the spoken answer lost to the model's knowledge or to its own slips?

Each test reply's speech is written four ways and heard by the same judge (an ASR that is not the model):

    corpus          the corpus's own codes: the ceiling that the codec and the judge allow
    teacher-forced  at every code, the model's argmax given the corpus's codes before it (how training sees it)
    free-running    the model answers the question (as text, greedy, as `s2s reply --text --no-word-decoder`
                    does): every code after its own, with the durations it chooses; `reply_text_right` says how
                    often its reply text was right, the most free-running could reach
    word-decoder    the same, with the model folder's word decoder saying each word's frames at once once the
                    model has written the word (`s2s/lm/word_decoder.py`; what `s2s reply` does by default): the
                    decoder also gives the word's duration where it predicts durations (since session 16), else
                    the model chooses it; None for a folder without one

A model that scores high teacher-forced and low free-running knows how to say its words and drifts on its own
slips ("Tom has eight pencils now." heard as "tom has fifty coins now"): a lower teacher-forced loss will not
mend it; scheduled sampling (`scheduled_sampling` in SpeechReasoningLM) trains on those slips, and a word
decoder leaves no slip inside a word to follow. Prints one JSON
object: per model folder, the share of replies whose answer the judge hears, per way, and n.

    python benchmarks/exposure_bias.py                         # the shipped model, 48 held-out test replies
    python benchmarks/exposure_bias.py runs/a runs/b --rows 96 # exported folders, side by side

The default manifest is the test set with the clock-sum thoughts the shipped model was trained on:
    s2s data synth --out data/synth/test --n 200 --seed 1 --split test
    s2s data rethink data/synth/test/manifest.jsonl --seed 1 --out data/synth/test/manifest-clock.jsonl
"""
from __future__ import annotations

import argparse
import json

import torch

from s2s.eval.reasoning import DEFAULT_JUDGE, hear, load_judge, spoken_answer
from s2s.lm.data import ReasoningDataModule
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.tools import answer_from_thought
from s2s.lm.word_clock import ClockReader
from s2s.pipeline import DEFAULT_MODEL, S2SPipeline

WAYS = ("corpus", "teacher-forced", "free-running", "word-decoder")  # how each reply's speech is written


def teacher_forced_codes(model: SpeechReasoningLM, ids: torch.Tensor, predicted: torch.Tensor) -> tuple[list, list]:
    """(the corpus's codes, the model's argmax codes) of one row's reply frames, in order; where the argmax is
    not a code of the codebook due, the corpus's code stands (so both grids have the same shape)."""
    vocab, reader, corpus, own = model.vocab, ClockReader(model.vocab), [], []
    for position, token in enumerate(ids.tolist()):
        at = reader.next_frame()
        reader.push(token)
        if at is None or not vocab.is_speech(token):
            continue
        guess = int(predicted[position - 1])
        corpus.append(int(vocab.speech_code(token)[1]))
        own.append(int(vocab.speech_code(guess if vocab.is_speech(guess, at[1]) else token)[1]))
    return corpus, own


def measure(pipeline: S2SPipeline, batches: list[dict], judge) -> dict:
    """Share of replies whose answer the judge hears, per way (WAYS), over the batches' rows with reply speech."""
    model, codec = pipeline.model, pipeline.codec
    ways = WAYS if model.word_decoder is not None else WAYS[:-1]
    right, n, text_right = dict.fromkeys(WAYS, 0), 0, 0
    k = model.vocab.num_codebooks
    for batch in batches:
        encoded = model.encode_batch(batch)
        with torch.no_grad():
            predicted = model(encoded["ids"], encoded["attention_mask"], encoded.get("heard"))[:, :-1].argmax(-1)
        for row, codes in enumerate(batch["reply_codes"]):
            if codes is None:
                continue
            expected = answer_from_thought(batch["thought"][row])
            corpus, own = teacher_forced_codes(model, encoded["ids"][row], predicted[row])
            waves = [codec.decode(torch.tensor(grid, dtype=torch.long).reshape(-1, k).T[None])[0]
                     for grid in (corpus, own)]
            reply = pipeline(text=batch["question_written"][row], temperature=0.0, word_decoder=False)
            waves.append(reply.waveform)
            if model.word_decoder is not None:
                waves.append(pipeline(text=batch["question_written"][row], temperature=0.0).waveform)
            text_right += int(spoken_answer(reply.reply_text, expected) == expected)
            for way, wave in zip(ways, waves):
                right[way] += int(spoken_answer(hear(judge, wave, codec.sample_rate), expected) == expected)
            n += 1
    if not n:
        raise ValueError("no test row has reply speech: give a manifest whose rows have reply_audio")
    return {**{way: right[way] / n if way in ways else None for way in WAYS}, "reply_text_right": text_right / n,
            "n": n}


def held_out_batches(model_folder: str, model: SpeechReasoningLM, manifest: str, judge: str, rows: int,
                     batch_size: int = 8) -> list[dict]:
    """The first `rows` rows of `manifest` (rounded up to whole batches of `batch_size`), their questions as
    text, each reply word timed by `judge` (as word_timed trains), in the model's tokens and codes."""
    data = ReasoningDataModule(train=manifest, val=manifest, tokenizer=model_folder, question_input="text",
                               codec=model.init_args["codec"], num_codebooks=model.vocab.num_codebooks,
                               align_with=judge, speech_probability=1.0, val_text_examples=0,
                               speech_batch_size=batch_size)
    data.setup("validate")
    return [batch for _, batch in zip(range(max(1, -(-rows // batch_size))), data.val_dataloader())]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=[str(DEFAULT_MODEL)], help="word-timed model folders")
    parser.add_argument("--manifest", default="data/synth/test/manifest-clock.jsonl",
                        help="test rows with reply audio (held-out voices)")
    parser.add_argument("--judge", default=str(DEFAULT_JUDGE), help="a judge folder (default: s2s-judge-tiny), "
                        "which also times each reply word, as the models were trained")
    parser.add_argument("--rows", type=int, default=48, help="test rows to read (rounded up to whole batches of 8)")
    args = parser.parse_args(argv)
    judge = load_judge(args.judge)
    result = {}
    for folder in args.models:
        pipeline = S2SPipeline.from_pretrained(folder, converter=None)
        if pipeline.model.format.name != "word_timed":
            raise SystemExit(f"{folder} is a {pipeline.model.format.name} model; this benchmark times the words of "
                             f"word_timed replies")
        batches = held_out_batches(folder, pipeline.model, args.manifest, args.judge, args.rows)
        result[folder] = measure(pipeline, batches, judge)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
