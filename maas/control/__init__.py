"""The control plane: every model change and its follow-up (packaging, endpoint reconciliation)."""

from maas.control.plane import ControlPlane
from maas.control.reconciler import ReconcileFailed, Reconciler
from maas.control.targets import target_of

__all__ = ["ControlPlane", "ReconcileFailed", "Reconciler", "target_of"]
