"""`python -m mlops_console.serve`: MLflow scoring compatibility, metrics, model identity, chaos, shutdown."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import MAX_BODY, probe_endpoint_once
from mlops_console.serve.limits import DEFAULT_MAX_BODY, parse_size
from tests._serve_helpers import (
    IRIS_COLUMNS,
    TINY_MODEL,
    free_port,
    poll_until,
    process_env,
    sample,
    scrape,
    spawn,
    stop_group,
    total,
    train_tiny_registry,
    wait_ping,
)

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.6, 1.8], [5.9, 3.0, 4.2, 1.5]]
JSON = "application/json"
CSV = "text/csv"

VALID = {
    "dataframe_split": (JSON, json.dumps({"dataframe_split": {"columns": IRIS_COLUMNS, "data": ROWS}})),
    "dataframe_records": (
        JSON,
        json.dumps({"dataframe_records": [dict(zip(IRIS_COLUMNS, r, strict=True)) for r in ROWS]}),
    ),
    "instances": (JSON, json.dumps({"instances": [dict(zip(IRIS_COLUMNS, r, strict=True)) for r in ROWS]})),
    "inputs": (JSON, json.dumps({"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(IRIS_COLUMNS)}})),
    "csv": (CSV, ",".join(IRIS_COLUMNS) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n"),
}
INVALID = {
    "malformed_json": (JSON, '{"dataframe_split": {"columns": ['),
    "wrong_columns": (JSON, json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": [[1, 2]]}})),
    "unknown_format_key": (JSON, json.dumps({"rows": ROWS})),
    "top_level_list": (JSON, json.dumps(ROWS)),
    "unsupported_content_type": ("text/plain", "hello"),
}


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path


def post(url: str, content_type: str, body: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": content_type}, timeout=30)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return train_tiny_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def mlflow_server_spawned(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Spawned but not awaited, so mlflow's ~10 s start overlaps ours (fixture order matters)."""
    port, log = free_port(), tmp_path_factory.mktemp("mlflow-serve") / "serve.log"
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    cmd = [mlflow_cli, "models", "serve", "-m", f"models:/{TINY_MODEL}@production",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", spawn(cmd, log, process_env(tracking_uri)), log)
    yield server
    stop_group(server.proc)


@pytest.fixture(scope="module")
def ours(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port, log = free_port(), tmp_path_factory.mktemp("ours") / "serve.log"
    cmd = [
        sys.executable,
        "-m",
        "mlops_console.serve",
        f"models:/{TINY_MODEL}@production",
        "--port",
        str(port),
        "--chaos",
    ]
    server = Server(f"http://127.0.0.1:{port}", spawn(cmd, log, process_env(tracking_uri)), log)
    try:
        wait_ping(server.url, server.proc, log)
        yield server
    finally:
        stop_group(server.proc)


@pytest.mark.slow
def test_matches_mlflow_models_serve(mlflow_server_spawned: Server, ours: Server) -> None:
    theirs = mlflow_server_spawned
    wait_ping(theirs.url, theirs.proc, theirs.log, timeout=120)
    for route in ("/ping", "/health", "/version"):
        a, b = httpx.get(ours.url + route), httpx.get(theirs.url + route)
        assert (a.status_code, a.text) == (b.status_code, b.text), route
    for name, (content_type, body) in VALID.items():
        a, b = post(ours.url, content_type, body), post(theirs.url, content_type, body)
        assert a.status_code == b.status_code == 200, (name, a.text, b.text)
        assert a.json() == b.json(), name
    for name, (content_type, body) in INVALID.items():
        a, b = post(ours.url, content_type, body), post(theirs.url, content_type, body)
        assert a.status_code == b.status_code, (name, a.text, b.text)
        assert 400 <= a.status_code < 500, name
        if b.headers["content-type"].startswith(JSON):
            assert a.json()["error_code"] == b.json()["error_code"], name
        else:
            assert a.text == b.text, name


def test_scoring_formats_and_errors(ours: Server) -> None:
    """The same contract without mlflow's server, so it also runs when slow tests are skipped."""
    expected = None
    for name, (content_type, body) in VALID.items():
        response = post(ours.url, content_type, body)
        assert response.status_code == 200, (name, response.text)
        predictions = response.json()["predictions"]
        assert len(predictions) == len(ROWS) and all(p in (0, 1, 2) for p in predictions)
        expected = expected or predictions
        assert predictions == expected, name
    statuses = {name: post(ours.url, ct, body) for name, (ct, body) in INVALID.items()}
    assert {n: r.status_code for n, r in statuses.items()} == {
        "malformed_json": 400, "wrong_columns": 400, "unknown_format_key": 400,
        "top_level_list": 400, "unsupported_content_type": 415,
    }  # fmt: skip
    assert statuses["malformed_json"].json()["error_code"] == "BAD_REQUEST"
    assert statuses["unknown_format_key"].json()["error_code"] == "BAD_REQUEST"


def test_metrics_count_requests_statuses_and_labels(ours: Server) -> None:
    before = scrape(ours.url)
    _, good = VALID["dataframe_split"]
    for _ in range(3):
        assert post(ours.url, JSON, good).status_code == 200
    for name in ("malformed_json", "unknown_format_key"):
        assert post(ours.url, *INVALID[name]).status_code == 400
    assert httpx.post(f"{ours.url}/chaos", json={"error_rate": 1.0}).status_code == 200
    try:
        assert post(ours.url, JSON, good).status_code == 500
    finally:
        httpx.post(f"{ours.url}/chaos", json={"error_rate": 0.0, "delay_ms": 0})
    after = scrape(ours.url)

    def delta(status: str) -> float:
        labels = {"handler": "/invocations", "method": "POST", "status": status}
        return sample(after, "http_requests_total", **labels) - sample(
            before, "http_requests_total", **labels
        )

    assert (delta("200"), delta("400"), delta("500")) == (3, 2, 1)
    count = "http_request_duration_seconds_count"
    assert sample(after, count, handler="/invocations") - sample(before, count, handler="/invocations") == 6
    assert (
        "http_request_duration_seconds_bucket",
        frozenset({("handler", "/invocations"), ("le", "0.001")}),
    ) in after
    predicted = total(after, "model_predictions_total") - total(before, "model_predictions_total")
    assert predicted == 3 * len(ROWS)


def test_chaos_delay_and_validation(ours: Server) -> None:
    assert httpx.post(f"{ours.url}/chaos", json={"error_rate": 2}).status_code == 400
    assert httpx.post(f"{ours.url}/chaos", json={"delay_ms": 300}).json() == {
        "delay_ms": 300.0,
        "error_rate": 0.0,
    }
    try:
        assert httpx.get(f"{ours.url}/chaos").json()["delay_ms"] == 300.0
        response = post(ours.url, *VALID["dataframe_split"])
        assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3
    finally:
        httpx.post(f"{ours.url}/chaos", json={"delay_ms": 0})


@pytest.mark.parametrize(
    "body",
    [
        '{"delay_ms": Infinity}',
        '{"delay_ms": NaN}',
        '{"delay_ms": -1}',
        '{"delay_ms": 1e300}',
        '{"delay_ms": 60001}',
        '{"delay_ms": 1' + "0" * 400 + "}",
        '{"delay_ms": "300"}',
        '{"delay_ms": true}',
        '{"delay_ms": []}',
        '{"error_rate": NaN}',
        '{"error_rate": -Infinity}',
        '{"error_rate": false}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=lambda body: body[:24],
)
def test_chaos_rejects_non_finite_absurd_and_non_numeric_values(ours: Server, body: str) -> None:
    """A delay of Infinity would hold every request forever; whatever is refused changes nothing."""
    settings = {"delay_ms": 25.0, "error_rate": 0.0}
    assert httpx.post(f"{ours.url}/chaos", json=settings).status_code == 200
    try:
        response = httpx.post(f"{ours.url}/chaos", content=body, headers={"Content-Type": JSON})
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "BAD_REQUEST"
        assert response.json()["message"].startswith("invalid chaos settings: ")
        assert httpx.get(f"{ours.url}/chaos").json() == settings
    finally:
        httpx.post(f"{ours.url}/chaos", json={"delay_ms": 0, "error_rate": 0})


def test_request_body_over_the_limit_is_a_413_json_error(ours: Server) -> None:
    before = scrape(ours.url)
    small = json.dumps({"dataframe_split": {"columns": IRIS_COLUMNS, "data": ROWS}}).encode()
    at_limit = small + b" " * (DEFAULT_MAX_BODY - len(small))  # trailing whitespace: still valid JSON
    response = httpx.post(f"{ours.url}/invocations", content=at_limit, headers={"Content-Type": JSON})
    assert response.status_code == 200 and len(response.json()["predictions"]) == len(ROWS)

    def chunked(data: bytes) -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    for name, content in (("declared", at_limit + b" "), ("chunked", chunked(at_limit + b" " * 20_000_000))):
        response = httpx.post(f"{ours.url}/invocations", content=content, headers={"Content-Type": JSON})
        assert response.status_code == 413, name
        assert response.json() == {
            "error_code": "RESOURCE_LIMIT_EXCEEDED",
            "message": f"request body too large: over {DEFAULT_MAX_BODY} bytes (the server's --max-body)",
        }, name
    labels = {"handler": "/invocations", "method": "POST", "status": "413"}
    assert (
        sample(scrape(ours.url), "http_requests_total", **labels)
        - sample(before, "http_requests_total", **labels)
        == 2
    )


def test_large_batch_answer_reads_as_a_valid_prediction(ours: Server) -> None:
    """About 300 kB of predictions: more than one read of the socket, less than the probe's cap."""
    rows = 100_000
    payload = {
        "dataframe_split": {"columns": IRIS_COLUMNS, "data": [ROWS[i % len(ROWS)] for i in range(rows)]}
    }
    endpoint = parse_settings(
        {"endpoints": [{"name": "big", "url": ours.url, "payload": payload, "timeout": 60, "interval": 60}]}
    ).endpoints[0]
    result = asyncio.run(probe_endpoint_once(endpoint))
    assert (result.ok, result.status, result.error, result.valid) == (True, 200, None, True)
    answer = post(ours.url, JSON, json.dumps(payload))
    assert 250_000 < len(answer.content) < MAX_BODY and len(answer.json()["predictions"]) == rows


def test_model_info_reports_resolved_version(ours: Server) -> None:
    info = httpx.get(f"{ours.url}/model-info").json()
    assert info["model_uri"] == f"models:/{TINY_MODEL}@production"
    assert (info["model_name"], info["model_version"]) == (TINY_MODEL, "2")
    assert info["run_id"] and info["pid"] == ours.proc.pid
    assert datetime.fromisoformat(info["loaded_at"]).tzinfo is not None


def test_run_uri_without_chaos_with_max_body_and_clean_sigterm(
    ours: Server, tracking_uri: str, tmp_path: Path
) -> None:
    """A non-registry URI has no version; /chaos is off by default; `--max-body` sets the limit;
    SIGTERM exits 0."""
    run_id = httpx.get(f"{ours.url}/model-info").json()["run_id"]
    port, log = free_port(), tmp_path / "serve.log"
    uri = f"runs:/{run_id}/model"
    proc = spawn(
        [sys.executable, "-m", "mlops_console.serve", uri, "--port", str(port), "--max-body", "4k"],
        log,
        process_env(tracking_uri),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ping(url, proc, log)
        info = httpx.get(f"{url}/model-info").json()
        assert (info["model_uri"], info["model_name"], info["model_version"]) == (uri, None, None)
        assert httpx.get(f"{url}/chaos").status_code == 404
        assert httpx.post(f"{url}/chaos", json={"error_rate": 1}).status_code == 404
        assert post(url, *VALID["dataframe_split"]).status_code == 200
        too_big = post(url, JSON, VALID["dataframe_split"][1] + " " * 4096)
        assert too_big.status_code == 413 and "over 4096 bytes" in too_big.json()["message"]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
    finally:
        stop_group(proc)


def test_unloadable_model_exits_non_zero(tracking_uri: str, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "mlops_console.serve",
        f"models:/{TINY_MODEL}/99",
        "--port",
        str(free_port()),
    ]
    result = subprocess.run(cmd, env=process_env(tracking_uri), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "cannot load" in result.stderr


@pytest.mark.parametrize("size", ["10X", "0", "2G", "-5", ""])
def test_bad_max_body_is_a_usage_error(size: str) -> None:
    cmd = [sys.executable, "-m", "mlops_console.serve", "models:/m@production", "--max-body", size]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "argument --max-body: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_max_body_sizes() -> None:
    sizes = {"1048576": 1 << 20, "512k": 512 << 10, "10M": 10 << 20, "10MB": 10 << 20, "1GiB": 1 << 30}
    assert {text: parse_size(text) for text in sizes} == sizes


def test_mlflow_internals_still_exist() -> None:
    """We reuse mlflow's request parsing; an MLflow upgrade that moves it must fail here, loudly."""
    from mlflow.pyfunc import scoring_server

    from mlops_console.serve import mlflow_protocol

    for name in mlflow_protocol.REQUIRED_INTERNALS:
        assert hasattr(scoring_server, name), f"mlflow.pyfunc.scoring_server.{name} is gone"
    params = list(inspect.signature(scoring_server.invocations).parameters)
    assert params[:4] == ["data", "content_type", "model", "input_schema"]


def test_cli_module_does_not_import_mlflow() -> None:
    code = "import sys, mlops_console.serve.cli; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_port_in_use_fails_fast(ours: Server, tracking_uri: str) -> None:
    port = ours.url.rsplit(":", 1)[1]
    cmd = [sys.executable, "-m", "mlops_console.serve", f"models:/{TINY_MODEL}@production", "--port", port]
    result = subprocess.run(cmd, env=process_env(tracking_uri), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "cannot listen" in result.stderr
    poll_until(lambda: httpx.get(f"{ours.url}/ping").status_code == 200, 5, "original server still up")
