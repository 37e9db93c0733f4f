"""The MLflow model registry, seen through `MlflowClient`, failing fast and speaking plain dataclasses.

All methods block; callers on an event loop or UI thread run them in a worker thread. `mlflow` is
imported on the first call, never at import time (it takes about 2 s).

Fail fast: MLflow's HTTP client retries a dead server for minutes by default. The client sets
`MLFLOW_HTTP_REQUEST_MAX_RETRIES=0` and `MLFLOW_HTTP_REQUEST_TIMEOUT` (both read by MLflow at call
time) and also runs every call in a daemon thread with a hard deadline, so neither a blackholed
server nor a locked sqlite file can hold a caller longer than `timeout` plus a small grace.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from mlops_console.config import RegistrySettings
from mlops_console.core import secrets
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
    registry_user,
)

T = TypeVar("T")

# Beyond MLflow's own HTTP timeout, so MLflow's clearer error normally wins the race.
_DEADLINE_GRACE_S = 2.0
_CREDENTIAL_ENV = {
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
    "token": "MLFLOW_TRACKING_TOKEN",
}


class RegistryClient:
    """Blocking, thread-safe facade over one MLflow registry (`sqlite:///...` or `http(s)://...`)."""

    def __init__(self, settings: RegistrySettings) -> None:
        if not settings.tracking_uri:
            raise RegistryError("no registry configured ([registry] tracking_uri)")
        self.settings = settings
        self.tracking_uri: str = settings.tracking_uri
        self.timeout = float(settings.timeout)
        self._client: Any = None
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------------------------
    def _mlflow_client(self) -> Any:
        with self._lock:
            if self._client is None:
                # Read by MLflow on every request, so they take effect for this client's calls too.
                os.environ.update(self._credentials())
                os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
                os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(self.timeout)))
                import logging

                # The sqlite store logs every alembic migration check at INFO onto our terminal.
                logging.getLogger("alembic").setLevel(logging.WARNING)
                from mlflow import MlflowClient

                self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            return self._client

    def _credentials(self) -> dict[str, str]:
        """MLflow's credential variables from `[registry]`'s references, resolved now (not at load: a
        command that never reaches the registry does not need them)."""
        out = {}
        for key, value in self.settings.credentials():
            try:
                out[_CREDENTIAL_ENV[key]] = secrets.expand(value)
            except secrets.MissingVariable as exc:
                raise RegistryError(f"[registry] {key}: {exc}") from None
        return out

    def _call(self, what: str, fn: Callable[[Any], T], *, model: str | None = None, write: bool = False) -> T:
        """Run `fn(client)` with a hard deadline, mapping MLflow's errors to ours."""
        client = self._mlflow_client()
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = fn(client)
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        # A daemon thread: a call stuck past its deadline must not keep the process alive at exit.
        threading.Thread(target=run, name=f"registry:{what}", daemon=True).start()
        if not done.wait(self.timeout + _DEADLINE_GRACE_S):
            suffix = " (the change may still happen; check with `mlops-console models show`)" if write else ""
            raise RegistryUnavailable(
                f"registry unreachable: {self._where()} did not answer {what} "
                f"within {self.timeout:g}s{suffix}"
            )
        if "error" in box:
            raise self._translate(box["error"], what, model=model, write=write) from box["error"]
        return cast(T, box["value"])

    def _where(self) -> str:
        if self.tracking_uri.startswith("sqlite:"):
            return self.tracking_uri
        return re.sub(r"//[^@/]*@", "//", self.tracking_uri)  # never echo credentials in a URI

    def _translate(self, exc: BaseException, what: str, *, model: str | None, write: bool) -> RegistryError:
        if isinstance(exc, RegistryError):
            return exc
        code = str(getattr(exc, "error_code", "") or "")
        message = str(getattr(exc, "message", None) or exc).strip().splitlines()[0] if str(exc) else repr(exc)
        if code == "UNAUTHENTICATED" or re.search(r"\b401\b", message):
            user = registry_user()
            if user == "anonymous":
                return RegistryNotAuthenticated(
                    "not authenticated: the registry wants credentials (MLFLOW_TRACKING_USERNAME and "
                    "MLFLOW_TRACKING_PASSWORD, or [registry] username and password)"
                )
            return RegistryNotAuthenticated(
                f"not authenticated: the registry refused the credentials of {user} "
                f"(wrong, or an expired password or token)"
            )
        if code == "PERMISSION_DENIED" or re.search(r"\b403\b", message):
            right = "EDIT" if write else "READ"
            return RegistryNotPermitted(
                f"not permitted: {registry_user()} lacks {right} on {model or 'the registry'}"
            )
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return RegistryNotFound(message)
        if code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "INVALID_STATE", "BAD_REQUEST"):
            return RegistryError(message)
        if "API request to" in message or isinstance(exc, ConnectionError | TimeoutError | OSError):
            return RegistryUnavailable(f"registry unreachable: {_shorten_network_error(message)}")
        if code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "SERVICE_UNDER_MAINTENANCE"):
            return RegistryUnavailable(f"registry unreachable: {message}")
        return RegistryError(f"registry error during {what}: {message}")

    # -- reads -----------------------------------------------------------------------------------------
    def list_models(self, max_results: int = 1000) -> list[ModelInfo]:
        """Every registered model (with aliases), sorted by name."""

        def fetch(client: Any) -> list[Any]:
            out: list[Any] = []
            token = None
            while True:
                page = client.search_registered_models(max_results=min(max_results, 1000), page_token=token)
                out.extend(page)
                token = page.token
                if not token or len(out) >= max_results:
                    return out

        return sorted((_model_info(m) for m in self._call("list models", fetch)), key=lambda m: m.name)

    def get_model(self, name: str) -> ModelInfo:
        return _model_info(
            self._call(f"get model {name}", lambda c: c.get_registered_model(name), model=name)
        )

    def alias_version(self, model: str, alias: str) -> str | None:
        """The version `alias` points to, None when unset. RegistryNotFound when the model does not exist."""
        return self.get_model(model).aliases.get(alias)

    def versions(
        self, name: str, max_results: int = 50, page_token: str | None = None, with_metrics: bool = True
    ) -> VersionPage:
        """Versions of `name`, newest first, one page at a time (pass `next_page_token` back)."""
        quoted = name.replace("'", "\\'")

        def fetch(client: Any) -> tuple[Any, Any]:
            model = client.get_registered_model(
                name
            )  # also turns a missing model into RESOURCE_DOES_NOT_EXIST
            page = client.search_model_versions(
                filter_string=f"name='{quoted}'",
                max_results=max_results,
                order_by=["version_number DESC"],
                page_token=page_token,
            )
            return model, page

        model, page = self._call(f"list versions of {name}", fetch, model=name)
        by_version = _aliases_by_version(model.aliases)
        items = [_version_info(v, by_version) for v in page]
        if with_metrics:
            for item in items:
                item.metrics = self._metrics_for(item)
        token = page.token
        return VersionPage(items, token.decode() if isinstance(token, bytes) else token)

    def version(self, name: str, version: str | int, with_metrics: bool = True) -> VersionInfo:
        def fetch(client: Any) -> tuple[Any, Any]:
            return client.get_registered_model(name), client.get_model_version(name, str(version))

        model, mv = self._call(f"get {name} v{version}", fetch, model=name)
        info = _version_info(mv, _aliases_by_version(model.aliases))
        if with_metrics:
            info.metrics = self._metrics_for(info)
        return info

    def run_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call(f"get run {run_id}", lambda c: c.get_run(run_id))
        return dict(run.data.metrics or {})

    def logged_model_metrics(self, model_id: str) -> dict[str, float]:
        logged = self._call(f"get logged model {model_id}", lambda c: c.get_logged_model(model_id))
        return {m.key: m.value for m in (logged.metrics or [])}

    def _metrics_for(self, info: VersionInfo) -> dict[str, float]:
        metrics: dict[str, float] = {}
        try:
            if info.run_id:
                metrics = self.run_metrics(info.run_id)
            if not metrics and info.source and info.source.startswith("models:/m-"):
                metrics = self.logged_model_metrics(info.source.removeprefix("models:/"))
        except RegistryNotFound:
            pass  # a deleted run leaves the version without metrics, which is not an error
        return metrics

    def serving_input_example(self, model: str, version: str | int) -> dict[str, Any] | None:
        """The version's `serving_input_example.json` (a ready /invocations body), None if it has none."""

        def fetch(client: Any) -> dict[str, Any] | None:
            import mlflow.artifacts

            base = client.get_model_version_download_uri(model, str(version))
            with tempfile.TemporaryDirectory(prefix="mlops-console-") as tmp:
                try:
                    path = mlflow.artifacts.download_artifacts(
                        artifact_uri=f"{base.rstrip('/')}/serving_input_example.json",
                        dst_path=tmp,
                        tracking_uri=self.tracking_uri,
                    )
                except Exception as exc:
                    if _is_missing_artifact(exc):
                        return None
                    raise
                example: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
                return example

        return self._call(f"download the input example of {model} v{version}", fetch, model=model)

    def experiment_id(self, name: str) -> str:
        """The id of the experiment called `name`; RegistryNotFound when there is none."""

        def fetch(client: Any) -> str:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise RegistryNotFound(f"no experiment named {name!r}")
            return str(experiment.experiment_id)

        return self._call(f"find experiment {name}", fetch)

    def search_runs(self, experiment_id: str, filter_string: str | None, max_results: int) -> list[RunInfo]:
        """The newest `max_results` runs of one experiment matching the filter, newest start first."""

        def fetch(client: Any) -> list[Any]:
            return list(
                client.search_runs(
                    [experiment_id],
                    filter_string=filter_string or "",
                    max_results=max_results,
                    order_by=["attributes.start_time DESC"],
                )
            )

        return [_run_info(run) for run in self._call(f"search runs of experiment {experiment_id}", fetch)]

    # -- writes (used by mlops_console.core.promotion) -------------------------------------------------------
    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._call(
            f"set alias {alias} of {model}",
            lambda c: c.set_registered_model_alias(model, alias, str(version)),
            model=model,
            write=True,
        )

    def transition_stage(self, model: str, version: str, stage: str) -> None:
        """Legacy stages: move `version` into `stage`, archiving whatever was there (like moving an alias)."""

        def run(client: Any) -> None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the deprecation warning is for MLflow users, not ours
                client.transition_model_version_stage(
                    model, str(version), stage, archive_existing_versions=True
                )

        self._call(f"move {model} v{version} to stage {stage}", run, model=model, write=True)

    def stage_version(self, model: str, stage: str) -> str | None:
        """Newest version currently in a legacy stage."""
        quoted = model.replace("'", "\\'")

        def fetch(client: Any) -> list[Any]:
            client.get_registered_model(model)
            return list(client.search_model_versions(f"name='{quoted}'", max_results=1000))

        found = [
            v
            for v in self._call(f"find stage {stage} of {model}", fetch, model=model)
            if (v.current_stage or "").lower() == stage.lower()
        ]
        return str(max(int(v.version) for v in found)) if found else None

    def set_version_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        def run(client: Any) -> None:
            for key, value in tags.items():
                client.set_model_version_tag(model, str(version), key, value)

        self._call(f"tag {model} v{version}", run, model=model, write=True)

    def set_model_tag(self, model: str, key: str, value: str) -> None:
        self._call(
            f"tag {model}", lambda c: c.set_registered_model_tag(model, key, value), model=model, write=True
        )


def _model_info(model: Any) -> ModelInfo:
    latest = sorted((str(v.version) for v in (model.latest_versions or [])), key=int, reverse=True)
    updated = model.last_updated_timestamp
    return ModelInfo(
        name=model.name,
        aliases={alias: str(version) for alias, version in (model.aliases or {}).items()},
        latest_versions=latest,
        description=model.description or None,
        tags=dict(model.tags or {}),
        updated_at=updated / 1000 if updated else None,
    )


def _run_info(run: Any) -> RunInfo:
    info = run.info
    metrics = tuple(sorted((str(k), float(v)) for k, v in (run.data.metrics or {}).items()))
    return RunInfo(
        run_id=str(info.run_id),
        status=str(info.status),
        start=info.start_time / 1000 if info.start_time else None,
        end=info.end_time / 1000 if info.end_time else None,
        metrics=metrics,
        name=getattr(info, "run_name", None) or None,
        experiment_id=str(info.experiment_id),
    )


def _aliases_by_version(aliases: dict[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in sorted((aliases or {}).items()):
        out.setdefault(str(version), []).append(alias)
    return out


def _version_info(mv: Any, aliases_by_version: dict[str, list[str]]) -> VersionInfo:
    stage = mv.current_stage if mv.current_stage and mv.current_stage != "None" else None
    return VersionInfo(
        model=mv.name,
        version=str(mv.version),
        status=str(mv.status or READY),
        aliases=aliases_by_version.get(str(mv.version), []),
        stage=stage,
        tags=dict(mv.tags or {}),
        created_at=mv.creation_timestamp / 1000 if mv.creation_timestamp else None,
        run_id=mv.run_id or None,
        source=mv.source or None,
        status_message=mv.status_message or None,
        description=mv.description or None,
    )


def _is_missing_artifact(exc: BaseException) -> bool:
    text = str(exc).lower()
    code = str(getattr(exc, "error_code", "") or "")
    return (
        isinstance(exc, FileNotFoundError)
        or code == "RESOURCE_DOES_NOT_EXIST"
        or "no such file" in text
        or "not found" in text
        or "404" in text
    )


def _shorten_network_error(message: str) -> str:
    # requests' messages nest three exception reprs deep; the innermost reason is what a user needs.
    match = re.search(r"API request to (\S+) failed", message)
    url = re.sub(r"//[^@/]*@", "//", match.group(1)) if match else None
    for reason in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "Max retries exceeded",
        "Failed to resolve",
        "Connection reset",
        "Remote end closed",
    ):
        if reason.lower() in message.lower():
            return f"{url}: {reason.lower()}" if url else reason.lower()
    return message[:300]
