"""`watch`: the headless engine, with its log lines (text or JSON) and its wait for a locked store."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from mlops_console.commands.common import EXIT_FAILED, EXIT_OK, config_option, settings_from
from mlops_console.config import Settings
from mlops_console.logs import TextLines, configure

if TYPE_CHECKING:
    from mlops_console.core.store import Store

LOG_FIELDS = ("event", "endpoint", "health", "state", "alert", "rule")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in LOG_FIELDS:
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def setup_logging(fmt: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(TextLines("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    configure(handler, level)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watch = sub.add_parser("watch", help="probe, detect and notify headless until SIGINT/SIGTERM")
    config_option(watch)
    watch.add_argument("--log-format", choices=("text", "json"), default="text")
    watch.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    watch.set_defaults(func=cmd_watch)


def open_store_waiting(settings: Settings, log: logging.Logger, stop: threading.Event) -> Store | None:
    """The store, created or migrated if need be and ready to write.

    While another process holds its lock, wait and say so every `store.lock_timeout` (at least 1 s);
    None if `stop` was set first (SIGINT/SIGTERM). Any other problem (corrupt, not writable...) raises
    StoreError.
    """
    from mlops_console.core.store import Store, StoreError

    path, remind_every = settings.store.path, max(settings.store.lock_timeout, 1.0)
    waiting_since: float | None = None
    reminded_at = 0.0
    while not stop.is_set():
        try:
            # Short attempts, so that a signal is acted on within a second.
            Store(path, lock_timeout=min(1.0, remind_every)).check_writable()
        except StoreError as exc:
            if exc.kind != "locked":
                raise
            now = time.monotonic()
            if waiting_since is None or now - reminded_at >= remind_every:
                so_far = "" if waiting_since is None else f" ({now - waiting_since:.0f} s so far)"
                waiting_since = waiting_since or now
                reminded_at = now
                log.warning(
                    "store %s locked by another process, waiting...%s",
                    path,
                    so_far,
                    extra={"event": "store_locked"},
                )
            stop.wait(0.1)
            continue
        if waiting_since is not None:
            waited = time.monotonic() - waiting_since
            log.info("store %s available after %.0f s", path, waited, extra={"event": "store_available"})
        return Store(path, lock_timeout=settings.store.lock_timeout)
    return None


def cmd_watch(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    settings.require_paging()
    setup_logging(args.log_format, args.log_level)

    log = logging.getLogger("mlops_console.watch")
    # From here until the event loop takes over, a signal only sets this flag: a SIGTERM during start-up
    # (a service stopped right after it started) is neither lost nor fatal, the watcher stops cleanly.
    early_stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: early_stop.set()) for sig in signals}
    try:
        return _watch(settings, log, early_stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _watch(settings: Settings, log: logging.Logger, early_stop: threading.Event) -> int:
    from mlops_console.core.engine import Engine, EngineFailed

    store = open_store_waiting(settings, log, early_stop)
    if store is None:
        log.info("stopped while waiting for the store", extra={"event": "stop"})
        return EXIT_OK

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if early_stop.is_set():  # a signal came before the loop's own handlers were in place
            stop.set()
        engine = Engine(settings, store)
        log.info(
            "watching %d endpoints, %d notification channels, store %s",
            len(settings.endpoints),
            len(settings.notifications),
            settings.store.path,
            extra={"event": "start"},
        )
        await engine.run(stop)
        log.info("stopped", extra={"event": "stop"})

    try:
        asyncio.run(main())
    except EngineFailed as exc:
        # Exit non-zero so the service manager (Restart=on-failure) starts a fresh watcher.
        log.critical("engine failed: %s", exc, extra={"event": "engine_failed"})
        return EXIT_FAILED
    return EXIT_OK
