"""Forced alignment: the Viterbi CTC path on hand-made frames, word timing, and words tiling a recording."""
import math

import pytest
import torch

from s2s.asr.align import ctc_align, frames_per_word, word_spans, word_starts
from s2s.asr.recognizer import CTCRecognizer

TINY = {"dim": 16, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}


def emissions(best: list[int], classes: int = 5, sure: float = 0.9) -> torch.Tensor:
    """log-probs [F, C] whose most likely label at frame t is best[t]."""
    probs = torch.full((len(best), classes), (1 - sure) / (classes - 1))
    probs[torch.arange(len(best)), torch.tensor(best)] = sure
    return probs.log()


def test_ctc_align_follows_the_likely_frames_and_spells_exactly_the_targets():
    assert ctc_align(emissions([0, 0, 1, 1, 0, 2, 2, 0]), [1, 2]) == [-1, -1, 0, 0, -1, 1, 1, -1]
    # The frames prefer label 3, which is not in the transcript: the path still spells 1 then 2.
    path = ctc_align(emissions([1, 3, 3, 3, 2]), [1, 2])
    assert path[0] == 0 and path[-1] == 1 and sorted(set(path) - {-1}) == [0, 1]
    # A repeated label needs a blank between its two copies.
    assert ctc_align(emissions([1, 0, 1]), [1, 1]) == [0, -1, 1]
    with pytest.raises(ValueError, match="too short"):
        ctc_align(emissions([1, 1]), [1, 1])
    assert ctc_align(emissions([0, 0]), []) == [-1, -1]


def test_word_starts_share_the_pause_between_words():
    # "ab" "c" with a space (4) between: a a b _ _ 4 c c
    log_probs = emissions([1, 1, 2, 0, 0, 4, 3, 3])
    assert word_starts(log_probs, [[1, 2], [3]], separator=4) == [0.0, (2 + 6) / 2]
    # A word with no labels gets no frames: it starts where the next one does (or at the end, if last).
    assert word_starts(log_probs, [[1, 2], [], [3]], separator=4) == [0.0, 4.0, 4.0]
    assert word_starts(log_probs, [[1, 2, 3], []], separator=None) == [0.0, 8.0]
    # Too few frames to spell the words: they share the frames by their number of labels.
    assert word_starts(emissions([1, 2, 3]), [[1, 1, 2], [3, 3, 3]], separator=4) == [0.0, 1.5]


def test_word_spans_tile_the_recording_in_order():
    torch.manual_seed(0)
    judge = CTCRecognizer(labels="chars", **TINY).eval()  # untrained: the path is arbitrary, the tiling is not
    seconds = 1.2
    wav = 0.3 * torch.sin(2 * math.pi * 220 * torch.arange(round(seconds * 24000)) / 24000)
    spans = word_spans(judge, wav, 24000, "It is  forty-two.")
    assert [word for word, _, _ in spans] == ["It", "is", "forty-two."]
    assert spans[0][1] == 0 and spans[-1][2] == pytest.approx(seconds)
    assert all(a[2] == b[1] and a[1] <= a[2] for a, b in zip(spans, spans[1:]))
    with pytest.raises(ValueError, match="character labels"):
        word_spans(CTCRecognizer(labels="written", **TINY).eval(), wav, 24000, "It is")


def test_frames_per_word_cut_the_codes_at_each_word_start_and_add_up():
    spans = [("It", 0.0, 0.21), ("is", 0.21, 0.5), ("four.", 0.5, 1.1)]
    assert frames_per_word(spans, 50, 55) == [10, 15, 30]  # starts at frames 0, 10 (0.21 s), 25 (0.5 s)
    assert frames_per_word(spans, 50, 20) == [10, 10, 0]  # codes shorter than the audio: clipped, still tiling
    assert frames_per_word([], 50, 10) == []
