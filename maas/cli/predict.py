"""`maas predict NAME FILE`: a model's outputs for a file, through its OIP API (what `maas dev`
serves, or the deployed API). FILE is an OIP request (`.json`), sent as it is, or rows as
`maas batch` reads them (`.jsonl`, `.csv`, `.npy`), shaped by the model's metadata.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.cli.common import (
    FAILED,
    UNEXPECTED,
    HelpFormatter,
    add_json_option,
    exit_codes,
    print_table,
    progress_bar,
)
from maas.errors import InvalidInput, MaasError

if TYPE_CHECKING:
    from maas.release.oip_client import OipHttpClient

DEFAULT_URL = "http://127.0.0.1:8080"
# Requests stay well under API Gateway's and Lambda's 6 MB, whatever the size of a row.
REQUEST_BYTES = 4 << 20
MOST_ROWS_PER_REQUEST = 1024
# A vector output's cell shows this many values; --json shows them all.
CELL_VALUES = 10


def add_predict_command(commands: Any) -> None:
    predict = commands.add_parser(
        "predict",
        help="a model's outputs for an OIP request (.json) or a row file (.jsonl, .csv, .npy)",
        description="Send FILE to the model through its OIP API and print the outputs. A .json file "
        'is an OIP inference request ({"inputs": [...]}) and is sent as it is; a .jsonl, .csv or .npy '
        "file holds rows as `maas batch` reads them, sent in as few requests as fit, each to the "
        "version that answered the first.",
        epilog=exit_codes("0  the outputs are printed", UNEXPECTED, FAILED),
        formatter_class=HelpFormatter,
    )
    predict.add_argument("name", help="the model")
    predict.add_argument("file", type=Path, help="an OIP request (.json) or rows (.jsonl, .csv, .npy)")
    predict.add_argument(
        "--version", default=None, help="a version number or alias (default: the model's default, prod)"
    )
    predict.add_argument(
        "--url",
        default=os.environ.get("MAAS_URL", DEFAULT_URL),
        help=f"the API (default: MAAS_URL, else {DEFAULT_URL}, where `maas dev` serves)",
    )
    predict.add_argument(
        "--sign",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SigV4-sign the requests, as an API with IAM auth wants (default: sign whenever AWS "
        "credentials are found; --sign fails without them)",
    )
    add_json_option(predict)
    predict.set_defaults(run=_predict)


def _predict(args: argparse.Namespace) -> int:
    from maas.batch.formats import FORMATS
    from maas.release.oip_client import OipHttpClient

    if not args.file.is_file():
        raise InvalidInput(f"no file at {args.file}")
    if args.file.suffix != ".json" and args.file.suffix not in FORMATS:
        raise InvalidInput(
            f"'{args.file.name}' is neither an OIP request (.json) nor a row file ({', '.join(FORMATS)})"
        )
    client = OipHttpClient(args.url, sign=args.sign)
    if args.file.suffix == ".json":
        answer = client.infer_request(args.name, args.version, _request_file(args.file))
        outputs = _outputs_of(answer)
    else:
        version, outputs = _predict_rows(client, args.name, args.version, args.file)
        answer = {"model_name": args.name, "model_version": version, "outputs": _json_outputs(outputs)}
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(
        f"model {answer.get('model_name', args.name)} version {answer.get('model_version')}", file=sys.stderr
    )
    _print_outputs(outputs)
    return 0


def _request_file(path: Path) -> dict[str, Any]:
    try:
        request = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as error:
        raise InvalidInput(f"{path.name} is not JSON: {error}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InvalidInput(
            f'{path.name} is no OIP inference request: it must hold {{"inputs": [...]}}; '
            "a file of rows is .jsonl, .csv or .npy"
        )
    return request


def _outputs_of(answer: Any) -> dict[str, np.ndarray]:
    from pydantic import ValidationError

    from maas.protocol import tensor_from_json

    try:
        return {item["name"]: tensor_from_json(item) for item in answer["outputs"]}
    except (KeyError, TypeError, ValidationError, MaasError) as error:
        raise MaasError(f"the API's answer is not an OIP inference response: {error}") from None


def _predict_rows(
    client: OipHttpClient, model: str, version: str | None, path: Path
) -> tuple[str, dict[str, np.ndarray]]:
    """The outputs for every row of `path`, in order, and the version that predicted them."""
    from maas.batch.formats import read_rows
    from maas.batch.processor import rows_per_call
    from maas.release.preflight import signature_from_metadata

    signature = signature_from_metadata(client.metadata(model, version))
    rows = list(read_rows(path, path.suffix, signature))
    bad = [row for row in rows if row.error is not None]
    if bad:
        raise InvalidInput(
            f"row {bad[0].number} of {path.name}: {bad[0].error} ({len(bad)} of {len(rows)} rows cannot be "
            "read; `maas batch submit` predicts the good rows and lists the bad ones)"
        )
    arrays = [row.arrays for row in rows if row.arrays is not None]
    if not arrays:
        raise InvalidInput(f"{path.name} holds no rows")
    fixed = rows_per_call(model, signature)  # a model exported with a static batch takes exactly that
    size = fixed or _rows_per_request(arrays[0])
    progress = progress_bar(len(arrays), "predict", least=size + 1)
    answered, parts = version, []
    for start in range(0, len(arrays), size):
        chunk = arrays[start : start + size]
        # A short last group of a static batch is filled with copies of its last row, then cut.
        filled = chunk + [chunk[-1]] * (size - len(chunk)) if fixed else chunk
        inputs = {name: np.stack([row[name] for row in filled]) for name in filled[0]}
        # Later requests go to the version that answered the first: one model for the whole file.
        answered, outputs, _ = client.infer(model, answered, inputs)
        if len(filled) > len(chunk):
            outputs = {name: value[: len(chunk)] for name, value in outputs.items()}
        parts.append(outputs)
        if progress is not None:
            progress(len(chunk))
    assert answered is not None
    return answered, _joined(parts)


def _rows_per_request(row: dict[str, np.ndarray]) -> int:
    # About 12 characters per value in JSON: digits, separator, sign.
    values = sum(array.size for array in row.values())
    return max(1, min(MOST_ROWS_PER_REQUEST, REQUEST_BYTES // max(1, 12 * values)))


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    if any(value.ndim == 0 for value in parts[0].values()):
        raise MaasError(
            "the model's outputs have no row dimension to join requests by; send one .json request"
        )
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _json_outputs(outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    from maas.protocol import json_tensors

    return json_tensors(outputs)


def _print_outputs(outputs: dict[str, np.ndarray]) -> None:
    """One line per row when every output has the same first dimension, else one per output."""
    firsts = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(firsts) == 1 and None not in firsts:
        (count,) = firsts
        rows = [[str(i), *(_cell(value[i]) for value in outputs.values())] for i in range(count or 0)]
        print_table(rows, ["ROW", *outputs])
        return
    print_table(
        [[name, str(list(value.shape)), _cell(value)] for name, value in outputs.items()],
        ["OUTPUT", "SHAPE", "VALUES"],
    )


def _cell(value: Any) -> str:
    array = np.asarray(value)
    items = [_scalar(item) for item in array.ravel()[:CELL_VALUES].tolist()]
    if array.ndim == 0:
        return items[0]
    more = f", ... {array.size} values" if array.size > CELL_VALUES else ""
    return "[" + ", ".join(items) + more + "]"


def _scalar(item: Any) -> str:
    if isinstance(item, float):
        return f"{item:.4g}"
    if isinstance(item, bytes):
        return item.decode(errors="replace")
    return str(item)
