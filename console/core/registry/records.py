"""What the registry answers, as plain dataclasses, and the errors a registry call raises."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

READY = "READY"


class RegistryError(Exception):
    """A registry call that failed; `str()` is a one-line message fit for a user."""


class RegistryUnavailable(RegistryError):
    """The registry did not answer (refused, timed out, DNS, 5xx)."""


class RegistryNotPermitted(RegistryError):
    """401/403 from a server with auth."""


class RegistryNotAuthenticated(RegistryNotPermitted):
    """401: no credentials, or ones the server rejects (wrong, or an expired password or token)."""


class RegistryNotFound(RegistryError):
    """No such registered model, version or run."""


@dataclass
class ModelInfo:
    name: str
    aliases: dict[str, str]
    """alias -> version."""
    latest_versions: list[str]
    """Newest version per legacy stage (MLflow's `latest_versions`), newest first."""
    description: str | None
    tags: dict[str, str]
    updated_at: float | None
    """Epoch seconds."""


@dataclass
class VersionInfo:
    model: str
    version: str
    status: str
    """READY, PENDING_REGISTRATION or FAILED_REGISTRATION."""
    aliases: list[str]
    stage: str | None
    """Legacy stage (None when "None")."""
    tags: dict[str, str]
    created_at: float | None
    """Epoch seconds."""
    run_id: str | None
    source: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    """The source run's metrics, else the MLflow 3 logged model's."""
    status_message: str | None = None
    description: str | None = None


@dataclass
class VersionPage:
    """One page of versions, newest first; iterate it like a list."""

    versions: list[VersionInfo]
    next_page_token: str | None

    def __iter__(self) -> Iterator[VersionInfo]:
        return iter(self.versions)

    def __len__(self) -> int:
        return len(self.versions)

    def __getitem__(self, index: int) -> VersionInfo:
        return self.versions[index]


_RESERVED_VERSION_ALIAS = re.compile(r"^v\d+$", re.IGNORECASE)
_ALIAS_CHARS = re.compile(r"^[\w\-]+$")


def alias_problem(alias: str) -> str | None:
    """Why MLflow would refuse this alias name, or None. Checked locally to say it before any call."""
    if not alias:
        return "alias name is empty"
    if alias.lower() == "latest" or _RESERVED_VERSION_ALIAS.match(alias):
        return f"alias name {alias!r} is reserved by MLflow"
    if not _ALIAS_CHARS.match(alias) or len(alias) > 255:
        return f"alias name {alias!r} may only contain letters, digits, '_' and '-'"
    return None


def registry_user() -> str:
    """Who MLflow authenticates as, for "not permitted: <user> ..." messages."""
    if os.environ.get("MLFLOW_TRACKING_USERNAME"):
        return os.environ["MLFLOW_TRACKING_USERNAME"]
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return "the token in $MLFLOW_TRACKING_TOKEN"
    return "anonymous"


TERMINAL_RUN_STATES = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One MLflow run of a pipeline, frozen: it crosses from the reading thread to the engine and UI."""

    run_id: str
    status: str
    """`RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`."""
    start: float | None
    """Epoch seconds."""
    end: float | None
    metrics: tuple[tuple[str, float], ...] = ()
    """The run's latest value of each metric, by name."""
    name: str | None = None
    experiment_id: str = ""

    def metric(self, name: str) -> float | None:
        for key, value in self.metrics:
            if key == name:
                return value
        return None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_RUN_STATES

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, for a run that ended."""
        if self.start is None or self.end is None or not self.finished:
            return None
        return max(self.end - self.start, 0.0)
