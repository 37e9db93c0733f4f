"""The quality source: one loop per endpoint with an inference log, each step of its tracker run on a
worker thread (at most two), each evaluation handed to the engine as a frozen snapshot."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.sources.base import Loop, Sink
from mlops_console.core.sources.quality.tracker import QualityTracker

if TYPE_CHECKING:
    from mlops_console.config import Settings
    from mlops_console.core.store import Store

POLL = 1.0
"""Seconds between reads of a log."""


class QualitySource:
    """Every endpoint's inference log, read and judged on worker threads (see the package's docstring)."""

    def __init__(self, settings: Settings, states: list[EndpointState], store: Store) -> None:
        self.settings = settings
        self.states = [s for s in states if s.settings.inference_log is not None]
        self.store = store
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            workers = max(1, min(2, len(self.states)))
            self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="quality")
        return self._pool

    async def open(self) -> None:
        return None

    def loops(self, sink: Sink) -> Mapping[str, Loop]:
        return {f"quality {state.name}": self._loop_for(sink, state) for state in self.states}

    def _loop_for(self, sink: Sink, state: EndpointState) -> Loop:
        async def run() -> None:
            await self._follow(sink, state)

        return run

    async def _follow(self, sink: Sink, state: EndpointState) -> None:
        loop = asyncio.get_running_loop()
        # A fresh tracker each time the loop (re)starts: it resumes from the store, like a restart.
        tracker = QualityTracker(self.settings, state.settings, self.store)
        every = tracker.drift.evaluate_every
        while True:
            snapshot = await loop.run_in_executor(self._executor(), tracker.step, time.time())
            if snapshot is not None:
                sink.quality_evaluated(state, snapshot, every, time.time())
            await asyncio.sleep(POLL)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def once(self) -> None:
        loop = asyncio.get_running_loop()
        now = time.time()
        for state in self.states:
            tracker = QualityTracker(self.settings, state.settings, None)
            snapshot = await loop.run_in_executor(self._executor(), tracker.once, now)
            state.set_quality(snapshot, tracker.drift.evaluate_every)
        await self.close()
