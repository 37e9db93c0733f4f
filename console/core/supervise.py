"""Supervision of the engine's long-running tasks: none of them may die silently.

A task that raises is logged with its traceback and restarted after a backoff; one that keeps failing
(`MAX_FAILURES` within `FAILURE_WINDOW`) stops the engine, so `watch` exits non-zero and its service
manager restarts it, instead of running on with nothing probing or paging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("mlops_console.engine")


@dataclass
class Supervisor:
    on_fatal: Callable[[str], None]
    """Called once a task has failed too often; the engine stops and reports `reason`."""
    restart_min: float = 1.0
    restart_max: float = 30.0
    max_failures: int = 5
    failure_window: float = 300.0
    problems: dict[str, str] = field(default_factory=dict)
    """Task name -> what is wrong with it right now (failed and waiting to restart)."""
    stop: asyncio.Event | None = None
    """Once set, a task that returns is done (the notifier ends its loop itself), not failed."""

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        return asyncio.create_task(self._keep(name, factory), name=name)

    async def _keep(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        failures: deque[float] = deque()
        delay = self.restart_min
        try:
            while True:
                started = time.monotonic()
                exc: BaseException | None = None
                try:
                    await factory()
                    if self.stop is not None and self.stop.is_set():
                        return
                    error = "stopped unexpectedly"  # these loops only end with the engine
                except asyncio.CancelledError:
                    raise
                except Exception as caught:
                    exc, error = caught, f"{type(caught).__name__}: {caught}"
                now = time.monotonic()
                if now - started > self.failure_window:
                    delay = self.restart_min  # it ran well for a long time: start the backoff again
                failures.append(now)
                while now - failures[0] > self.failure_window:
                    failures.popleft()
                if len(failures) >= self.max_failures:
                    reason = (
                        f"{name} failed {len(failures)} times in {self.failure_window:.0f} s, last: {error}"
                    )
                    self.problems[name] = reason
                    log.critical(
                        "engine task %s; stopping the engine",
                        reason,
                        exc_info=exc,
                        extra={"event": "engine_failed", "task": name},
                    )
                    self.on_fatal(reason)
                    return
                self.problems[name] = f"{name} failed ({error}), restarting"
                log.error(
                    "engine task %s failed: %s; restarting in %.0f s",
                    name,
                    error,
                    delay,
                    exc_info=exc,
                    extra={"event": "task_failed", "task": name},
                )
                await asyncio.sleep(delay)
                delay = min(self.restart_max, delay * 2)
                self.problems.pop(name, None)
                log.warning("engine task %s restarted", name, extra={"event": "task_restarted", "task": name})
        except asyncio.CancelledError:
            self.problems.pop(name, None)  # stopped on purpose (engine stop, lease lost)
            raise
