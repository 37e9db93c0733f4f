"""`alerts list|show|ack|silence`: read and act on the alert store from the command line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_console.commands.common import EXIT_OK, CommandError, bounded_text, positive_int, settings_from
from mlops_console.config import parse_duration
from mlops_console.core.actor import os_user
from mlops_console.core.alerts.messages import runbook_of
from mlops_console.core.conditions.evidence import explain_evidence
from mlops_console.core.limits import check_silence, displayable_epoch, json_safe
from mlops_console.core.text import printable

if TYPE_CHECKING:
    from mlops_console.config import Settings
    from mlops_console.core.store import Alert, Store

JSON_FIELDS = (
    "id",
    "endpoint",
    "rule",
    "severity",
    "state",
    "display_state",
    "summary",
    "model",
    "version",
    "value",
    "threshold",
    "started_at",
    "resolved_at",
    "acked_by",
    "acked_at",
    "ack_note",
    "silenced_until",
    "flapping",
    "fingerprint",
)
TIME_FIELDS = ("started_at", "resolved_at", "acked_at", "silenced_until", "at")


def iso(at: float | None) -> str | None:
    # Clamped: rows written before silences were bounded may end in the year 2.7 billion, or never.
    if at is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(displayable_epoch(at)))


def _local(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(displayable_epoch(at)))


def alert_json(alert: Alert) -> dict[str, Any]:
    out = {k: getattr(alert, k) for k in JSON_FIELDS}
    for key in TIME_FIELDS:
        if key in out:
            out[key] = iso(out[key])
    out["flapping"] = bool(out["flapping"])
    return json_safe(out)


def _store(args: argparse.Namespace, *, read_only: bool, settings: Settings | None = None) -> Store:
    """Reads open the file read-only and never create it; writes wait `store.lock_timeout` for a lock."""
    from mlops_console.core.store import Store

    store = (settings or settings_from(args)).store
    return Store(store.path, read_only=read_only, create=False, lock_timeout=store.lock_timeout)


def silence_duration(text: str) -> float:
    """An argparse type: a duration from `15m` up to 30 days."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    try:
        return check_silence(seconds)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, got {text[:40]!r}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser("alerts", help="list, inspect, acknowledge and silence alerts")
    alerts.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    actions = alerts.add_subparsers(metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="alerts, newest first")
    listing.add_argument(
        "--state", default="open", choices=("firing", "acknowledged", "silenced", "resolved", "open", "all")
    )
    listing.add_argument("--endpoint")
    listing.add_argument("--limit", type=positive_int("--limit"), default=100)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one alert and its timeline")
    show.add_argument("id", type=positive_int("alert id"))
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    ack = actions.add_parser("ack", help="acknowledge: stop reminders, record who is on it")
    ack.add_argument("id", type=positive_int("alert id"))
    ack.add_argument(
        "--by", type=bounded_text, default=None, help="who acknowledges (default: your user name)"
    )
    ack.add_argument("--note", type=bounded_text, help="at most 1000 characters")
    ack.add_argument("--json", action="store_true", help="print the acknowledged alert as JSON")
    ack.set_defaults(func=cmd_ack)

    silence = actions.add_parser(
        "silence", help="no notifications for this alert (and recurrences) for a while"
    )
    silence.add_argument("id", type=positive_int("alert id"))
    silence.add_argument(
        "--for",
        dest="duration",
        type=silence_duration,
        required=True,
        help="e.g. 15m, 1h, 4h, 24h; at most 30d",
    )
    silence.add_argument("--by", type=bounded_text, default=None)
    silence.add_argument("--note", type=bounded_text, help="at most 1000 characters")
    silence.add_argument("--json", action="store_true", help="print the silenced alert as JSON")
    silence.set_defaults(func=cmd_silence)


def cmd_list(args: argparse.Namespace) -> int:
    from mlops_console.commands.maintenance import describe

    store = _store(args, read_only=True)
    rows = store.list_alerts(args.state, limit=args.limit, endpoint=args.endpoint)
    # Open alerts of endpoints under a running maintenance window: recorded, shown, not paged.
    covered = {r.id: w.id for r in rows if r.state != "resolved" and (w := store.in_maintenance(r.endpoint))}
    if args.json:
        print(json.dumps([alert_json(r) | {"maintenance": covered.get(r.id)} for r in rows], indent=2))
        return EXIT_OK
    for window in store.maintenance_windows(time.time()):
        print(describe(window))
    if not rows:
        print(f"no {args.state} alerts" if args.state != "all" else "no alerts")
        return EXIT_OK
    table: list[tuple[str, ...]] = [
        ("ID", "STATE", "SEVERITY", "ENDPOINT", "RULE", "STARTED", "RESOLVED", "ACKED BY")
    ]
    for r in rows:
        state = r.display_state + (" (flapping)" if r.flapping else "")
        state += f" (maintenance #{covered[r.id]})" if r.id in covered else ""
        cells = (
            str(r.id),
            state,
            r.severity,
            r.endpoint,
            r.rule,
            _local(r.started_at),
            _local(r.resolved_at),
            r.acked_by or "-",
        )
        table.append(tuple(printable(cell) for cell in cells))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _get(store: Store, alert_id: int) -> Alert:
    try:
        return store.get_alert(alert_id)
    except KeyError:
        raise CommandError(f"no alert with id {alert_id}") from None


def cmd_show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = _store(args, read_only=True, settings=settings)
    alert = _get(store, args.id)
    events = store.events(args.id)
    # As stored when it fired (so it matches its pages); the config's for alerts stored before that.
    runbook = runbook_of(settings, alert)
    if args.json:
        data = alert_json(alert)
        data["runbook"] = runbook
        data["events"] = json_safe([{**e.as_dict(), "at": iso(e.at)} for e in events])
        print(json.dumps(data, indent=2))
        return EXIT_OK
    # Summaries quote endpoint error bodies; actors and notes are whatever `--by`/`--note` said.
    p = printable
    print(
        f"alert #{alert.id}  {p(alert.display_state)}  {p(alert.severity)}  "
        f"{p(alert.endpoint)}  {p(alert.rule)}"
    )
    print(f"  {p(alert.summary)}")
    if alert.model:
        print(f"  model {p(alert.model)}" + (f" v{p(alert.version)}" if alert.version else ""))
    if runbook:
        print(f"  runbook {p(runbook)}")
    print("timeline:")
    for event in events:
        who = f" by {p(event.actor)}" if event.actor else ""
        note = f": {p(event.note)}" if event.note else ""
        print(f"  {_local(event.at)}  {p(event.kind)}{who}{note}")
        evidence = (event.data or {}).get("evidence")
        if event.kind == "fired" and isinstance(evidence, dict):
            print(f"    why: {p(explain_evidence(evidence))}")
    return EXIT_OK


def cmd_ack(args: argparse.Namespace) -> int:
    store = _store(args, read_only=False)
    _get(store, args.id)
    try:
        alert = store.acknowledge(args.id, args.by or os_user(), args.note)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps({"ok": True, "action": "ack", "alert": alert_json(alert)}, indent=2))
    else:
        print(f"alert #{alert.id} acknowledged by {printable(alert.acked_by)}")
    return EXIT_OK


def cmd_silence(args: argparse.Namespace) -> int:
    store = _store(args, read_only=False)
    _get(store, args.id)
    alert = store.silence(args.id, args.duration, args.by or os_user(), args.note)
    if args.json:
        print(json.dumps({"ok": True, "action": "silence", "alert": alert_json(alert)}, indent=2))
    else:
        print(f"alert #{alert.id} silenced until {_local(alert.silenced_until)}")
    return EXIT_OK
