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
from mlops_console.config import ConfigError, Settings, parse_listen_addr
from mlops_console.core.heap import map_large_blocks
from mlops_console.logs import TextLines, configure

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine
    from mlops_console.core.selfmetrics import MetricsServer, SelfMetrics
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
    watch.add_argument(
        "--metrics-addr",
        type=_listen_addr,
        default=None,
        metavar="HOST:PORT",
        help="serve the watcher's own Prometheus /metrics here (overrides [watch] metrics_addr)",
    )
    watch.set_defaults(func=cmd_watch)


def _listen_addr(text: str) -> str:
    try:
        parse_listen_addr(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def start_metrics_server(settings: Settings, addr: str, key: str) -> tuple[SelfMetrics, MetricsServer]:
    """The watcher's `/metrics`, listening before anything else starts; ConfigError (exit 2) naming
    `key` when the address cannot be bound."""
    from mlops_console.core.selfmetrics import MetricsServer, SelfMetrics

    host, port = parse_listen_addr(addr)
    metrics = SelfMetrics()
    try:
        server = MetricsServer(metrics, host, port)
    except OSError as exc:
        raise ConfigError(
            settings.source, [f"{key}: cannot listen on {addr}: {exc.strerror or exc}"]
        ) from None
    return metrics, server


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
    map_large_blocks()  # before the configuration of a fleet is read: see `core/heap.py`
    settings = settings_from(args)
    settings.require_paging()
    missing_heartbeat = settings.missing_env("watch.heartbeat_url")
    if missing_heartbeat:
        raise ConfigError(settings.source, missing_heartbeat)
    setup_logging(args.log_format, args.log_level)

    log = logging.getLogger("mlops_console.watch")
    served: tuple[SelfMetrics, MetricsServer] | None = None
    addr = args.metrics_addr or settings.watch.metrics_addr
    if addr:
        key = "--metrics-addr" if args.metrics_addr else "watch.metrics_addr"
        served = start_metrics_server(settings, addr, key)
        log.info(
            "serving metrics on http://%s/metrics",
            _shown_addr(addr, served[1].port),
            extra={"event": "metrics"},
        )
    # From here until the event loop takes over, a signal only sets this flag: a SIGTERM during start-up
    # (a service stopped right after it started) is neither lost nor fatal, the watcher stops cleanly.
    early_stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: early_stop.set()) for sig in signals}
    try:
        return _watch(settings, log, early_stop, served[0] if served else None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if served is not None:
            served[1].close()


def _shown_addr(addr: str, port: int) -> str:
    """`addr` with the port actually bound (`:0` asks the system for a free one)."""
    return f"{addr.rpartition(':')[0]}:{port}"


def _extras(settings: Settings, engine: Engine, metrics: SelfMetrics | None) -> list[asyncio.Task[None]]:
    """The watcher's own metrics and heartbeat, beside the engine."""
    tasks = []
    if metrics is not None:
        from mlops_console.core.selfmetrics import publish_loop

        engine.on_probe = metrics.probed
        tasks.append(asyncio.ensure_future(publish_loop(metrics, engine)))
    if settings.watch.heartbeat_url:
        from mlops_console.core.heartbeat import heartbeat_loop

        def healthy() -> bool:
            # Only the watcher that probes and pages vouches for the fleet being watched.
            return engine.leader and engine.health().state in ("running", "degraded")

        tasks.append(
            asyncio.ensure_future(
                heartbeat_loop(
                    settings.watch.heartbeat_url,
                    settings.watch.heartbeat_interval,
                    settings.watch.heartbeat_timeout,
                    healthy,
                    metrics.heartbeat if metrics is not None else None,
                )
            )
        )
    return tasks


def _watch(
    settings: Settings, log: logging.Logger, early_stop: threading.Event, metrics: SelfMetrics | None = None
) -> int:
    from mlops_console.core.engine import Engine, EngineFailed
    from mlops_console.core.gc_tuning import freeze_when, settled
    from mlops_console.core.gc_tuning import tune as tune_gc

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
        engine = Engine(settings, store, settles_removed=True)
        tune_gc()
        log.info(
            "watching %d endpoints, %d notification channels, store %s",
            len(settings.endpoints),
            len(settings.notifications),
            settings.store.path,
            extra={"event": "start"},
        )
        extras = _extras(settings, engine, metrics)
        extras.append(asyncio.create_task(freeze_when(lambda: settled(engine))))
        try:
            await engine.run(stop)
        finally:
            for task in extras:
                task.cancel()
            await asyncio.gather(*extras, return_exceptions=True)
        log.info("stopped", extra={"event": "stop"})

    try:
        asyncio.run(main())
    except EngineFailed as exc:
        # Exit non-zero so the service manager (Restart=on-failure) starts a fresh watcher.
        log.critical("engine failed: %s", exc, extra={"event": "engine_failed"})
        return EXIT_FAILED
    return EXIT_OK
