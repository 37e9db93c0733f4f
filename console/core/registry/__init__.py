"""The MLflow model registry: `RegistryClient` (fail-fast calls, lazy `import mlflow`) in `client`,
what it answers and the errors it raises in `records`."""

from __future__ import annotations

from mlops_console.core.registry.client import RegistryClient
from mlops_console.core.registry.records import (
    READY,
    ModelInfo,
    RegistryError,
    RegistryNotAuthenticated,
    RegistryNotFound,
    RegistryNotPermitted,
    RegistryUnavailable,
    RunInfo,
    VersionInfo,
    VersionPage,
    alias_problem,
    registry_user,
)

__all__ = [
    "READY",
    "ModelInfo",
    "RegistryClient",
    "RegistryError",
    "RegistryNotAuthenticated",
    "RegistryNotFound",
    "RegistryNotPermitted",
    "RegistryUnavailable",
    "RunInfo",
    "VersionInfo",
    "VersionPage",
    "alias_problem",
    "registry_user",
]
