"""Where a release comes from: the Git commit, branch and author of the working tree."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Provenance:
    commit: str
    branch: str
    author: str
    dirty: bool

    def labels(self) -> dict[str, str]:
        return {"git.branch": self.branch, "git.author": self.author, "git.dirty": str(self.dirty).lower()}


def git_provenance(directory: Path) -> Provenance | None:
    """The commit checked out in `directory`, or None outside a Git working tree."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return None
    # CI checks out a detached HEAD; GitHub names the branch or tag in GITHUB_REF_NAME.
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    if branch == "HEAD":
        branch = os.environ.get("GITHUB_REF_NAME", "HEAD")
    return Provenance(
        commit=commit,
        branch=branch,
        author=git("log", "-1", "--format=%an <%ae>"),
        dirty=bool(git("status", "--porcelain", "--untracked-files=no")),
    )
