"""Running the engine beside a UI: in its own thread with its own event loop, so the UI's loop never
waits on probes. Snapshots reach the UI through `on_snapshot` (called from the engine's thread)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from mlops_console.config import Settings
from mlops_console.core.engine import Engine
from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.core.store import Store

log = logging.getLogger("mlops_console.engine")


class EngineThread:
    """Runs an Engine in a thread with its own event loop, so a UI's loop never waits on probes."""

    def __init__(
        self,
        settings: Settings,
        on_snapshot: Callable[[EngineSnapshot], None],
        period: float = 1.0,
        store: Store | None = None,
        read_only: bool = False,
    ) -> None:
        self.settings = settings
        self.read_only = read_only
        self.on_snapshot = on_snapshot
        self.period = period
        self._store = store
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.engine: Engine | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="engine", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # surfaced to the UI, which decides how to show it
            self.error = exc
            log.exception("engine stopped")
            self._ready.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = self._store if self._store is not None else await self._open_store()
        self.engine = Engine(self.settings, store, read_only=self.read_only)
        self._ready.set()
        await self.engine.run(self._stop, on_snapshot=self.on_snapshot, period=self.period)

    async def _open_store(self) -> Store:
        path = self.settings.store.path
        return await asyncio.to_thread(lambda: Store(path))

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
