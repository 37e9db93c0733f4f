"""`status`, `config check` and `notify test`: one-shots around the engine, the config and the pager."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_console.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNKNOWN,
    config_option,
    settings_from,
)
from mlops_console.commands.pipelines import pipeline_json, pipelines_table, verdict_lines
from mlops_console.config import ConfigError
from mlops_console.core import formatting
from mlops_console.core.limits import json_safe
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.text import printable

if TYPE_CHECKING:
    from mlops_console.core.snapshot import EngineHealth
    from mlops_console.core.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="probe every endpoint once and print its health")
    config_option(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    health = sub.add_parser(
        "health", help="is a watcher running on this store? (exit 0 yes, 1 no: for container health checks)"
    )
    config_option(health)
    health.add_argument("--json", action="store_true")
    health.set_defaults(func=cmd_health)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate a config file without running anything")
    check.add_argument("path", nargs="?", type=Path)
    check.set_defaults(func=cmd_config_check)

    notify = sub.add_parser("notify", help="notification tools")
    notify_sub = notify.add_subparsers(metavar="ACTION", required=True)
    test = notify_sub.add_parser("test", help="send a test message to every configured URL")
    config_option(test)
    test.set_defaults(func=cmd_notify_test)


def status_table(endpoints: Sequence[EndpointSnapshot]) -> str:
    rows: list[tuple[str, ...]] = [
        ("ENDPOINT", "HEALTH", "P50", "P95", "P99", "REQ/S", "ERRORS", "VERSION", "DETAIL")
    ]
    for e in endpoints:
        version = e.served_version or "-"
        if e.version_mismatch:
            version += f" (want {e.expected_version})"
        cells = (
            e.name,
            e.health,
            formatting.latency(e.p50, none="-"),
            formatting.latency(e.p95, none="-"),
            formatting.latency(e.p99, none="-"),
            formatting.rate(e.rps, none="unknown"),
            formatting.ratio(e.error_ratio, none="-"),
            version,
            (f"stale: {e.stale}" if e.stale else (e.last_error or ""))[:120],
        )
        # Names, versions and error texts come from endpoints and the registry: shown escaped.
        rows.append(tuple(printable(cell) for cell in cells))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
    ).rstrip()


def quality_lines(endpoints: Sequence[EndpointSnapshot]) -> list[str]:
    """One line per endpoint with an inference log: drift verdict, broken inputs, invalid and stuck
    predictions of its latest window (names from the log and the registry escaped)."""
    lines = []
    for e in endpoints:
        q = e.quality
        if q is None:
            continue
        who = f"{e.name} v{q.version}" if q.version else e.name
        if q.error:
            lines.append(f"quality {printable(who)}: {printable(q.error)}")
            continue
        if q.drift_share is None:
            drift = f"no drift verdict yet ({printable(q.reference or 'no reference')})"
        else:
            judged = sum(1 for f in q.features if f.verdict in ("drift", "ok"))
            names = f": {printable(', '.join(q.drifted))}" if q.drifted else ""
            drift = (
                f"{'DRIFT' if q.dataset_drift else 'no drift'}, {len(q.drifted)} of {judged} features{names}"
            )
        lines.append(
            f"quality {printable(who)}: {drift}; {q.rows} rows in the window; inputs breaking the signature "
            f"{q.broken_rows}; invalid predictions {q.invalid_rows}; stuck {'yes' if q.stuck else 'no'}"
        )
    return lines


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
        # One list, as before pipelines: each entry's `kind` tells an endpoint from a pipeline.
        entries = [{"kind": "endpoint", **e.to_dict()} for e in snapshot.endpoints]
        entries += [pipeline_json(p) for p in snapshot.pipelines]
        print(json.dumps(json_safe(entries), indent=2))
    else:
        print(status_table(snapshot.endpoints))
        quality = quality_lines(snapshot.endpoints)
        if quality:
            print("\n" + "\n".join(quality))
        if snapshot.pipelines:
            print("\n" + pipelines_table(snapshot.pipelines, snapshot.at))
            lines = verdict_lines(snapshot.pipelines)
            if lines:
                print("\n".join(lines))
            if snapshot.pipelines_state != "ok":
                print(f"pipelines: {printable(snapshot.pipelines_state)}")
        if snapshot.prometheus != "not configured":
            print(f"\nprometheus: {printable(snapshot.prometheus)}")
        if watcher is not None:
            reason = f": {watcher.reason}" if watcher.reason else ""
            print(f"\nwatcher: {watcher.state}{reason}")
    stuck = watcher is not None and watcher.state in ("stalled", "failed")
    if stuck or any(e.health == "down" for e in snapshot.endpoints):
        return EXIT_FAILED
    return EXIT_UNKNOWN if any(e.health == "unknown" for e in snapshot.endpoints) else EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    """The watcher as the store shows it, without probing anything: cheap enough for a health check
    every few seconds. Degraded still watches (and says why); stalled, failed or absent does not."""
    from mlops_console.core.store import Store

    settings = settings_from(args)
    health = _watcher_health(Store(settings.store.path, read_only=True, create=False))
    state = health.state if health is not None else "absent"
    reason = health.reason if health is not None else "no watcher holds the store's lease"
    healthy = state in ("running", "degraded")
    if args.json:
        print(json.dumps({"healthy": healthy, "state": state, "reason": reason}))
    else:
        print(f"watcher: {state}" + (f": {printable(reason)}" if reason else ""))
    return EXIT_OK if healthy else EXIT_FAILED


def _watcher_health(store: Store) -> EngineHealth | None:
    """The watcher holding the store's lease, as it reports itself (None: no watcher, or unreadable)."""
    import sqlite3

    from mlops_console.core.watcher_health import watcher_health

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
