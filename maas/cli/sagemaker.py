"""The SageMaker side of `maas models`: Triton packaging options, `package`, `endpoint`, and
where an alias's endpoint stands after a change (the reconciler moves it; `--wait` waits)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from maas.cli.common import default
from maas.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.cli.common import Verbs
    from maas.control import ControlPlane
    from maas.registry import Registry
    from maas.registry.models import Alias, ModelVersion, TargetState
    from maas.sagemaker.endpoint import EndpointDeployer
    from maas.sagemaker.triton import TritonOptions

# `--wait` with no number: as long as SageMaker may take to move an endpoint.
WAIT_SECONDS = 3600


def add_sagemaker_arguments(models: argparse.ArgumentParser, on_verb: bool = False) -> None:
    models.add_argument(
        "--endpoint-prefix",
        default=default(os.environ.get("MAAS_SAGEMAKER_ENDPOINT_PREFIX", "maas"), on_verb),
        help="SageMaker endpoints are named <prefix>-<model>; the stack uses its stack_name "
        "(default: MAAS_SAGEMAKER_ENDPOINT_PREFIX, else maas)",
    )


def add_triton_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Triton (target sagemaker)")
    group.add_argument(
        "--max-batch-size", type=int, default=32, help="most requests Triton batches together (default: 32)"
    )
    group.add_argument(
        "--preferred-batch-size",
        type=int,
        action="append",
        default=None,
        help="a batch size Triton prefers to wait for (repeatable; default: 8 and 16)",
    )
    group.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=100,
        help="microseconds a request may wait for a batch to fill (default: 100)",
    )
    group.add_argument("--cpu", action="store_true", help="run model instances on CPU (serverless endpoints)")


def add_endpoint_commands(verbs: Verbs, run_package: Any, run_endpoint: Any) -> None:
    package = verbs.add("package", help="(re)build the Triton package of a SageMaker version")
    package.add_argument("name", help="the model")
    package.add_argument("version", type=int, help="a version registered with --target sagemaker")
    add_triton_options(package)
    package.set_defaults(run=run_package)

    endpoint = verbs.add("endpoint", help="what a SageMaker model's endpoint serves now")
    endpoint.add_argument("name", help="the model")
    endpoint.add_argument(
        "--sync",
        action="store_true",
        help="run the reconciler's next step here now (also after a failure), then show it",
    )
    endpoint.set_defaults(run=run_endpoint)


def triton_options(args: argparse.Namespace) -> TritonOptions:
    from maas.sagemaker.triton import InstanceKind, TritonOptions

    try:
        return TritonOptions(
            max_batch_size=args.max_batch_size,
            preferred_batch_sizes=args.preferred_batch_size or [8, 16],
            max_queue_delay_microseconds=args.max_queue_delay_us,
            instance_kind=InstanceKind.CPU if args.cpu else InstanceKind.GPU,
        )
    except ValidationError as error:
        problems = "; ".join(str(detail["msg"]) for detail in error.errors(include_url=False))
        raise InvalidInput(f"Triton options: {problems}") from None


def add_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=WAIT_SECONDS,
        default=None,
        metavar="SECONDS",
        help="for a SageMaker model: wait until its endpoint is in service on this change (or failed), "
        f"printing each step (default without SECONDS: {WAIT_SECONDS})",
    )


def say_packed(control: ControlPlane, record: ModelVersion) -> None:
    from maas.sagemaker.package import package_key

    bucket = control.registry.artifacts.bucket
    say(
        f"packed {record.name} v{record.version} for Triton: s3://{bucket}/{package_key(record.name, record.version)}"
    )


def follow_target(args: argparse.Namespace, control: ControlPlane, alias: Alias) -> int:
    """After an alias change: where its endpoint stands, waited for with `--wait`. Exit 2 when
    the reconciler recorded a failure, or `--wait` ran out first."""
    from maas.registry.models import TargetPhase

    if getattr(args, "wait", None) is None:
        state = control.target(alias.name, alias.alias)
        if state is not None:
            say(f"endpoint: {_state_line(state)}; `maas models endpoint {alias.name}` shows it, --wait waits")
        return 0
    state = control.wait_for_target(alias.name, alias.alias, timeout=args.wait, on_event=say)
    if state is None:
        return 0
    say(f"endpoint: {_state_line(state)}")
    return 0 if state.state is TargetPhase.IN_SERVICE else 2


def show_targets(args: argparse.Namespace, registry: Registry, aliases: list[Alias]) -> dict[str, object]:
    """The target state of each alias that has one: printed under the aliases (the table), or
    returned for `--json`."""
    from maas.control import target_of

    states = {alias.alias: target_of(registry, alias) for alias in aliases}
    found = {name: state for name, state in states.items() if state is not None}
    if getattr(args, "json", False) or not found:
        return {name: state.model_dump(mode="json", exclude={"scaling"}) for name, state in found.items()}
    from maas.cli.common import print_table

    print()
    print_table(
        [
            [name, s.state.value, str(s.revision), s.endpoint or "-", s.reason or "-"]
            for name, s in found.items()
        ],
        ["ALIAS", "ENDPOINT STATE", "REVISION", "ENDPOINT", "REASON"],
    )
    return {}


def endpoint_status(
    args: argparse.Namespace, control: ControlPlane, weights: Callable[[dict[int, int]], str]
) -> int:
    """`maas models endpoint`: what the endpoint serves, and what its alias's target state says."""
    from maas.cli.common import emit
    from maas.control import ReconcileFailed, Reconciler

    endpoints = deployer(args, control.registry)
    status = endpoints.status(args.name)
    if args.sync:
        try:
            Reconciler(control.registry, endpoints).reconcile(args.name, status.alias, retry=True)
        except ReconcileFailed as error:
            say(error.message)
        status = endpoints.status(args.name)
    target = control.target(args.name, status.alias)
    rows = [
        [status.endpoint, status.status, status.alias, v.name, weights({v.version or 0: int(v.weight)}),
         str(v.instances if v.instances is not None else "-"), status.config]
        for v in status.variants
    ]  # fmt: skip
    data = status.as_dict()
    if target is not None:
        data["target"] = target.model_dump(mode="json", exclude={"scaling"})
    emit(args, data, rows, ["ENDPOINT", "STATUS", "ALIAS", "VARIANT", "VERSION", "INSTANCES", "CONFIG"])
    if status.failure:
        say(f"failure: {status.failure}")
    if target is not None:
        say(f"alias {status.alias} (revision {target.revision}): {_state_line(target)}")
    return 2 if target is not None and target.state.value == "failed" else 0


def _state_line(state: TargetState) -> str:
    return state.state.value + (f" ({state.reason})" if state.reason else "")


def deployer(args: argparse.Namespace, registry: Registry) -> EndpointDeployer:
    from maas.cli.common import aws_client
    from maas.sagemaker.endpoint import EndpointDeployer

    return EndpointDeployer(
        registry,
        prefix=args.endpoint_prefix,
        sagemaker=aws_client("sagemaker", args.endpoint_url),
        autoscaling=aws_client("application-autoscaling", args.endpoint_url),
        say=say,
    )


def say(line: str) -> None:
    print(line, file=sys.stderr)
