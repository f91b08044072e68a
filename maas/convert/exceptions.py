"""The refusals of `maas convert`."""

from __future__ import annotations

from maas.errors import InvalidInput, QualityGateFailed


class UntrustedPickle(InvalidInput):
    """A pickle or joblib file was given without `--trust-pickle`: loading one runs any code
    its author put in it, so nothing was loaded."""


class UnsupportedSource(InvalidInput):
    """The source is no model maas can convert (or not to the format asked for)."""


class ConversionMismatch(QualityGateFailed):
    """The converted model answers the sample rows differently from the original (both
    answers are in the message); nothing was written."""
