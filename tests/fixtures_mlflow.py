"""Fixtures around a real MLflow registry, shared by the registry, promotion and TUI tests.

- `mlflow_registry_template` (session): a sqlite-backed registry trained once per session by
  `mlops_console.demo.registry.build_registry` (about 7 s): `iris` v1..v3 (accuracy 0.82 / 0.91 / 0.89,
  aliases production=2, staging=3) and `diabetes` v1..v2 (production=1, staging=2). Every version
  has a run with metrics and a `serving_input_example.json`. Read-only: do not mutate it.
- `mlflow_registry` (function): a FRESH copy of that registry for a test that mutates it (copies the
  sqlite file only, about 50 ms; artifacts stay in the template's directory, which is fine because
  nothing writes artifacts). Attributes: `.tracking_uri` (`sqlite:///...`), `.root` (its directory),
  `.db_path`, and `.set_status(model, version, status)` to fake a PENDING/FAILED registration.
- `mlflow_registry_restored` (function): like `mlflow_registry`, but one registry per test module,
  restored from the template in place before each test (sqlite's backup API, a few ms). Its tracking
  URI stays the same for the whole module, so MLflow builds its stores for it once, not once per test
  (about 0.5 s each): for the test files that run many times, as a mutation run does.
- `mlflow_server` (session, slow): a real `mlflow server` on a free loopback port over its own copy
  of the registry (about 15-20 s to start). `.url` is its tracking URI, `.registry` the copy it
  serves. Tests share it, so each must leave the aliases it found (or use its own model alias).
- `pipelines_tracking` (session): an empty sqlite tracking store, `(uri, MlflowClient)`, for the
  pipeline tests; each makes its own experiment in it (`tests.pipelines_helpers.Job.create`).
- `start_model_server(tracking_uri, model_uri, port, log_path)`: starts `mlflow models serve`
  (`--env-manager local`) in its own process group; returns a `ServedModel` with `.url` and `.stop()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

MLFLOW_BIN = str(Path(sys.executable).with_name("mlflow"))


@dataclass
class MlflowRegistry:
    root: Path
    db_path: Path

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    def copy_to(self, root: Path) -> MlflowRegistry:
        root.mkdir(parents=True, exist_ok=True)
        db_path = root / "mlflow.db"
        # The backup API gives a consistent copy even if a WAL file is lying around.
        with sqlite3.connect(self.db_path) as source, sqlite3.connect(db_path) as target:
            source.backup(target)
        return MlflowRegistry(root=root, db_path=db_path)

    def restore(self, source: MlflowRegistry) -> None:
        """Make this registry's database a copy of `source`'s again, in place: connections MLflow keeps
        open to it see the copy (triggers and rows added since are gone)."""
        with (
            contextlib.closing(sqlite3.connect(source.db_path)) as src,
            contextlib.closing(sqlite3.connect(self.db_path)) as target,
        ):
            src.backup(target)

    def set_status(self, model: str, version: str | int, status: str, message: str | None = None) -> None:
        """Fake a registration state MLflow's sqlite store never leaves a version in by itself."""
        with sqlite3.connect(self.db_path) as conn:
            conn.execute(
                "UPDATE model_versions SET status=?, status_message=? WHERE name=? AND version=?",
                [status, message, model, int(version)],
            )


@dataclass
class MlflowServer:
    url: str
    registry: MlflowRegistry
    process: subprocess.Popen[bytes]


@dataclass
class ServedModel:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process_group(self.process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)


def wait_http_ok(url: str, process: subprocess.Popen[bytes], timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited {process.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(url, timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_process_group(process)
    raise RuntimeError(f"{url} not up within {timeout}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def quiet_env(tracking_uri: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
        "GIT_PYTHON_REFRESH": "quiet",
        # `mlflow models serve` execs `uvicorn` by name: the venv's bin must be on PATH.
        "PATH": os.pathsep.join([str(Path(MLFLOW_BIN).parent), os.environ.get("PATH", "")]),
    }
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def start_model_server(
    tracking_uri: str, model_uri: str, port: int, log_path: Path, timeout: float = 90.0
) -> ServedModel:
    """`mlflow models serve` on loopback, ready (answers /ping) when this returns."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                MLFLOW_BIN,
                "models",
                "serve",
                "-m",
                model_uri,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--env-manager",
                "local",
                "-w",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=quiet_env(tracking_uri),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/ping", process, timeout, log_path)
    return ServedModel(url=url, process=process)


@pytest.fixture(scope="session")
def pipelines_tracking(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """One sqlite tracking store for the session's pipeline tests (creating one takes seconds)."""
    import logging

    from mlflow import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = f"sqlite:///{tmp_path_factory.mktemp('pipelines-mlflow') / 'mlflow.db'}"
    return uri, MlflowClient(tracking_uri=uri)


@pytest.fixture(scope="session")
def mlflow_registry_template(tmp_path_factory: pytest.TempPathFactory) -> MlflowRegistry:
    from mlops_console.demo.registry import build_registry

    # Mutation runs start a pytest session per mutant: they build the registry once (build_registry
    # is idempotent) and reuse it.
    cached = os.environ.get("MLOPS_TEST_REGISTRY_CACHE")
    root = Path(cached) if cached else tmp_path_factory.mktemp("mlflow-registry")
    build_registry(root)
    return MlflowRegistry(root=root, db_path=root / "mlflow.db")


@pytest.fixture
def mlflow_registry(mlflow_registry_template: MlflowRegistry, tmp_path: Path) -> MlflowRegistry:
    return mlflow_registry_template.copy_to(tmp_path / "registry")


@pytest.fixture(scope="module")
def _module_registry(
    mlflow_registry_template: MlflowRegistry, tmp_path_factory: pytest.TempPathFactory
) -> MlflowRegistry:
    return mlflow_registry_template.copy_to(tmp_path_factory.mktemp("module-registry"))


@pytest.fixture
def mlflow_registry_restored(
    _module_registry: MlflowRegistry, mlflow_registry_template: MlflowRegistry
) -> MlflowRegistry:
    _module_registry.restore(mlflow_registry_template)
    return _module_registry


@pytest.fixture
def registry_config(mlflow_registry: MlflowRegistry, tmp_path: Path) -> Path:
    """A console config over `mlflow_registry`, with its store in `tmp_path`."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[registry]\ntracking_uri = "{mlflow_registry.tracking_uri}"\n'
        f'[store]\npath = "{tmp_path / "console.db"}"\n'
    )
    return path


def start_mlflow_server(
    registry: MlflowRegistry, *args: str, env: dict[str, str] | None = None, timeout: float = 180.0
) -> tuple[str, subprocess.Popen[bytes]]:
    """`mlflow server` over `registry` on a free loopback port (`args`: e.g. `--app-name basic-auth`),
    answering /health when this returns. Returns its URL and process (stop with `stop_process_group`)."""
    port = free_port()
    log_path = registry.root / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                MLFLOW_BIN,
                "server",
                *args,
                "--backend-store-uri",
                registry.tracking_uri,
                "--default-artifact-root",
                (registry.root / "artifacts").as_uri(),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**quiet_env(), **(env or {})},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{url}/health", process, timeout, log_path)
    except BaseException:
        stop_process_group(process)
        raise
    return url, process


@pytest.fixture(scope="session")
def mlflow_server(
    mlflow_registry_template: MlflowRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    registry = mlflow_registry_template.copy_to(tmp_path_factory.mktemp("mlflow-server"))
    url, process = start_mlflow_server(registry)
    try:
        yield MlflowServer(url=url, registry=registry, process=process)
    finally:
        stop_process_group(process)
        shutil.rmtree(registry.root / "artifacts", ignore_errors=True)
