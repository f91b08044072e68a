"""The release gate's arithmetic and the Git provenance a release records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from maas.config import ReleaseConfig
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
        (card(0.2502, 10.0), card(0.25, 10.0), False, True, None),  # RMSE up by 0.08% of prod's
        (card(0.30, 10.0), card(0.25, 10.0), False, False, "rmse rose by 20.0% of prod's (allowed 1.0%)"),
        (card(2.0, 10.0), card(0.5, 10.0), False, False, "rmse rose by 300.0%"),
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


def test_a_regressed_regressor_is_refused_at_the_default_threshold() -> None:
    """RMSE 0.25 to 0.90 is a model 3.6 times worse: the defaults of maas.yaml must stop it,
    whatever the scale of the targets."""
    defaults = ReleaseConfig()
    for scale in (1.0, 0.01, 1000.0):
        verdict = judge(
            card(0.90 * scale, 10.0),
            card(0.25 * scale, 10.0),
            higher_is_better=False,
            max_quality_drop=defaults.max_quality_drop,
            max_latency_ratio=defaults.max_latency_ratio,
        )
        assert not verdict.passed, scale
        assert verdict.reasons == ["rmse rose by 260.0% of prod's (allowed 1.0%)"]


def test_a_regressor_as_good_as_prod_passes_even_when_prod_is_perfect() -> None:
    assert judge(card(0.0, 10.0), card(0.0, 10.0), higher_is_better=False, max_quality_drop=1.0,
                 max_latency_ratio=1.5).passed  # fmt: skip
    assert not judge(card(0.1, 10.0), card(0.0, 10.0), higher_is_better=False, max_quality_drop=1.0,
                     max_latency_ratio=1.5).passed  # fmt: skip


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
