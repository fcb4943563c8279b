"""Did the requested style arrive? Fractions over pairs of (the same words spoken in the normal style, spoken in
the requested one), as torchmetrics Metrics so that validation can log them too."""
from __future__ import annotations

from collections.abc import Sequence

from s2s.eval.metrics import FractionRight

STYLES = {"rate": ("slow", "normal", "fast"), "pitch": ("low", "normal", "high")}
DIRECTIONS = {"slow": -1, "low": -1, "normal": 0, "fast": 1, "high": 1}


def style_axis(style: str) -> str:
    """'rate' or 'pitch' for a style word; a ValueError naming the allowed words otherwise."""
    for axis, words in STYLES.items():
        if style in words and style != "normal":
            return axis
    allowed = sorted({w for words in STYLES.values() for w in words} - {"normal"})
    raise ValueError(f"unknown style {style!r}; choose one of {', '.join(allowed)}")


class StyleFollowed(FractionRight):
    """The fraction of outputs whose measure (syllable rate for slow/fast, median F0 for low/high) moved from
    the normal rendering in the requested direction. A measure that could not be taken (None: silence, too
    short) counts as not followed, never as skipped."""

    ITEMS = ("(normal, styled) measure pairs", "requested styles")

    def update(self, preds: Sequence[tuple[float | None, float | None]], target: Sequence[str]) -> None:
        for style in target:
            if style == "normal":
                raise ValueError("style 'normal' asks for no change; compare slow/fast or low/high against normal")
            style_axis(style)  # an unknown style: names the allowed ones
        super().update(preds, target)

    @staticmethod
    def right(pred: tuple[float | None, float | None], target: str) -> bool:
        normal, styled = pred
        if normal is None or styled is None:
            return False
        return (styled - normal) * DIRECTIONS[target] > 0
