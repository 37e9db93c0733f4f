"""Files of a model version's training run, read through the registry: the drift reference logged
with the run (`artifact:reference.csv`) and the `MLmodel` signature the predictions are checked against.

Calls go through `RegistryClient`'s deadline and error mapping (mlflow imported lazily, fail fast, one-
line errors); this module only knows which files to ask for.
"""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path
from typing import Any

from mlops_console.core.quality.schema import Signature
from mlops_console.core.quality.sources import FetchArtifact
from mlops_console.core.registry import RegistryClient, RegistryError, RegistryNotFound
from mlops_console.core.registry.errors import is_missing_artifact

MAX_ARTIFACT_BYTES = 256 * 1024 * 1024
"""A reference is profiled in memory; anything bigger is refused before it is downloaded."""


def check_artifact_path(path: str) -> str:
    """A relative path inside the run's artifacts; ValueError for absolute paths and `..`."""
    cleaned = posixpath.normpath(path.strip())
    if not path.strip() or cleaned.startswith(("/", "..")) or cleaned == "." or "\\" in path:
        raise ValueError(f"artifact path {path!r} must be relative to the run's artifacts, without '..'")
    return cleaned


def read_run_artifact(
    client: RegistryClient, run_id: str, path: str, *, max_bytes: int = MAX_ARTIFACT_BYTES
) -> bytes:
    """The bytes of one artifact of a run. RegistryNotFound when the run has no such file."""
    try:
        path = check_artifact_path(path)
    except ValueError as exc:
        raise RegistryError(str(exc)) from None

    def fetch(mlflow_client: Any) -> bytes:
        import mlflow.artifacts

        listed = {
            info.path: info for info in mlflow_client.list_artifacts(run_id, posixpath.dirname(path) or None)
        }
        info = listed.get(path)
        if info is None or info.is_dir:
            raise RegistryNotFound(f"run {run_id} has no artifact {path}")
        if info.file_size is not None and info.file_size > max_bytes:
            raise RegistryError(
                f"artifact {path} of run {run_id} is {info.file_size} bytes (at most {max_bytes})"
            )
        with tempfile.TemporaryDirectory(prefix="mlops-console-") as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=path, dst_path=tmp, tracking_uri=client.tracking_uri
                )
            except Exception as exc:
                if is_missing_artifact(exc):
                    raise RegistryNotFound(f"run {run_id} has no artifact {path}") from None
                raise
            file = Path(local)
            if file.stat().st_size > max_bytes:
                raise RegistryError(f"artifact {path} of run {run_id} is over {max_bytes} bytes")
            return file.read_bytes()

    data: bytes = client._call(f"download artifact {path} of run {run_id}", fetch)
    return data


def version_artifact_reader(client: RegistryClient, model: str, version: str) -> tuple[FetchArtifact, str]:
    """A reader of the artifacts of the run that trained `model` `version`, and a description of that
    run for people (`iris v3 (run 0a1b...)`)."""
    info = client.version(model, version, with_metrics=False)
    if not info.run_id:
        raise RegistryNotFound(f"{model} v{version} has no training run to read artifacts from")
    run_id = info.run_id

    def fetch(path: str) -> bytes:
        return read_run_artifact(client, run_id, path)

    return fetch, f"{model} v{version} (run {run_id})"


def version_signature(client: RegistryClient, model: str, version: str) -> Signature | None:
    """The signature in the version's `MLmodel` file; None when the model was logged without one."""

    def fetch(mlflow_client: Any) -> dict[str, Any] | None:
        import mlflow.artifacts
        from mlflow.models import Model

        base = mlflow_client.get_model_version_download_uri(model, str(version))
        with tempfile.TemporaryDirectory(prefix="mlops-console-") as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{base.rstrip('/')}/MLmodel", dst_path=tmp, tracking_uri=client.tracking_uri
                )
            except Exception as exc:
                if is_missing_artifact(exc):
                    return None
                raise
            signature = Model.load(local).signature
            return signature.to_dict() if signature is not None else None

    found = client._call(f"read the signature of {model} v{version}", fetch, model=model)
    if found is None:
        return None
    try:
        return Signature.from_mlflow(found, source=f"MLmodel of {model} v{version}")
    except ValueError as exc:
        raise RegistryError(f"{model} v{version}: unreadable signature: {exc}") from None
