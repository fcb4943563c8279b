"""Evaluation: how good a codec's reconstruction (and later, a spoken reply) is."""
from s2s.eval.audio_quality import METRIC_SAMPLE_RATE, LogMelDistance, QualityMetrics, WidebandPESQ, pesq_available

__all__ = ["METRIC_SAMPLE_RATE", "LogMelDistance", "QualityMetrics", "WidebandPESQ", "pesq_available"]
