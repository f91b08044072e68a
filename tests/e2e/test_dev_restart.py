"""`maas dev` stopped with Ctrl-C and started again keeps what the user did: aliases, versions
and their numbers; `--fresh` starts empty."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e


def call(server: DevServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        method, path, json.dumps(body) if body is not None else None, {"content-type": "application/json"}
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


def test_aliases_and_versions_survive_a_restart_and_fresh_starts_empty(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with running_dev_server(models) as first:
        assert call(first, "PUT", "/registry/models/digits/aliases/staging", {"version": 1})[0] == 200
        assert call(first, "DELETE", "/registry/models/digits-tflite/aliases/prod")[0] == 200
        code, log = first.stop()
    assert code == 0
    assert "maas dev: state saved to" in log

    with running_dev_server(models) as second:
        status, digits = call(second, "GET", "/registry/models/digits")
        assert status == 200
        assert [v["version"] for v in digits["versions"]] == [1]  # the folder was not registered again
        assert sorted(a["alias"] for a in digits["aliases"]) == ["prod", "staging"]
        # prod was deleted on purpose: a restart does not bring it back, nor serve the model.
        assert call(second, "GET", "/registry/models/digits-tflite")[1]["aliases"] == []
        assert call(second, "GET", "/v2/models/digits/versions/staging")[0] == 200
        code, log = second.stop()
    assert "restored" in log and code == 0
    # The banner lists what a request without a version reaches: not the model whose prod was deleted.
    assert "maas dev: serving digits at" in log

    with running_dev_server(models, "--fresh") as fresh:
        status, digits = call(fresh, "GET", "/registry/models/digits")
        assert [a["alias"] for a in digits["aliases"]] == ["prod"]
        assert call(fresh, "GET", "/registry/models/digits-tflite")[1]["aliases"][0]["alias"] == "prod"
