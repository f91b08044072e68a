"""The SageMaker side of `maas models`: Triton packaging options, `package`, `endpoint`, and
the endpoint update that follows every alias change of a SageMaker model."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from maas.cli.common import default
from maas.errors import InvalidInput

if TYPE_CHECKING:
    from maas.cli.common import Verbs
    from maas.registry import Registry
    from maas.registry.models import Alias, ModelVersion
    from maas.sagemaker.endpoint import EndpointDeployer
    from maas.sagemaker.triton import TritonOptions


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
        "--sync", action="store_true", help="point it at what its alias serves, then show it"
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


def package(args: argparse.Namespace, registry: Registry, record: ModelVersion) -> None:
    from maas.sagemaker.package import package_version

    key = package_version(registry, record, triton_options(args))
    say(f"packed {record.name} v{record.version} for Triton: s3://{registry.artifacts.bucket}/{key}")


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


def follow_alias(args: argparse.Namespace, registry: Registry, alias: Alias) -> None:
    """After an alias change: update the model's endpoint if it has one that follows this alias
    (`sync` does nothing, and calls no SageMaker API, unless a version targets SageMaker)."""
    deployer(args, registry).sync(alias)


def say(line: str) -> None:
    print(line, file=sys.stderr)
