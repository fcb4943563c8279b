"""Evaluation: how good a codec's reconstruction is, and how well a model reasons, speaks and listens."""
from s2s.eval.audio_quality import METRIC_SAMPLE_RATE, LogMelDistance, QualityMetrics, WidebandPESQ, pesq_available
from s2s.eval.metrics import AnswerAccuracy, ReplyErrorRates

__all__ = ["METRIC_SAMPLE_RATE", "AnswerAccuracy", "LogMelDistance", "QualityMetrics", "ReplyErrorRates",
           "WidebandPESQ", "pesq_available"]
