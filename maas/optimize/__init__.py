"""Make models small and fast without losing quality: `maas optimize`."""

from maas.optimize.evaluation import EvaluationSet, Measurement, load_evaluation, measure
from maas.optimize.quantize import Mode, OptimizationReport, optimize_model

__all__ = [
    "EvaluationSet",
    "Measurement",
    "Mode",
    "OptimizationReport",
    "load_evaluation",
    "measure",
    "optimize_model",
]
