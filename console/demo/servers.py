"""Starting and restarting one demo endpoint's serving process (shared by DemoEnvironment and
the `mlops_console.demo.redeploy` deploy command)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from mlops_console.demo import processes, state
from mlops_console.demo.state import EndpointState

READY_TIMEOUT_S = 60.0
BAD_RELEASE_ERROR_RATE = 0.5
"""A bad release answers some requests (its deploy verifies) and fails half of them."""


def server_command(
    root: Path, endpoint: EndpointState, tracking_uri: str, owner_pid: int | None
) -> list[str]:
    cmd = [
        sys.executable, "-m", "mlops_console.serve", endpoint.model_uri,
        "--host", endpoint.host, "--port", str(endpoint.port),
        "--tracking-uri", tracking_uri, "--chaos", "--workers", "2",
        "--log-inferences", str(state.inference_log_path(root, endpoint.name)), "--log-max-bytes", "20M",
    ]  # fmt: skip
    if owner_pid:
        cmd += ["--exit-with-pid", str(owner_pid)]
    return cmd


def server_env() -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
        "GIT_PYTHON_REFRESH": "quiet",
        # Two cores shared by several servers: one BLAS thread each is plenty for tiny models.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def owner(root: Path) -> tuple[int | None, str]:
    """(pid of the DemoEnvironment owner, tracking URI) as recorded at start."""
    payload = state.read_json(state.owner_path(root), {})
    if "tracking_uri" not in payload:
        raise RuntimeError(f"the demo under {root} is not running (no {state.owner_path(root)})")
    return payload.get("pid"), payload["tracking_uri"]


def spawn_server(root: Path, endpoint: EndpointState) -> subprocess.Popen:
    """Spawn, then record the pid at once so `stop()` finds the process whatever happens next."""
    owner_pid, tracking_uri = owner(root)
    log = state.log_path(root, endpoint.name)
    cmd = server_command(root, endpoint, tracking_uri, owner_pid)
    # Only the long-lived owner may tie the server's life to its own; the deploy command exits.
    proc = processes.spawn(cmd, log, env=server_env(), tie_to_parent=os.getpid() == owner_pid)
    endpoint.pid = proc.pid
    state.save_endpoint(root, endpoint)
    return proc


@contextlib.contextmanager
def endpoint_lock(root: Path, name: str) -> Iterator[None]:
    """Two deploys of one endpoint at once would fight over its port."""
    path = state.lock_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_and_wait(root: Path, endpoint: EndpointState, timeout: float) -> subprocess.Popen:
    proc = spawn_server(root, endpoint)
    try:
        processes.wait_until_ready(
            {endpoint.name: (endpoint.url, lambda: proc.poll() is None, state.log_path(root, endpoint.name))},
            timeout,
        )
    except processes.EndpointStartError:
        processes.terminate(proc.pid, timeout=5)
        raise
    _apply_chaos(endpoint)
    return proc


def restart_endpoint(
    root: Path, name: str, model_uri: str | None = None, *, timeout: float = READY_TIMEOUT_S
) -> EndpointState:
    """Stop the endpoint's server and start it again on the same port, serving `model_uri` (default:
    what it served before). Returns once it answers /ping.

    If the new model cannot be served, the previous one is brought back (best effort) and
    EndpointStartError is raised, so a failed deploy does not leave the demo with a dead endpoint.
    """
    root = root.resolve()
    with endpoint_lock(root, name):
        endpoint = state.load_endpoint(root, name)
        previous_uri = endpoint.model_uri
        processes.terminate(endpoint.pid, root)
        endpoint.model_uri = model_uri or previous_uri
        try:
            _start_and_wait(root, endpoint, timeout)
            if endpoint.bad_release and endpoint.model_uri != previous_uri:
                endpoint.bad_release = False
                state.save_endpoint(root, endpoint)
                post_chaos(endpoint, {"error_rate": BAD_RELEASE_ERROR_RATE})
        except processes.EndpointStartError:
            if endpoint.model_uri == previous_uri:
                raise
            failed_uri = endpoint.model_uri
            endpoint.model_uri = previous_uri
            with contextlib.suppress(processes.EndpointStartError):
                _start_and_wait(root, endpoint, timeout)
            endpoint.model_uri = failed_uri
            raise
        return endpoint


def post_chaos(endpoint: EndpointState, settings: dict[str, float]) -> None:
    import httpx

    response = httpx.post(f"{endpoint.url}/chaos", json=settings, timeout=5.0, trust_env=False)
    response.raise_for_status()


def _apply_chaos(endpoint: EndpointState) -> None:
    if any(endpoint.chaos.values()):
        post_chaos(endpoint, endpoint.chaos)
