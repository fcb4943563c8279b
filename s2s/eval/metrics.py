"""Reasoning figures as torchmetrics `Metric`s, so `s2s evaluate` and a Lightning validation loop share them.

* `AnswerAccuracy`: the fraction of predicted answers exactly equal to the
  reference answers ("36", "-32", "9:45"); a missing answer (None) is wrong.
* `ReplyErrorRates`: word and character error rates (torchmetrics'
  `WordErrorRate`, `CharErrorRate`, as one MetricCollection) of what a
  listener heard in the reply against the reply text, both normalised as the
  character judge spells (lower case, no punctuation, hyphens as spaces).
* `NumbersHeard`: the fraction of spoken questions whose numbers the model's
  own hearing wrote down exactly (all of them, in order). With the hearing's
  CER it says how much of a wrong answer is perception, not reasoning.
* `Percentiles`: p50 and p90 (or any quantiles) of values gathered over a run,
  such as times to first audio; nearest rank, so a percentile is always one of
  the values measured. Means (thought length) are torchmetrics' `MeanMetric`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.text import CharErrorRate, WordErrorRate
from torchmetrics.utilities import dim_zero_cat

from s2s.asr.labels import CharLabels


def wilson_interval(fraction: float | None, n: int, z: float = 1.96) -> list[float] | None:
    """The Wilson score interval [low, high] (95 % at z = 1.96) of a fraction measured on n items: how far a
    figure on 40 or 200 questions can be from the model's true rate. None when nothing was measured."""
    if fraction is None or n <= 0:
        return None
    centre = (fraction + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (fraction * (1 - fraction) / n + z * z / (4 * n * n)) ** 0.5
    return [max(0.0, centre - half), min(1.0, centre + half)]


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided p-value of the exact sign test (McNemar's, exact) on paired answers: `only_a` questions right one
    way only (from text, say), `only_b` right the other way only (from audio). Questions both ways answered alike
    say nothing about the difference, so only the disagreements count; with no difference each is a fair coin."""
    disagree = only_a + only_b
    if disagree == 0:
        return 1.0
    tail = sum(math.comb(disagree, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2 ** disagree)


class FractionRight(Metric):
    """The fraction of (prediction, reference) pairs that `right` accepts (0 before any update), summed across
    processes. Subclasses say what is right and what their lists hold (`ITEMS`: predicted / reference nouns)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    ITEMS = ("predictions", "references")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    @staticmethod
    def right(pred, target) -> bool:
        raise NotImplementedError

    def update(self, preds: Sequence, target: Sequence) -> None:
        predicted, reference = self.ITEMS
        if isinstance(preds, str) or isinstance(target, str):
            raise TypeError(f"{type(self).__name__}.update takes lists of {reference.split()[-1]}, not one string")
        if len(preds) != len(target):
            raise ValueError(f"{len(preds)} {predicted} for {len(target)} {reference}")
        self.correct += sum(self.right(p, t) for p, t in zip(preds, target))
        self.total += len(target)

    def compute(self) -> torch.Tensor:
        return self.correct.float() / self.total.clamp(min=1)


class AnswerAccuracy(FractionRight):
    """update(predicted answers, reference answers); compute() -> the fraction exactly equal (0 before any update)."""

    ITEMS = ("predicted answers", "reference answers")

    @staticmethod
    def right(pred: str | None, target: str) -> bool:
        return pred is not None and str(pred).strip() == str(target).strip()


def normalise(text: str) -> str:
    """`text` as the character judge spells it: "The answer is Thirty-Six." -> "the answer is thirty six"."""
    return CharLabels().normalise(text)


class ReplyErrorRates(MetricCollection):
    """update(heard transcripts, reply texts); compute() -> {"wer", "cer"}, both texts normalised first.

    torchmetrics' WordErrorRate and CharErrorRate, fed normalised text. A pair
    whose normalised reference is empty says nothing about the words and is skipped.
    """

    def __init__(self):
        # compute_groups=False: the two share state names, and equal states once must not merge them for good.
        super().__init__({"wer": WordErrorRate(), "cer": CharErrorRate()}, compute_groups=False)

    @staticmethod
    def _normalised(preds: Sequence[str], target: Sequence[str]) -> tuple[list[str], list[str]]:
        if len(preds) != len(target):
            raise ValueError(f"{len(preds)} transcripts for {len(target)} reference texts")
        pairs = [(normalise(p or ""), normalise(t)) for p, t in zip(preds, target)]
        pairs = [(p, t) for p, t in pairs if t]
        return [p for p, _ in pairs], [t for _, t in pairs]

    def update(self, preds: Sequence[str], target: Sequence[str]) -> None:
        super().update(*self._normalised(preds, target))

    def forward(self, preds: Sequence[str], target: Sequence[str]) -> dict:
        return super().forward(*self._normalised(preds, target))


_NUMBER = re.compile(r"\d+")


class NumbersHeard(FractionRight):
    """update(heard questions, written questions); compute() -> the fraction whose numbers were all heard right.

    "What is 21 + 4?" heard as "What is 21 + 4" counts as right; heard as "What is 20 + 14?" does not.
    A question with no numbers counts as right when the hearing wrote none either.
    """

    ITEMS = ("heard questions", "written questions")

    @staticmethod
    def right(heard: str | None, written: str) -> bool:
        return _NUMBER.findall(heard or "") == _NUMBER.findall(written)


class Percentiles(Metric):
    """Quantiles (nearest rank) of every value seen, gathered across processes: `compute()` gives a tensor of
    one value per quantile of `quantiles`, NaN where nothing was seen. Latency is reported at p50 and p90."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, quantiles: Sequence[float] = (0.5, 0.9), **kwargs):
        super().__init__(**kwargs)
        if not quantiles or any(not 0.0 <= q <= 1.0 for q in quantiles):
            raise ValueError(f"quantiles must be fractions in [0, 1], got {list(quantiles)}")
        self.quantiles = tuple(float(q) for q in quantiles)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, values: Sequence[float] | torch.Tensor) -> None:
        values = torch.as_tensor(values, dtype=torch.float64).flatten()
        if values.isnan().any():
            raise ValueError("Percentiles.update got NaN: leave out what was not measured")
        self.values.append(values)

    def compute(self) -> torch.Tensor:
        values = dim_zero_cat(self.values) if self.values else torch.zeros(0, dtype=torch.float64)
        if values.numel() == 0:
            return torch.full((len(self.quantiles),), float("nan"), dtype=torch.float64)
        ordered = values.sort().values
        ranks = [min(ordered.numel() - 1, int(round(q * (ordered.numel() - 1)))) for q in self.quantiles]
        return ordered[ranks]
