"""The release gate's arithmetic, what a release checks before it changes anything, and the
Git provenance a release records."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from maas.config import CanaryPolicy, ReleaseConfig
from maas.errors import InvalidInput
from maas.optimize.evaluation import EvaluationSet
from maas.protocol import Datatype
from maas.release import Release
from maas.release.gate import TIMED_REQUESTS, Scorecard, judge, requests, score_aliases
from maas.release.pipeline import ExitCode
from maas.release.preflight import check_api_serves_registry, fit_evaluation, read_evaluation
from maas.release.provenance import git_provenance
from maas.runtimes import Signature, TensorSpec
from tests.fakes import sum_model


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


def takes(*shape: int, datatype: Datatype = Datatype.FP32) -> Signature:
    return Signature(
        inputs=(TensorSpec("input", datatype, shape),), outputs=(TensorSpec("label", Datatype.INT64, (-1,)),)
    )


def digits_like(rows: int, columns: int = 64) -> EvaluationSet:
    features = np.arange(rows * columns, dtype=np.float64).reshape(rows, columns)
    return EvaluationSet(inputs={"input": features}, labels=np.arange(rows) % 10)


def test_an_evaluation_file_with_the_wrong_column_count_is_refused_naming_both_shapes() -> None:
    with pytest.raises(InvalidInput, match=r"input 'input' has rows of shape \[63\] in the evaluation file, but "
                       r"the model takes \[64\]"):  # fmt: skip
        fit_evaluation(digits_like(10, columns=63), {"the model": takes(-1, 64)}, batch_rows=64)


def test_an_evaluation_file_must_also_fit_what_prod_serves() -> None:
    with pytest.raises(InvalidInput, match=r"but prod's version 3 takes \[32\]"):
        fit_evaluation(
            digits_like(10), {"the model": takes(-1, 64), "prod's version 3": takes(-1, 32)}, batch_rows=64
        )


def test_inputs_and_answers_of_different_lengths_or_unknown_arrays_are_refused() -> None:
    short = EvaluationSet(inputs={"input": np.zeros((10, 64))}, labels=np.zeros(9))
    with pytest.raises(InvalidInput, match="10 rows of inputs and 9 of accuracy answers"):
        fit_evaluation(short, {"the model": takes(-1, 64)}, batch_rows=64)
    extra = EvaluationSet(
        inputs={"input": np.zeros((10, 64)), "mask": np.zeros((10, 1))}, labels=np.zeros(10)
    )
    with pytest.raises(InvalidInput, match=r"array\(s\) mask are not inputs of the model"):
        fit_evaluation(extra, {"the model": takes(-1, 64)}, batch_rows=64)
    text = EvaluationSet(inputs={"input": np.full((10, 64), "x")}, labels=np.zeros(10))
    with pytest.raises(
        InvalidInput, match="input 'input' is <U1 in the evaluation file, and the model takes FP32"
    ):
        fit_evaluation(text, {"the model": takes(-1, 64)}, batch_rows=64)


def test_float64_rows_are_sent_as_the_fp32_the_model_takes() -> None:
    fitted = fit_evaluation(digits_like(10), {"the model": takes(-1, 64)}, batch_rows=4)
    assert fitted.evaluation.inputs["input"].dtype == np.float32
    assert (fitted.rows_per_request, fitted.exact) == (4, False)
    assert [real for _, real in requests(fitted.evaluation, 4)] == [4, 4, 2]


def test_a_fixed_first_dimension_sets_the_rows_of_every_request_the_last_one_padded() -> None:
    fitted = fit_evaluation(digits_like(19), {"the model": takes(8, 64)}, batch_rows=64)
    assert (fitted.rows_per_request, fitted.exact) == (8, True)
    sent = list(requests(fitted.evaluation, fitted.rows_per_request, exact=fitted.exact))
    assert [(len(chunk["input"]), real) for chunk, real in sent] == [(8, 8), (8, 8), (8, 3)]
    last, _ = sent[-1]
    assert (last["input"][3:] == last["input"][2]).all()  # padded with the final row


def test_prod_with_a_fixed_first_dimension_fixes_it_for_both_and_two_different_ones_are_refused() -> None:
    both = {"the model": takes(-1, 64), "prod's version 1": takes(16, 64)}
    assert fit_evaluation(digits_like(40), both, batch_rows=64).rows_per_request == 16
    clash = {"the model": takes(8, 64), "prod's version 1": takes(16, 64)}
    with pytest.raises(InvalidInput, match=r"fixed numbers of rows per request that differ \(\[8, 16\]\)"):
        fit_evaluation(digits_like(40), clash, batch_rows=64)


class EightRowsOnly:
    """An OIP client for a model that takes exactly 8 rows and labels row i as i % 10."""

    base_url = "http://api.test"

    def __init__(self) -> None:
        self.sent: list[int] = []

    def infer(self, model: str, version: str, inputs: dict[str, np.ndarray]) -> tuple[str, dict, float]:
        rows = inputs["input"]
        assert len(rows) == 8, len(rows)
        self.sent.append(len(rows))
        labels = (rows[:, 0] // 64).astype(np.int64) % 10  # digits_like: row i starts at i * 64
        return "1", {"label": labels}, 1.0


def test_the_padding_is_not_scored() -> None:
    """19 rows, all labelled right: padding answered with the last row's label must not count."""
    fitted = fit_evaluation(digits_like(19), {"the model": takes(8, 64)}, batch_rows=64)
    client = EightRowsOnly()
    (card,) = score_aliases(client, "digits", ["staging"], fitted.evaluation, 8, exact=True)  # type: ignore[arg-type]
    assert set(client.sent) == {8}
    assert (card.quality, card.requests) == (100.0, TIMED_REQUESTS)  # 3 scored, cycled to 40 timed


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


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        (
            {"labels": np.full(10, "a")},
            r"array 'labels' of the evaluation file is <U1: labels must be integer",
        ),
        ({"labels": np.full(10, np.nan)}, r"array 'labels' .* not integers \(NaN"),
        ({"labels": np.full(10, 2.5)}, r"array 'labels' .* not integers"),
        (
            {"targets": np.full(10, "a")},
            r"array 'targets' of the evaluation file is <U1: targets must be numbers",
        ),
        ({"targets": np.full(10, np.nan)}, r"array 'targets' .* NaN or infinite"),
    ],
)
def test_answers_no_model_output_could_match_are_refused_naming_the_array(
    answers: dict[str, np.ndarray], problem: str
) -> None:
    evaluation = EvaluationSet(inputs={"input": np.zeros((10, 64))}, **answers)
    with pytest.raises(InvalidInput, match=problem):
        fit_evaluation(evaluation, {"the model": takes(-1, 64)}, batch_rows=64)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (np.nan, r"input 'input': element 3 is nan"),
        (1e39, r"input 'input': value 1e\+39 at element 3 is out of range"),
    ],
)
def test_inputs_the_api_would_refuse_are_refused_before_registering(value: float, problem: str) -> None:
    features = np.zeros((10, 64))
    features[0, 3] = value
    with pytest.raises(InvalidInput, match=problem):
        fit_evaluation(EvaluationSet(inputs={"input": features}, labels=np.zeros(10)),
                       {"the model": takes(-1, 64)}, batch_rows=64)  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "baseline", "higher_is_better"),
    [(card(0.0, 10.0), card(0.0, 10.0), True), (card(float("nan"), 10.0), card(float("nan"), 10.0), False)],
)
def test_the_gate_does_not_pass_on_latency_alone_when_quality_was_not_measured(
    candidate: Scorecard, baseline: Scorecard, higher_is_better: bool
) -> None:
    verdict = judge(
        candidate, baseline, higher_is_better=higher_is_better, max_quality_drop=1.0, max_latency_ratio=1.5
    )
    assert not verdict.passed
    assert "quality could not be measured" in verdict.reasons[0]


def test_an_evaluation_file_that_is_not_an_npz_archive_is_refused_naming_it(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, input=np.zeros((4, 64)), labels=np.zeros(4, dtype=np.int64))
    npy = tmp_path / "eval.npy"
    np.save(npy, np.zeros((4, 64)))
    damaged = tmp_path / "damaged.npz"
    raw = bytearray(good.read_bytes())
    raw[40:200] = bytes(160)  # the first member's bytes zeroed: the central directory still names it
    damaged.write_bytes(bytes(raw))
    text = tmp_path / "eval.csv"
    text.write_text("1,2,3\n")
    assert read_evaluation(good).labels is not None
    for path in (npy, damaged, text, tmp_path / "missing.npz"):
        with pytest.raises(InvalidInput, match=f"evaluation file {path} is"):
            read_evaluation(path)


class PrefixOnlyCloudWatch:
    """DescribeAlarms as moto answers it: with AlarmNamePrefix, StateValue is ignored."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states

    def describe_alarms(self, AlarmNamePrefix: str, **ignored: str) -> dict:  # noqa: N803 (boto3's name)
        return {
            "MetricAlarms": [
                {"AlarmName": name, "StateValue": state}
                for name, state in self.states.items()
                if name.startswith(AlarmNamePrefix)
            ]
        }


class AliasMoves:
    """The registry calls a canary makes, recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def canary(
        self, model: str, alias: str, weights: dict[int, int], expected_revision: int | None = None
    ) -> SimpleNamespace:
        self.calls.append(f"canary {weights}")
        return SimpleNamespace(name=model, alias=alias, revision=2)

    def rollback(self, model: str, alias: str, expected_revision: int | None = None) -> SimpleNamespace:
        self.calls.append("rollback")
        return SimpleNamespace(name=model, alias=alias, revision=3)

    def alias(self, model: str, alias: str) -> SimpleNamespace:
        # A Lambda model: no version on SageMaker, so no endpoint to wait for.
        return SimpleNamespace(name=model, alias=alias, weights={}, deleted=False)


@pytest.mark.parametrize(
    ("state", "rolled_back"), [("OK", False), ("INSUFFICIENT_DATA", False), ("ALARM", True)]
)
def test_only_an_alarm_in_alarm_state_rolls_the_canary_back(state: str, rolled_back: bool) -> None:
    registry = AliasMoves()
    policy = ReleaseConfig(canary=CanaryPolicy(weight=10, minutes=0.001, poll_seconds=0.01))
    release = Release(
        registry,  # type: ignore[arg-type]
        EightRowsOnly(),  # type: ignore[arg-type]
        policy,
        alarm_prefix="maas",
        cloudwatch=PrefixOnlyCloudWatch({"maas-digits-errors": state, "other-errors": "ALARM"}),
        say=lambda line: None,
    )
    message = release._canary("digits", 2, 1)
    assert (message is not None) is rolled_back, message
    assert registry.calls == ["canary {1: 90, 2: 10}"] + (["rollback"] if rolled_back else [])
    if rolled_back:
        assert message is not None and "maas-digits-errors" in message and "other-errors" not in message


class ColdStartsAndFirstInPairSlow:
    """The same model behind both aliases: staging's session is cold for each request shape
    (500 ms the first time), prod's is warm; whichever alias goes second in a pair is faster."""

    base_url = "http://api.test"

    def __init__(self) -> None:
        self.seen: set[tuple[str, int]] = {("prod", 8), ("prod", 3)}
        self.last: str | None = None

    def infer(self, model: str, version: str, inputs: dict[str, np.ndarray]) -> tuple[str, dict, float]:
        rows = inputs["input"]
        cold = (version, len(rows)) not in self.seen
        self.seen.add((version, len(rows)))
        first_in_pair = self.last is None or self.last == version
        self.last = None if not first_in_pair else version
        elapsed = 500.0 if cold else (14.0 if first_in_pair else 10.0)
        labels = (rows[:, 0] // 64).astype(np.int64) % 10
        return {"staging": "2", "prod": "1"}[version], {"label": labels}, elapsed


def test_the_identical_model_passes_the_latency_gate_though_staging_starts_cold() -> None:
    fitted = fit_evaluation(digits_like(19), {"the model": takes(-1, 64)}, batch_rows=8)
    candidate, current = score_aliases(
        ColdStartsAndFirstInPairSlow(),  # type: ignore[arg-type]
        "digits",
        ["staging", "prod"],
        fitted.evaluation,
        8,
    )
    assert (candidate.quality, current.quality) == (100.0, 100.0)
    assert candidate.requests >= TIMED_REQUESTS
    verdict = judge(candidate, current, higher_is_better=True, max_quality_drop=1.0, max_latency_ratio=1.2)
    assert verdict.passed, verdict.reasons


class OtherStacksApi:
    """An OIP API over another registry: its 'digits' has versions 1 to 5, prod on 5."""

    base_url = "http://other-stack.test"
    signs = False

    def __init__(self, versions: list[str], prod: str) -> None:
        self.versions, self.prod = versions, prod

    def ready(self) -> None:
        pass

    def metadata(self, model: str, version: str | None = None) -> dict:
        tensors = {"inputs": [{"name": n, "datatype": "FP32", "shape": [-1, 3]} for n in ("a", "b")]}
        return {"name": model, "versions": self.versions if version is None else [self.prod], **tensors}


class RegistryWithProdOn:
    """This registry: 'digits' versions 1 to `latest`, prod on `prod`; registering is a failure."""

    def __init__(self, latest: int, prod: int) -> None:
        self.store = SimpleNamespace(
            head=lambda model: SimpleNamespace(latest_version=latest),
            get_alias=lambda model, alias: SimpleNamespace(weights={prod: 100}, versions=[prod]),
        )

    def register(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("registered against another stack's API")


@pytest.mark.parametrize(
    ("api_versions", "api_prod", "problem"),
    [
        (["1", "2", "3", "4", "5"], "5", r"serves versions \[4, 5\] of 'digits', which this registry never"),
        (
            ["1", "2", "3"],
            "1",
            r"serves 'prod' of 'digits' as version\(s\) \['1'\], but this registry's 'prod' is version 3",
        ),
    ],
)
def test_an_api_that_serves_another_registrys_model_is_refused_before_registering(
    tmp_path: Path, api_versions: list[str], api_prod: str, problem: str
) -> None:
    artifact = sum_model(tmp_path / "model.onnx")
    evaluation = tmp_path / "eval.npz"
    np.savez(evaluation, a=np.zeros((4, 3)), b=np.zeros((4, 3)), targets=np.zeros(4))
    said: list[str] = []
    release = Release(
        RegistryWithProdOn(latest=3, prod=3),  # type: ignore[arg-type]
        OtherStacksApi(api_versions, api_prod),  # type: ignore[arg-type]
        ReleaseConfig(),
        alarm_prefix="maas",
        say=said.append,
    )
    outcome = release.run("digits", artifact, evaluation, provenance=None)
    assert outcome.code is ExitCode.ERROR and outcome.version is None
    assert re.search(problem, outcome.message), outcome.message
    assert "another stack's API" in outcome.message


def test_an_api_that_serves_this_registrys_model_passes_the_check(tmp_path: Path) -> None:
    check_api_serves_registry("digits", "http://api.test", 3, ["1", "3"], ("prod", 3, {"versions": ["3"]}))
    check_api_serves_registry("digits", "http://api.test", 3, ["2"], None)
