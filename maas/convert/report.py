"""What `maas convert` checked: the source, the converted file's inputs and outputs, sizes,
and how the two answered the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from maas.convert.verify import OutputCheck
    from maas.runtimes import Signature, TensorSpec


@dataclass(frozen=True)
class ConversionReport:
    source: str
    framework: str
    description: str
    versions: dict[str, str]
    output: Path
    source_size: int  # 0 for a module:factory
    converted_size: int
    signature: Signature
    checks: tuple[OutputCheck, ...]
    rows: int
    tolerance: float
    int8: bool

    @property
    def agrees(self) -> bool:
        return all(check.agrees for check in self.checks)

    @property
    def max_difference(self) -> float:
        return max((check.max_difference for check in self.checks if not check.exact), default=0.0)

    def summary(self) -> str:
        """Source, sizes, the converted model's inputs and outputs, and the verification."""
        versions = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        size = (
            f"{self.source_size:,} -> {self.converted_size:,} bytes"
            if self.source_size
            else f"{self.converted_size:,} bytes"
        )
        kind = "full-integer int8 " if self.int8 else ""
        lines = [
            f"source     {self.source}: {self.framework} {self.description} ({versions})",
            f"converted  {kind}{self.output.suffix.lstrip('.').upper()}, {size}",
            *(f"input      {_spec(spec)}" for spec in self.signature.inputs),
            *(f"output     {_spec(spec)}" for spec in self.signature.outputs),
            f"verified   on {self.rows} rows, labels equal and reals within {self.tolerance:g}:",
            *(f"  {check.line()}\n  {check.first_row()}" for check in self.checks),
        ]
        return "\n".join(lines)

    def disagreement(self) -> str:
        """Both answers to the rows where they differ, output by output."""
        return "\n".join(
            f"{check.line()}\n{check.both_answers()}" for check in self.checks if not check.agrees
        )

    def labels(self) -> dict[str, str]:
        """What a registered version records of where it came from."""
        return {
            "convert.source": self.source,
            "convert.framework": self.framework,
            **{f"convert.version.{name}": version for name, version in self.versions.items()},
            "convert.rows_verified": str(self.rows),
            "convert.max_difference": f"{self.max_difference:.3g}",
        }


def _spec(spec: TensorSpec) -> str:
    shape = ", ".join("-1" if dim < 0 else str(dim) for dim in spec.shape)
    return f"{spec.name} {spec.datatype} [{shape}]"
