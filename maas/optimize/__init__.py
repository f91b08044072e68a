"""Make models small and fast without losing quality: `maas optimize`."""

from maas.optimize.evaluation import EvaluationSet, Measurement, load_evaluation, measure
from maas.optimize.exceptions import LargerThanInput, NotPrunable, NotQuantizable
from maas.optimize.prune import prune_model
from maas.optimize.quantize import optimize_model
from maas.optimize.report import Mode, OptimizationReport

__all__ = [
    "EvaluationSet",
    "LargerThanInput",
    "Measurement",
    "Mode",
    "NotPrunable",
    "NotQuantizable",
    "OptimizationReport",
    "load_evaluation",
    "measure",
    "optimize_model",
    "prune_model",
]
