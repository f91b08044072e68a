"""The release gate's arithmetic and the Git provenance a release records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from maas.release.gate import Scorecard, judge
from maas.release.provenance import git_provenance


def card(quality: float, p95_ms: float) -> Scorecard:
    return Scorecard(alias="x", version="1", quality=quality, p95_ms=p95_ms, requests=10)


@pytest.mark.parametrize(
    ("candidate", "baseline", "higher_is_better", "passed", "reason"),
    [
        (card(97.0, 10.0), card(97.5, 10.0), True, True, None),
        (card(95.0, 10.0), card(97.5, 10.0), True, False, "quality dropped by 2.500 (allowed 1.0)"),
        (card(98.0, 16.0), card(97.0, 10.0), True, False, "p95 latency is 1.60x prod's (allowed 1.5x)"),
        (card(0.30, 10.0), card(0.25, 10.0), False, True, None),  # RMSE: up by 0.05 <= 1.0
        (card(2.0, 10.0), card(0.5, 10.0), False, False, "quality dropped by 1.500"),
    ],
)
def test_the_gate_allows_no_more_than_its_thresholds(
    candidate: Scorecard, baseline: Scorecard, higher_is_better: bool, passed: bool, reason: str | None
) -> None:
    verdict = judge(
        candidate, baseline, higher_is_better=higher_is_better, max_quality_drop=1.0, max_latency_ratio=1.5
    )
    assert verdict.passed is passed
    if reason:
        assert any(reason in line for line in verdict.reasons), verdict.reasons


def test_provenance_records_commit_branch_author_and_uncommitted_changes(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert git_provenance(tmp_path) is None
    git("init", "-q", "-b", "main")
    git("config", "user.name", "Ada Lovelace")
    git("config", "user.email", "ada@example.com")
    (tmp_path / "model.txt").write_text("v1")
    git("add", "model.txt")
    git("commit", "-q", "-m", "first")
    found = git_provenance(tmp_path)
    assert found is not None
    assert (found.commit, found.branch, found.author, found.dirty) == (
        git("rev-parse", "HEAD"),
        "main",
        "Ada Lovelace <ada@example.com>",
        False,
    )
    (tmp_path / "model.txt").write_text("v2")
    dirty = git_provenance(tmp_path)
    assert dirty is not None and dirty.dirty
    assert dirty.labels() == {
        "git.branch": "main",
        "git.author": "Ada Lovelace <ada@example.com>",
        "git.dirty": "true",
    }
