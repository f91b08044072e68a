"""`maas release`: a Git commit to production, gated by evaluation, with automatic rollback."""

from maas.release.pipeline import ExitCode, Release, ReleaseOutcome

__all__ = ["ExitCode", "Release", "ReleaseOutcome"]
