"""Blocking access to the store and the registry, shared by the screens' thread workers.

Nothing here runs on the UI thread: every method may block (SQLite, MLflow, the deploy hook).
Objects are created lazily on first use, so `import mlflow` never sits on the first frame's path.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_console.config import Settings
from mlops_console.core.actor import os_user

if TYPE_CHECKING:
    from mlops_console.core.promotion import ChangePlan, ChangeResult, Promoter
    from mlops_console.core.store import Store


def default_actor() -> str:
    return f"{os_user()}@{os.uname().nodename}"


class RegistryMissing(Exception):
    """No registry configured (or the registry code is unavailable)."""


_order = itertools.count(1)


def next_order() -> int:
    """Orders observations of the registry's state made in different threads (newest: largest)."""
    return next(_order)


def is_unreachable(exc: BaseException) -> bool:
    from mlops_console.core.registry import RegistryUnavailable

    return isinstance(exc, RegistryUnavailable) or str(exc).startswith("registry unreachable")


class ObservedRegistry:
    """The registry client, reporting whether each call reached the registry.

    A call that answers, even with "no such model", saw the registry up; one that failed to connect or
    timed out saw it unreachable. Other failures (permissions, bugs) are not reported.
    """

    def __init__(self, client: Any, report: Callable[[str], None]) -> None:
        self._client = client
        self._report = report

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = value(*args, **kwargs)
            except Exception as exc:
                if is_unreachable(exc):
                    message = str(exc)
                    prefix = "registry unreachable"
                    self._report(message if message.startswith(prefix) else f"{prefix}: {message}")
                else:
                    from mlops_console.core.registry import RegistryNotFound

                    if isinstance(exc, RegistryNotFound):  # it answered
                        self._report("ok")
                raise
            self._report("ok")
            return result

        return call


class Backend:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        registry: Any = None,
        actor: str | None = None,
        on_registry_state: Callable[[tuple[int, str]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.actor = actor or default_actor()
        self._store = store
        self._registry = registry
        self._observed: ObservedRegistry | None = None
        self._lock = threading.Lock()
        self.registry_state: tuple[int, str] | None = None
        """(order, "ok" or "registry unreachable: ...") as the last registry call found it."""
        self._on_registry_state = on_registry_state

    def _saw_registry(self, state: str) -> None:
        seen = (next_order(), state)
        self.registry_state = seen  # one tuple: readers in other threads never see half of it
        if self._on_registry_state is not None:
            self._on_registry_state(seen)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                from mlops_console.core.store import Store

                store = self.settings.store
                self._store = Store(store.path, lock_timeout=store.lock_timeout)
            return self._store

    @property
    def registry_configured(self) -> bool:
        return self._registry is not None or bool(self.settings.registry.tracking_uri)

    @property
    def registry(self) -> Any:
        """The `RegistryClient` (imports mlflow on first use: call from a worker), observed."""
        with self._lock:
            if self._observed is None:
                if self._registry is None:
                    if not self.settings.registry.tracking_uri:
                        raise RegistryMissing("no registry configured ([registry] tracking_uri)")
                    try:
                        from mlops_console.core.registry import RegistryClient
                    except ImportError as exc:  # pragma: no cover - during parallel development
                        raise RegistryMissing(f"registry client unavailable: {exc}") from exc
                    self._registry = RegistryClient(self.settings.registry)
                self._observed = ObservedRegistry(self._registry, self._saw_registry)
            return self._observed

    def check_registry(self) -> None:
        """One cheap registry call, so that `registry_state` follows the registry when nothing else asks."""
        self.registry.list_models()

    # -- promotion: the same `Promoter` the CLI runs ---------------------------------------------------
    def promoter(self) -> Promoter:
        from mlops_console.core.promotion import Promoter

        return Promoter(self.settings, self.store, self.registry)

    def plan(
        self,
        action: str,
        model: str,
        *,
        version: str | None = None,
        alias: str | None = None,
        expect_current: str | None = None,
    ) -> ChangePlan:
        """A ChangePlan for the confirmation dialog (reads the registry; blocking)."""
        promoter = self.promoter()
        if action == "promote":
            return promoter.plan_promote(model, str(version), alias=alias, expect_current=expect_current)
        return promoter.plan_rollback(model, alias=alias, expect_current=expect_current)

    def apply(self, plan: ChangePlan, reason: str, on_progress: Callable[[str], None]) -> ChangeResult:
        """Carry out the plan the user confirmed; guards are re-checked against the registry first."""
        return self.promoter().apply(
            plan, actor=self.actor, reason=reason, on_progress=on_progress, recheck=True
        )
