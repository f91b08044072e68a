"""Make models small and fast without losing quality: `maas optimize`."""

from maas.optimize.evaluation import EvaluationSet, Measurement, load_evaluation, measure
from maas.optimize.exceptions import LargerThanInput, NotQuantizable
from maas.optimize.quantize import optimize_model
from maas.optimize.report import Mode, OptimizationReport

__all__ = [
    "EvaluationSet",
    "LargerThanInput",
    "Measurement",
    "Mode",
    "NotQuantizable",
    "OptimizationReport",
    "load_evaluation",
    "measure",
    "optimize_model",
]
