"""Which version each endpoint's alias points to, and the synthetic requests the registry holds.

Runs on the engine's loop; every registry call goes to a worker thread (MLflow blocks, and
`import mlflow` takes seconds). Refreshed every `registry.refresh`, and sooner when woken (a promote,
a rollback, or an endpoint that starts serving another version).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlops_console.config import Settings
from mlops_console.core.endpoint_state import EndpointState

if TYPE_CHECKING:
    from mlops_console.core.registry import RegistryClient

log = logging.getLogger("mlops_console.engine")


class RegistryWatch:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "not configured" if not settings.registry.tracking_uri else "connecting"
        """`ok`, `connecting`, `not configured`, or `registry unreachable: <reason>`."""
        self._client: RegistryClient | None = None
        self._examples: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._wake = asyncio.Event()

    @property
    def configured(self) -> bool:
        return bool(self.settings.registry.tracking_uri)

    def wake(self) -> None:
        """Refresh now rather than at the next `registry.refresh` (call on the engine's loop)."""
        self._wake.set()

    async def run(self, states: Iterable[EndpointState]) -> None:
        states = list(states)
        while True:
            self._wake.clear()
            await self.refresh(states)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.registry.refresh)

    async def refresh(self, states: Iterable[EndpointState]) -> None:
        try:
            if self._client is None:
                self._client = await asyncio.to_thread(_registry_client, self.settings)
            client = self._client
            versions: dict[tuple[str, str], str | None] = {}
            for state in states:
                model = state.settings.model
                if not model:
                    continue
                key = (model, state.settings.alias or self.settings.alias_for(model))
                if key not in versions:
                    versions[key] = await asyncio.to_thread(client.alias_version, *key)
                version = versions[key]
                state.expect(version, key[1])
                if state.adapter.wants_example and version is not None:
                    if (model, version) not in self._examples:
                        self._examples[(model, version)] = await asyncio.to_thread(
                            client.serving_input_example, model, version
                        )
                    example = self._examples[(model, version)]
                    if example:
                        state.adapter.set_example(example)
            if self.state != "ok":
                log.info("registry reachable", extra={"event": "registry", "state": "ok"})
            self.state = "ok"
        except Exception as exc:
            message = str(exc) if str(exc).startswith("registry") else f"registry unreachable: {exc}"
            if self.state != message:
                log.warning("%s", message, extra={"event": "registry", "state": "unreachable"})
            self.state = message


def _registry_client(settings: Settings) -> RegistryClient:
    from mlops_console.core.registry import RegistryClient

    return RegistryClient(settings.registry)
