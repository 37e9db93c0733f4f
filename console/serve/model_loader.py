"""Load a pyfunc model and learn which registered model version it is."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class ModelIdentity:
    """What `/model-info` reports; key names are read by the console's adapter."""

    model_uri: str
    model_name: str | None
    model_version: str | None
    run_id: str | None
    loaded_at: str
    pid: int

    def as_json(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "run_id": self.run_id,
            "loaded_at": self.loaded_at,
            "pid": self.pid,
        }


@dataclass(frozen=True)
class RegistryRef:
    name: str
    version: str | None = None
    alias: str | None = None
    stage: str | None = None  # also covers "latest"


def parse_registry_uri(model_uri: str) -> RegistryRef | None:
    """`models:/name@alias`, `models:/name/3`, `models:/name/Stage|latest`; None otherwise.

    `models:/<model-id>` (MLflow 3 logged models) has no registered name, so it is None too.
    """
    parsed = urllib.parse.urlparse(model_uri, allow_fragments=False)
    if parsed.scheme != "models":
        return None
    parts = parsed.path.lstrip("/").split("/")
    if len(parts) == 2 and parts[0]:
        name, suffix = parts
        if suffix.isdigit():
            return RegistryRef(name=name, version=suffix)
        return RegistryRef(name=name, stage=suffix)
    if len(parts) == 1 and "@" in parts[0]:
        name, alias = parts[0].rsplit("@", 1)
        return RegistryRef(name=name, alias=alias)
    return None


def _resolve_version(ref: RegistryRef) -> tuple[str, str | None]:
    """Concrete (version, run_id) for a registry reference."""
    from mlflow import MlflowClient

    client = MlflowClient()
    if ref.version is not None:
        mv = client.get_model_version(ref.name, ref.version)
    elif ref.alias is not None:
        mv = client.get_model_version_by_alias(ref.name, ref.alias)
    else:
        stages = None if (ref.stage or "latest").lower() == "latest" else [ref.stage]
        versions = client.get_latest_versions(ref.name, stages=stages)
        if not versions:
            raise LookupError(f"no version of {ref.name!r} in stage {ref.stage!r}")
        mv = max(versions, key=lambda v: int(v.version))
    return str(mv.version), mv.run_id


def load(model_uri: str) -> tuple[Any, ModelIdentity]:
    """Load the model; for registry URIs pin the version first so an alias moving meanwhile
    cannot make us report one version while serving another."""
    import mlflow.pyfunc

    ref = parse_registry_uri(model_uri)
    name = version = run_id = None
    load_uri = model_uri
    if ref is not None:
        version, run_id = _resolve_version(ref)
        name = ref.name
        load_uri = f"models:/{ref.name}/{version}"
    model = mlflow.pyfunc.load_model(load_uri)
    run_id = run_id or getattr(model.metadata, "run_id", None)
    identity = ModelIdentity(
        model_uri=model_uri,
        model_name=name,
        model_version=version,
        run_id=run_id,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        pid=os.getpid(),
    )
    return model, identity
