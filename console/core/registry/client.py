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
from mlops_console.core.registry.convert import aliases_by_version, model_info, run_info, version_info
from mlops_console.core.registry.errors import is_missing_artifact, translate_error
from mlops_console.core.registry.records import (
    ModelInfo,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    RunInfo,
    VersionInfo,
    VersionPage,
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
            raise translate_error(box["error"], what, model=model, write=write) from box["error"]
        return cast(T, box["value"])

    def _where(self) -> str:
        if self.tracking_uri.startswith("sqlite:"):
            return self.tracking_uri
        return re.sub(r"//[^@/]*@", "//", self.tracking_uri)  # never echo credentials in a URI

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

        return sorted((model_info(m) for m in self._call("list models", fetch)), key=lambda m: m.name)

    def get_model(self, name: str) -> ModelInfo:
        return model_info(self._call(f"get model {name}", lambda c: c.get_registered_model(name), model=name))

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
        by_version = aliases_by_version(model.aliases)
        items = [version_info(v, by_version) for v in page]
        if with_metrics:
            for item in items:
                item.metrics = self._metrics_for(item)
        token = page.token
        return VersionPage(items, token.decode() if isinstance(token, bytes) else token)

    def version(self, name: str, version: str | int, with_metrics: bool = True) -> VersionInfo:
        def fetch(client: Any) -> tuple[Any, Any]:
            return client.get_registered_model(name), client.get_model_version(name, str(version))

        model, mv = self._call(f"get {name} v{version}", fetch, model=name)
        info = version_info(mv, aliases_by_version(model.aliases))
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
                    if is_missing_artifact(exc):
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

        return [run_info(run) for run in self._call(f"search runs of experiment {experiment_id}", fetch)]

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
