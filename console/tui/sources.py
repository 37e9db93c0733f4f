"""Where snapshots come from. The app takes any object with `start(on_snapshot)` and `stop()`.

The default is the real engine thread (`mlops_console.core.engine_thread.EngineThread`), imported only
when the app starts it from a worker thread, so the first frame never waits for it. Tests and screenshots
pass a `StaticSource` with deterministic data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from mlops_console.config import Settings
from mlops_console.core.snapshot import EngineSnapshot

if TYPE_CHECKING:
    from mlops_console.core.engine_thread import EngineThread

OnSnapshot = Callable[[EngineSnapshot], None]


class SnapshotSource(Protocol):
    def start(self, on_snapshot: OnSnapshot) -> None:
        """Begin delivering snapshots; `on_snapshot` may be called from any thread."""

    def stop(self) -> None:
        """Stop delivering; must return promptly."""


class EngineSource:
    """The probe engine in its own thread (or following another process's lease through the store)."""

    def __init__(self, settings: Settings, period: float = 1.0, read_only: bool = False) -> None:
        self.settings = settings
        self.period = period
        self.read_only = read_only
        self._engine: EngineThread | None = None

    def start(self, on_snapshot: OnSnapshot) -> None:
        from mlops_console.core.engine_thread import EngineThread

        self._engine = EngineThread(self.settings, on_snapshot, period=self.period, read_only=self.read_only)
        self._engine.start()

    @property
    def error(self) -> BaseException | None:
        """Why the engine thread died, if it did."""
        return getattr(self._engine, "error", None)

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.stop(timeout=5)
            self._engine = None


class StaticSource:
    """Delivers fixed snapshots: once, or cycling through a sequence every `period` seconds."""

    def __init__(
        self, snapshots: EngineSnapshot | Sequence[EngineSnapshot], period: float | None = None
    ) -> None:
        self.snapshots = [snapshots] if isinstance(snapshots, EngineSnapshot) else list(snapshots)
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_snapshot: OnSnapshot) -> None:
        if not self.snapshots:
            return
        on_snapshot(self.snapshots[0])
        if self.period is None or len(self.snapshots) < 2:
            return

        def run() -> None:
            index = 1
            while not self._stop.wait(self.period):
                on_snapshot(self.snapshots[index % len(self.snapshots)])
                index += 1

        self._thread = threading.Thread(target=run, name="static-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
