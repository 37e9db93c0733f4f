"""What the registry and the configured reference say about the versions a log names: the reference
profile, the input signature and the training run's metrics, each fetched once and retried after a
failure. Every call blocks (file or registry I/O) and runs on a tracker's worker thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_console.core.quality.monitor import VersionKey
from mlops_console.core.quality.offsets import TailError
from mlops_console.core.quality.reference import ReferenceProfile
from mlops_console.core.quality.schema import Signature
from mlops_console.core.quality.sources import ReferenceError, artifact_name, load_reference
from mlops_console.core.registry import RegistryError

if TYPE_CHECKING:
    from mlops_console.config import EndpointSettings, Settings
    from mlops_console.config.quality import DriftSettings
    from mlops_console.core.registry import RegistryClient

log = logging.getLogger("mlops_console.quality")

RETRY_REFERENCE = 60.0
"""Seconds before a reference or signature that could not be read is tried again."""


class VersionFacts:
    """What the registry and the configured reference say about the versions a log names; every call
    here blocks (file or registry I/O) and runs on the tracker's thread."""

    def __init__(self, settings: Settings, endpoint: EndpointSettings, drift: DriftSettings) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.spec = drift.reference
        self._client: RegistryClient | None = None
        self._failed: dict[tuple[str, VersionKey], float] = {}
        self.error: str | None = None

    @property
    def client(self) -> RegistryClient | None:
        if self._client is None and self.settings.registry.tracking_uri:
            from mlops_console.core.registry import RegistryClient

            self._client = RegistryClient(self.settings.registry)
        return self._client

    def _attempt(self, what: str, key: VersionKey, now: float, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(done, value): done is False while a failure is recent (tried again later)."""
        failed_at = self._failed.get((what, key))
        if failed_at is not None and now - failed_at < RETRY_REFERENCE:
            return False, None
        try:
            value = fn()
        except (ReferenceError, RegistryError, TailError, OSError) as exc:
            self._failed[(what, key)] = now
            self.error = f"{what}: {exc}"
            log.warning(
                "%s: %s",
                self.endpoint.name,
                self.error,
                extra={"event": "quality_error", "endpoint": self.endpoint.name},
            )
            return False, None
        self._failed.pop((what, key), None)
        self.error = None
        return True, value

    def reference(self, key: VersionKey, now: float) -> tuple[bool, ReferenceProfile | None]:
        spec = self.spec
        if spec is None:
            return True, None
        if artifact_name(spec) is None:
            return self._attempt("reference", key, now, lambda: load_reference(spec))
        model, version = key
        client = self.client
        if client is None or not model or not version:
            return True, None

        def fetch() -> ReferenceProfile:
            from mlops_console.core.run_artifacts import version_artifact_reader

            assert client is not None and model is not None and version is not None
            reader, described = version_artifact_reader(client, model, version)
            return load_reference(spec, reader, described=described)

        return self._attempt("reference", key, now, fetch)

    def signature(self, key: VersionKey, now: float) -> tuple[bool, Signature | None]:
        model, version = key
        client = self.client
        if client is None or not model or not version:
            return True, None

        def fetch() -> Signature | None:
            from mlops_console.core.run_artifacts import version_signature

            assert client is not None and model is not None and version is not None
            return version_signature(client, model, version)

        return self._attempt("signature", key, now, fetch)

    def training(self, key: VersionKey, now: float) -> tuple[bool, dict[str, float]]:
        model, version = key
        client = self.client
        if client is None or not model or not version:
            return True, {}

        def fetch() -> dict[str, float]:
            assert client is not None and model is not None and version is not None
            return dict(client.version(model, version, with_metrics=True).metrics)

        done, metrics = self._attempt("training metrics", key, now, fetch)
        return done, metrics or {}
