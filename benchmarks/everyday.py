"""Everyday questions, typed: 36 questions of the six kinds and 6 to decline, written by hand as people ask them,
not drawn from the question grammar (`s2s/data/grammar.py`), answered by each model side by side.

The grammar's phrasing split holds out productions written by the same hands as the training ones; these
sentences were written apart from it ("My sister is 9 and I'm 3 years older", "2, 4, 8, 16, what's next?",
British "colours"). 42 questions give a wide interval (at 70 % right, about 55 to 82 %): read them as a
check on the grammar's figures, not as a finer figure.

    python benchmarks/everyday.py                                            # the shipped model and the thinker
    python benchmarks/everyday.py --ckpt s2s/assets/models/s2s-reasoner-tiny --show-wrong
    python benchmarks/everyday.py --spoken espeak    # heard: each question in a held-out espeak-ng voice
    python benchmarks/everyday.py --spoken piper     # heard: piper's joe (pip install 's2s[piper]')

Spoken, each question is rendered once by the engine (espeak-ng: a voice, speed and pitch of the held-out
split drawn per question with seed 0; piper: joe) and every model hears the same audio through its own ears.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s.eval.metrics import wilson_interval  # noqa: E402
from s2s.hearing import abstain  # noqa: E402

MODELS = ROOT / "s2s" / "assets" / "models"
BASELINE = MODELS / "s2s-reasoner-tiny"
THINKER = MODELS / "s2s-thinker-smollm2"
DECLINE = abstain.OUT_OF_SCOPE

QUESTIONS = [  # (family, question as typed, answer)
    ("arithmetic", "what's 17 plus 25", "42"),
    ("arithmetic", "How much is 9 times 8?", "72"),
    ("arithmetic", "Could you work out 100 minus 37 for me?", "63"),
    ("arithmetic", "Add 45 and 38.", "83"),
    ("arithmetic", "What do I get if I multiply 12 by 6 and then take away 10?", "62"),
    ("arithmetic", "what is 56 divided by 7", "8"),
    ("word_problem", "I had 20 dollars and spent 7 on lunch. How much do I have left?", "13"),
    ("word_problem", "There are 4 tables with 6 chairs at each table. How many chairs are there altogether?", "24"),
    ("word_problem", "My sister is 9 and I'm 3 years older. How old am I?", "12"),
    ("word_problem", "A box holds 12 eggs. How many eggs are in 3 boxes?", "36"),
    ("word_problem", "We baked 30 cookies, ate 8 and gave 10 to the neighbours. How many are left?", "12"),
    ("word_problem", "Tom read 15 pages on Monday and twice as many on Tuesday. How many pages did he read on "
                     "Tuesday?", "30"),
    ("comparison", "Which is bigger, 48 or 84?", "84"),
    ("comparison", "What's larger: 7 times 6 or 45?", "45"),
    ("comparison", "Between 19 and 91, which one is smaller?", "19"),
    ("comparison", "Tell me which is greater, 3 + 9 or 2 x 5.", "12"),
    ("comparison", "Which number is less, 250 or 205?", "205"),
    ("comparison", "which is more 15 or 51", "51"),
    ("sequence", "What number comes after 5, 10, 15, 20?", "25"),
    ("sequence", "2, 4, 8, 16, what's next?", "32"),
    ("sequence", "Fill in the next one: 30, 27, 24, 21", "18"),
    ("sequence", "What's the next number in the series 1, 3, 5, 7, 9?", "11"),
    ("sequence", "If the pattern is 100, 90, 80, 70, what comes after that?", "60"),
    ("sequence", "Complete this: 3, 6, 9, 12, ...", "15"),
    ("time", "It's 3:15 now. What time will it be in 30 minutes?", "3:45"),
    ("time", "If I leave at 8:40 and the trip takes 25 minutes, when do I arrive?", "9:05"),
    ("time", "The meeting started at 2:00 and ended at 3:30. How many minutes was it?", "90"),
    ("time", "What time was it 45 minutes before 10:15?", "9:30"),
    ("time", "The bus comes at 7:50 and it's 7:35 now. How many minutes do I have to wait?", "15"),
    ("time", "A movie starts at 6:30 and is 2 hours long. What time does it end?", "8:30"),
    ("counting", "How many letters are in the word pencil?", "6"),
    ("counting", "How many of these are fruits: apple, dog, banana, red?", "2"),
    ("counting", "Count the animals: cat, horse, blue, lemon, duck.", "3"),
    ("counting", "How many colours are in this list: red, green, table, blue?", "3"),
    ("counting", "How many letters does the word garden have?", "6"),
    ("counting", "Out of pear, goat, plum and pink, how many are fruits?", "2"),
    ("out_of_scope", "What's the weather like tomorrow?", DECLINE),
    ("out_of_scope", "Can you tell me a joke?", DECLINE),
    ("out_of_scope", "Who wrote Romeo and Juliet?", DECLINE),
    ("out_of_scope", "How do I bake bread?", DECLINE),
    ("out_of_scope", "What is the capital of Japan?", DECLINE),
    ("out_of_scope", "Play some music please.", DECLINE),
]


def spoken(questions: list[tuple[str, str, str]], engine: str) -> list[tuple]:
    """Each question said once by `engine`: (float32 samples [T], rate), in held-out voices."""
    import random

    from s2s.data import engines

    if engine == "piper":
        from s2s.data import piper

        return piper.render_many([q for _, q, _ in questions], "joe")
    rng = random.Random(0)
    return [engines.render(q, engines.sample_question_voice(rng, "test", ("espeak",))) for _, q, _ in questions]


def answer_all(ckpt: Path, questions: list[tuple[str, str, str]], audio: list[tuple] | None = None) -> list[dict]:
    """Each question typed (or heard, from `audio`) by the model in `ckpt`: what it answered (DECLINE when it
    declined, None when it asked again)."""
    import torch

    from s2s.pipeline import S2SPipeline

    pipeline = S2SPipeline.from_pretrained(ckpt, converter=None)
    if audio is None and hasattr(pipeline, "think_ahead"):  # a pretrained thinker writes several thoughts at once
        pipeline.think_ahead([q for _, q, _ in questions])
    results = []
    for i, (family, question, answer) in enumerate(questions):
        if audio is None:
            reply = pipeline(text=question, max_speech_frames=0)
        else:
            samples, rate = audio[i]
            reply = pipeline(torch.from_numpy(samples).float()[None], rate, max_speech_frames=0)
        got = DECLINE if reply.abstain_reason == DECLINE else reply.answer
        results.append({"family": family, "question": question, "answer": answer, "got": got,
                        "right": got == answer, "heard": reply.question_heard})
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, nargs="+", default=None,
                        help="model folders (default: s2s-reasoner-tiny, and s2s-thinker-smollm2 when it is there)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--show-wrong", action="store_true", help="print every question a model got wrong")
    parser.add_argument("--spoken", choices=("espeak", "piper"), default=None,
                        help="hear the questions instead: said by espeak-ng's held-out voices or piper's joe")
    args = parser.parse_args(argv)
    ckpts = args.ckpt or [BASELINE, *([THINKER] if THINKER.is_dir() else [])]
    questions = QUESTIONS[: args.limit]
    audio = spoken(questions, args.spoken) if args.spoken else None
    print(f"questions {'heard, said by ' + args.spoken if audio else 'typed'}")
    table = {ckpt.name: answer_all(ckpt, questions, audio) for ckpt in ckpts}
    families = list(dict.fromkeys(f for f, _, _ in questions))
    print(f"{'family':14s} {'n':>3s} " + " ".join(f"{name:>24s}" for name in table))
    for family in families + ["all in scope", "all"]:
        cells = []
        for results in table.values():
            rows = [r for r in results if family == "all" or r["family"] == family
                    or (family == "all in scope" and r["family"] != "out_of_scope")]
            cells.append((len(rows), sum(r["right"] for r in rows)))
        n = cells[0][0]
        print(f"{family:14s} {n:3d} " + " ".join(f"{right:>11d} ({100 * right / n:5.1f} %)" for _, right in cells))
    for name, results in table.items():
        right = sum(r["right"] for r in results)
        low, high = wilson_interval(right / len(results), len(results))
        declined = sum(r["got"] == DECLINE for r in results if r["family"] != "out_of_scope")
        print(f"{name}: {right}/{len(results)} right ({100 * low:.0f}-{100 * high:.0f} %, 95 % Wilson); "
              f"in-scope questions declined: {declined}")
        if args.show_wrong:
            for r in results:
                if not r["right"]:
                    heard = f" (heard {r['heard']!r})" if r["heard"] is not None else ""
                    print(f"   {r['question']!r}{heard}: {r['got']} (want {r['answer']})")
    by_family = defaultdict(dict)
    for name, results in table.items():
        for family in families:
            rows = [r for r in results if r["family"] == family]
            by_family[name][family] = sum(r["right"] for r in rows) / len(rows)
    return {"results": table, "by_family": dict(by_family)}


if __name__ == "__main__":
    main()
