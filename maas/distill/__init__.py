"""Make a large model small by knowledge distillation: `maas distill`."""

from maas.distill.distill import STUDENTS, distill_model
from maas.distill.report import DistillReport

__all__ = ["STUDENTS", "DistillReport", "distill_model"]
