"""Blocking access to the store and the registry, shared by the screens' thread workers.

Nothing here runs on the UI thread: every method may block (SQLite, MLflow, the deploy hook).
Objects are created lazily on first use, so `import mlflow` never sits on the first frame's path.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from console.config import Settings
from console.core.actor import os_user

if TYPE_CHECKING:
    from console.core.store import Store


def default_actor() -> str:
    return f"{os_user()}@{os.uname().nodename}"


class RegistryMissing(Exception):
    """No registry configured (or the registry code is unavailable)."""


class Backend:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        registry: Any = None,
        actor: str | None = None,
    ) -> None:
        self.settings = settings
        self.actor = actor or default_actor()
        self._store = store
        self._registry = registry
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                from console.core.store import Store  # sqlite_utils pulls in pandas: ~0.6 s

                store = self.settings.store
                self._store = Store(store.path, lock_timeout=store.lock_timeout)
            return self._store

    @property
    def registry_configured(self) -> bool:
        return self._registry is not None or bool(self.settings.registry.tracking_uri)

    @property
    def registry(self) -> Any:
        """The `RegistryClient` (imports mlflow on first use: call from a worker)."""
        with self._lock:
            if self._registry is None:
                if not self.settings.registry.tracking_uri:
                    raise RegistryMissing("no registry configured ([registry] tracking_uri)")
                try:
                    from console.core.registry import RegistryClient
                except ImportError as exc:  # pragma: no cover - during parallel development
                    raise RegistryMissing(f"registry client unavailable: {exc}") from exc
                self._registry = RegistryClient(self.settings.registry)
            return self._registry

    # -- promotion: the same console.core.promotion code the CLI runs ---------------------------------
    def plan(
        self,
        action: str,
        model: str,
        *,
        version: str | None = None,
        alias: str | None = None,
        expect_current: str | None = None,
    ) -> Any:
        """A ChangePlan for the confirmation dialog (reads the registry; blocking)."""
        from console.core import promotion

        if action == "promote":
            return promotion.plan_promote(
                self.settings,
                self.registry,
                model,
                str(version),
                alias=alias,
                expect_current=expect_current,
                store=self.store,
            )
        return promotion.plan_rollback(
            self.settings, self.store, self.registry, model, alias=alias, expect_current=expect_current
        )

    def apply(self, plan: Any, reason: str, on_progress: Any) -> Any:
        """Carry out the plan the user confirmed; guards are re-checked against the registry first."""
        from console.core import promotion

        return promotion.apply_plan(
            self.settings,
            self.store,
            self.registry,
            plan,
            actor=self.actor,
            reason=reason,
            on_progress=on_progress,
            recheck=True,
        )
