"""DemoEnvironment: the demo's serving processes, their background traffic, and chaos controls."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_console.demo import config, processes, servers, state
from mlops_console.demo.datasets import DIABETES, IRIS
from mlops_console.demo.registry import build_registry, tracking_uri_for
from mlops_console.demo.state import EndpointState


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    model: str
    alias: str


DEFAULT_ENDPOINTS = (
    EndpointSpec("iris-prod", IRIS, "production"),
    EndpointSpec("iris-staging", IRIS, "staging"),
    EndpointSpec("diabetes-prod", DIABETES, "production"),
)


class DemoEnvironment:
    """Owns the demo's processes. Nothing is left behind: children are in their own process groups,
    die with this process (PDEATHSIG and `--exit-with-pid`), are stopped by an atexit handler, and
    their pids are kept in files under `root` so the next start cleans up after a crash."""

    def __init__(
        self,
        root: Path,
        endpoints: tuple[EndpointSpec, ...] = DEFAULT_ENDPOINTS,
        *,
        traffic: bool = True,
        ready_timeout: float = servers.READY_TIMEOUT_S,
    ) -> None:
        self.root = Path(root).resolve()
        self.specs = endpoints
        self.traffic_enabled = traffic
        self.ready_timeout = ready_timeout
        self._children: list[subprocess.Popen] = []
        self._started = False
        self.pager_port: int | None = None

    @property
    def tracking_uri(self) -> str:
        return tracking_uri_for(self.root)

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Build the registry if needed, start all endpoints in parallel, wait for /ping, then
        start the traffic. Raises EndpointStartError (naming the endpoint) on failure."""
        if self._started:
            return
        build_registry(self.root)
        self.cleanup_leftovers()
        state.write_json_atomic(
            state.owner_path(self.root), {"pid": os.getpid(), "tracking_uri": self.tracking_uri}
        )
        state.write_json_atomic(state.traffic_control_path(self.root), {})
        atexit.register(self.stop)
        self._started = True
        try:
            targets = {}
            for spec in self.specs:
                endpoint = EndpointState(
                    name=spec.name,
                    model=spec.model,
                    alias=spec.alias,
                    port=processes.free_port(),
                    model_uri=f"models:/{spec.model}@{spec.alias}",
                )
                proc = servers.spawn_server(self.root, endpoint)
                self._children.append(proc)
                targets[spec.name] = (endpoint.url, _alive(proc), state.log_path(self.root, spec.name))
            processes.wait_until_ready(targets, self.ready_timeout)
            if self.traffic_enabled:
                self._start_traffic()
                self._start_batch()
        except BaseException:
            self.stop()
            raise

    def _start_traffic(self) -> None:
        self.pager_port = processes.free_port()
        cmd = [
            sys.executable, "-m", "mlops_console.demo.traffic",
            "--root", str(self.root), "--exit-with-pid", str(os.getpid()),
            "--pager-port", str(self.pager_port),
        ]  # fmt: skip
        proc = processes.spawn(cmd, state.log_path(self.root, "traffic"), env=servers.server_env())
        self._children.append(proc)
        state.traffic_pid_path(self.root).write_text(str(proc.pid))

    def _start_batch(self) -> None:
        # mlflow is imported here only when the demo starts.
        from mlops_console.demo.batch import fresh_experiment, wait_for_first_run

        experiment_id = fresh_experiment(self.tracking_uri)
        cmd = [
            sys.executable, "-m", "mlops_console.demo.batch",
            "--root", str(self.root), "--exit-with-pid", str(os.getpid()),
        ]  # fmt: skip
        state.write_json_atomic(state.batch_control_path(self.root), {})
        log = state.log_path(self.root, "batch")
        proc = processes.spawn(cmd, log, env=servers.server_env())
        self._children.append(proc)
        state.batch_pid_path(self.root).write_text(str(proc.pid))
        wait_for_first_run(self.tracking_uri, experiment_id, _alive(proc), log, self.ready_timeout)

    def stop(self) -> None:
        """Stop traffic and every endpoint (including servers restarted by the deploy command)."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        self.cleanup_leftovers()
        for proc in self._children:
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        self._children.clear()
        self._started = False

    def cleanup_leftovers(self) -> None:
        """Terminate every process recorded under root (ours or from a crashed earlier run)."""
        recorded = (state.traffic_pid_path(self.root), state.batch_pid_path(self.root))
        pids = [state.read_pid(path) for path in recorded]
        pids += [ep.pid for ep in state.load_endpoints(self.root)]
        for pid in pids:
            with contextlib.suppress(Exception):
                processes.terminate(pid, self.root, timeout=5)
        state.traffic_pid_path(self.root).unlink(missing_ok=True)
        state.batch_pid_path(self.root).unlink(missing_ok=True)
        for path in (state.run_dir(self.root) / "endpoints").glob("*.json"):
            path.unlink(missing_ok=True)
        state.owner_path(self.root).unlink(missing_ok=True)

    def __enter__(self) -> DemoEnvironment:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # inspection ----------------------------------------------------------------------------
    def endpoints(self) -> list[dict[str, Any]]:
        """name, url, model, alias, model_uri, port, pid (None when the process is down)."""
        self._reap_children()
        result = []
        for ep in self._endpoint_states():
            alive = processes.is_demo_process(ep.pid, self.root)
            result.append(
                {
                    "name": ep.name,
                    "url": ep.url,
                    "model": ep.model,
                    "alias": ep.alias,
                    "model_uri": ep.model_uri,
                    "port": ep.port,
                    "pid": ep.pid if alive else None,
                }
            )
        return result

    def pids(self) -> dict[str, int]:
        """Serving process pid per live endpoint, plus "traffic", for per-process CPU/RSS panels."""
        pids = {ep["name"]: ep["pid"] for ep in self.endpoints() if ep["pid"]}
        traffic = state.read_pid(state.traffic_pid_path(self.root))
        if processes.is_demo_process(traffic, self.root):
            pids["traffic"] = traffic
        return pids

    def write_config(self, path: Path) -> Path:
        pager = f"json://127.0.0.1:{self.pager_port}/pager" if self.pager_port else None
        return config.write_config(
            path, self.root, self.tracking_uri, self._endpoint_states(), pager, pipeline=self.traffic_enabled
        )

    def deploy_command(self, endpoint: str) -> str:
        return config.deploy_command(self.root, endpoint)

    # chaos ---------------------------------------------------------------------------------
    def kill(self, endpoint: str) -> None:
        """Crash the endpoint's server (SIGKILL): it stays down until restart()."""
        ep = state.load_endpoint(self.root, endpoint)
        processes.terminate(ep.pid, self.root, hard=True, timeout=5)

    def restart(self, endpoint: str) -> None:
        """Start the endpoint again on the same port and model URI; returns once it answers /ping."""
        servers.restart_endpoint(self.root, endpoint, timeout=self.ready_timeout)
        self._reap_children()

    def slow(self, endpoint: str, delay_ms: float) -> None:
        self._set_chaos(endpoint, delay_ms=float(delay_ms))

    def fail(self, endpoint: str, error_rate: float) -> None:
        self._set_chaos(endpoint, error_rate=float(error_rate))

    def bad_release(self, endpoint: str) -> None:
        """The next other version deployed to the endpoint is a bad release: it fails half its
        requests (what automatic rollback is for)."""
        with servers.endpoint_lock(self.root, endpoint):
            ep = state.load_endpoint(self.root, endpoint)
            ep.bad_release = True
            state.save_endpoint(self.root, ep)

    def malformed(self, endpoint: str, on: bool) -> None:
        self._set_traffic(endpoint, malformed=on)

    def shift(self, endpoint: str, on: bool) -> None:
        self._set_traffic(endpoint, shift=on)

    def heal(self, endpoint: str) -> None:
        """Undo all chaos on the endpoint, restarting it if it was killed."""
        self._set_traffic(endpoint, malformed=False, shift=False)
        ep = state.load_endpoint(self.root, endpoint)
        ep.chaos = {}
        state.save_endpoint(self.root, ep)
        if not processes.is_demo_process(ep.pid, self.root):
            self.restart(endpoint)
            return
        servers.post_chaos(ep, {"delay_ms": 0.0, "error_rate": 0.0})

    def pipeline(self, name: str, switch: str) -> None:
        """Chaos for the batch-scoring pipeline: `fail`, `hang`, `slow` (5x), `fraction` (a tenth of
        its rows), or `heal` (all off). Its next run obeys; `heal` also ends a hanging one."""
        if name != state.BATCH_PIPELINE:
            raise KeyError(name)
        switches: dict[str, object] = {"fail": True, "hang": True, "slow": 5.0, "fraction": 0.1}
        if switch == "heal":
            controls: dict[str, object] = {}
        elif switch in switches:
            controls = {**state.batch_controls(self.root), switch: switches[switch]}
        else:
            raise ValueError(f"unknown pipeline chaos {switch!r}")
        state.write_json_atomic(state.batch_control_path(self.root), controls)

    def _set_chaos(self, endpoint: str, **settings: float) -> None:
        with servers.endpoint_lock(self.root, endpoint):
            ep = state.load_endpoint(self.root, endpoint)
            ep.chaos = {**ep.chaos, **settings}
            state.save_endpoint(self.root, ep)
        if processes.is_demo_process(ep.pid, self.root):
            servers.post_chaos(ep, settings)

    def _set_traffic(self, endpoint: str, **flags: bool) -> None:
        state.load_endpoint(self.root, endpoint)  # KeyError for unknown endpoints
        path = state.traffic_control_path(self.root)
        controls = state.read_json(path, {}) or {}
        controls[endpoint] = {**controls.get(endpoint, {}), **{k: bool(v) for k, v in flags.items()}}
        state.write_json_atomic(path, controls)

    def _endpoint_states(self) -> list[EndpointState]:
        order = {spec.name: i for i, spec in enumerate(self.specs)}
        return sorted(state.load_endpoints(self.root), key=lambda ep: order.get(ep.name, len(order)))

    def _reap_children(self) -> None:
        for proc in self._children:
            proc.poll()


def _alive(proc: subprocess.Popen) -> Callable[[], bool]:
    return lambda: proc.poll() is None
