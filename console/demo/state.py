"""Files under the demo root that describe running processes.

Pids live in files, not only in memory, because the deploy command restarts servers from another
process, and because a later run must be able to clean up after a crashed one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EndpointState:
    name: str
    model: str
    alias: str
    port: int
    model_uri: str
    pid: int | None = None
    host: str = "127.0.0.1"
    # Re-applied after a restart so a slowed endpoint stays slow until healed.
    chaos: dict[str, float] = field(default_factory=dict)
    bad_release: bool = False
    """The next other version deployed here fails half its requests (that server only: a rollback's
    redeploy is healthy again)."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def run_dir(root: Path) -> Path:
    return root / "run"


def endpoint_path(root: Path, name: str) -> Path:
    return run_dir(root) / "endpoints" / f"{name}.json"


def log_path(root: Path, name: str) -> Path:
    return root / "logs" / f"{name}.log"


def inference_log_path(root: Path, name: str) -> Path:
    """Where the endpoint's server logs every scored row (the console tails it for drift)."""
    return run_dir(root) / f"{name}.inferences.jsonl"


def owner_path(root: Path) -> Path:
    return run_dir(root) / "owner.json"


def traffic_pid_path(root: Path) -> Path:
    return run_dir(root) / "traffic.pid"


def traffic_control_path(root: Path) -> Path:
    return run_dir(root) / "traffic-control.json"


BATCH_PIPELINE = "batch-scoring"
"""The demo's batch-scoring pipeline (`demo/batch.py`): its `[[pipelines]]` name and its experiment."""


def batch_pid_path(root: Path) -> Path:
    return run_dir(root) / "batch.pid"


def batch_control_path(root: Path) -> Path:
    """The batch job's chaos switches, read before each run."""
    return run_dir(root) / "batch-control.json"


def batch_controls(root: Path) -> dict[str, Any]:
    found = read_json(batch_control_path(root), {}) or {}
    return found if isinstance(found, dict) else {}


def lock_path(root: Path, name: str) -> Path:
    return run_dir(root) / "locks" / f"{name}.lock"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Readers (the traffic process, redeploy) must never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def save_endpoint(root: Path, state: EndpointState) -> None:
    write_json_atomic(endpoint_path(root, state.name), asdict(state))


def load_endpoint(root: Path, name: str) -> EndpointState:
    payload = read_json(endpoint_path(root, name))
    if payload is None:
        raise KeyError(f"no demo endpoint named {name!r} under {root}")
    return EndpointState(**payload)


def load_endpoints(root: Path) -> list[EndpointState]:
    folder = run_dir(root) / "endpoints"
    if not folder.is_dir():
        return []
    states = (read_json(p) for p in sorted(folder.glob("*.json")))
    return [EndpointState(**s) for s in states if s]


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
