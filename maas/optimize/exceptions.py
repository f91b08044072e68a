"""The refusals of `maas optimize`, beyond the quality gate's."""

from __future__ import annotations

from maas.errors import InvalidInput, QualityGateFailed


class NotQuantizable(InvalidInput):
    """ONNX Runtime's quantizer can rewrite none of the model's weights (the operators that hold
    them, scikit-learn's ai.onnx.ml ones for instance, are named); nothing was written."""


class LargerThanInput(QualityGateFailed):
    """The result is bigger than the model it was made from and that was not allowed; nothing
    was written."""


class NotPrunable(InvalidInput):
    """The graph has no hidden dense layer that can be pruned safely (why is said); nothing
    was written."""
