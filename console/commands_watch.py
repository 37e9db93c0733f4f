"""`watch`, `status`, `config check` and `notify test`: the headless engine and its one-shots."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_console.cli import EXIT_FAILED, EXIT_OK, settings_from
from mlops_console.config import ConfigError, Settings
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.text import printable
from mlops_console.logs import TextLines, configure

if TYPE_CHECKING:
    from mlops_console.core.snapshot import EngineHealth
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


def _config_option(parser: argparse.ArgumentParser) -> None:
    # Accepted after the command too; SUPPRESS keeps the global `--config` when this one is absent.
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")


def register(sub: argparse._SubParsersAction) -> None:
    watch = sub.add_parser("watch", help="probe, detect and notify headless until SIGINT/SIGTERM")
    _config_option(watch)
    watch.add_argument("--log-format", choices=("text", "json"), default="text")
    watch.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    watch.set_defaults(func=cmd_watch)

    status = sub.add_parser("status", help="probe every endpoint once and print its health")
    _config_option(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate a config file without running anything")
    check.add_argument("path", nargs="?", type=Path)
    check.set_defaults(func=cmd_config_check)

    notify = sub.add_parser("notify", help="notification tools")
    notify_sub = notify.add_subparsers(metavar="ACTION", required=True)
    test = notify_sub.add_parser("test", help="send a test message to every configured URL")
    _config_option(test)
    test.set_defaults(func=cmd_notify_test)


def open_store_waiting(settings: Settings, log: logging.Logger) -> Store | None:
    """The store, created or migrated if need be and ready to write.

    While another process holds its lock, wait and say so every `store.lock_timeout` (at least 1 s);
    None if SIGINT/SIGTERM came first. Any other problem (corrupt, not writable...) raises StoreError.
    """
    from mlops_console.core.store import Store, StoreError

    path, remind_every = settings.store.path, max(settings.store.lock_timeout, 1.0)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    waiting_since: float | None = None
    reminded_at = 0.0
    try:
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
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_watch(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    settings.require_paging()
    setup_logging(args.log_format, args.log_level)
    from mlops_console.core.engine import Engine

    log = logging.getLogger("mlops_console.watch")
    store = open_store_waiting(settings, log)
    if store is None:
        log.info("stopped while waiting for the store", extra={"event": "stop"})
        return EXIT_OK

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
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

    from mlops_console.core.engine import EngineFailed

    try:
        asyncio.run(main())
    except EngineFailed as exc:
        # Exit non-zero so the service manager (Restart=on-failure) starts a fresh watcher.
        log.critical("engine failed: %s", exc, extra={"event": "engine_failed"})
        return EXIT_FAILED
    return EXIT_OK


def _fmt_latency(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}ms"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _fmt_rps(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f}/s"


def status_table(endpoints: list[EndpointSnapshot]) -> str:
    rows = [("ENDPOINT", "HEALTH", "P50", "P95", "P99", "REQ/S", "ERRORS", "VERSION", "DETAIL")]
    for e in endpoints:
        version = e.served_version or "-"
        if e.version_mismatch:
            version += f" (want {e.expected_version})"
        cells = (
            e.name,
            e.health,
            _fmt_latency(e.p50),
            _fmt_latency(e.p95),
            _fmt_latency(e.p99),
            _fmt_rps(e.rps),
            _fmt_ratio(e.error_ratio),
            version,
            (e.last_error or "")[:80],
        )
        # Names, versions and error texts come from endpoints and the registry: shown escaped.
        rows.append(tuple(printable(cell) for cell in cells))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
    ).rstrip()


def cmd_status(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    from mlops_console.core.engine import Engine
    from mlops_console.core.store import Store

    # Probing needs no store: opened read-only and lazily, a locked, corrupt or missing one never matters.
    store = Store(settings.store.path, read_only=True)
    engine = Engine(settings, store)
    snapshot = asyncio.run(engine.probe_once())
    watcher = _watcher_health(store)
    if args.json:
        print(json.dumps([e.to_dict() for e in snapshot.endpoints], indent=2))
    else:
        print(status_table(snapshot.endpoints))
        if watcher is not None:
            reason = f": {watcher.reason}" if watcher.reason else ""
            print(f"\nwatcher: {watcher.state}{reason}")
    stuck = watcher is not None and watcher.state in ("stalled", "failed")
    return EXIT_OK if all(e.health != "down" for e in snapshot.endpoints) and not stuck else EXIT_FAILED


def _watcher_health(store: Store) -> EngineHealth | None:
    """The watcher holding the store's lease, as it reports itself (None: no watcher, or unreadable)."""
    import sqlite3

    from mlops_console.core.engine import watcher_health

    try:
        return watcher_health(store)
    except sqlite3.Error:
        return None


def cmd_config_check(args: argparse.Namespace) -> int:
    from mlops_console.config import load_settings
    from mlops_console.core.adapters import adapter_names

    path = args.path or getattr(args, "config", None)
    settings = load_settings(path, known_adapters=adapter_names())
    where = settings.source
    print(
        f"{where}: ok ({len(settings.endpoints)} endpoints, {len(settings.notifications)} notification "
        f"channels, {len(settings.rules)} rule overrides)"
    )
    return EXIT_OK


def cmd_notify_test(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if not settings.notifications:
        raise ConfigError(settings.source, ["notifications: no [[notifications]] configured"])
    settings.require_paging()
    from mlops_console.core.notifier import deliver, redact

    failed = 0
    for notification in settings.notifications:
        result = deliver(
            notification,
            "mlops-console test notification",
            "If you can read this, mlops-console can page you here.",
            "info",
            "test",
            settings.notify.timeout,
        )
        target = redact(notification.template)
        if result.ok:
            print(f"ok      {printable(target)} ({result.duration_ms:.0f} ms)")
        else:
            failed += 1
            print(f"FAILED  {printable(target)}: {printable(result.error)}")
    return EXIT_OK if not failed else EXIT_FAILED
