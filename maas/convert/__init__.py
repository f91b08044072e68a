"""From a trained model to a served one: `maas convert`, verified against the framework's own answers."""

from maas.convert.convert import INT8_TOLERANCE, TOLERANCE, convert_model
from maas.convert.exceptions import ConversionMismatch, UnsupportedSource, UntrustedPickle
from maas.convert.report import ConversionReport

__all__ = [
    "INT8_TOLERANCE",
    "TOLERANCE",
    "ConversionMismatch",
    "ConversionReport",
    "UnsupportedSource",
    "UntrustedPickle",
    "convert_model",
]
