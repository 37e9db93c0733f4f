"""`silence --endpoint GLOB --for D`: maintenance windows, listed and ended early from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_console.commands.alerts import _store, silence_duration
from mlops_console.commands.common import EXIT_OK, CommandError, bounded_text, positive_int
from mlops_console.commands.output import iso, local, print_json, table
from mlops_console.core.actor import os_user
from mlops_console.core.text import printable

if TYPE_CHECKING:
    from mlops_console.core.store import MaintenanceWindow


def window_json(window: MaintenanceWindow) -> dict[str, Any]:
    out = window.as_dict()
    for key in ("created_at", "ends_at", "ended_at"):
        out[key] = iso(out[key])
    out["running"] = window.running()
    return out


def describe(window: MaintenanceWindow) -> str:
    """One line: id, endpoints, until when, who and why (escaped)."""
    reason = f": {printable(window.reason)}" if window.reason else ""
    return (
        f"maintenance #{window.id} {printable(window.pattern)} until {local(window.ends_at)} "
        f"by {printable(window.created_by)}{reason}"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "silence",
        help="maintenance windows: no pages for matching endpoints for a while (--endpoint, --end, --list)",
    )
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--endpoint", metavar="GLOB", help='endpoints to quiet, a glob such as "iris-*"')
    what.add_argument("--end", type=positive_int("window id"), metavar="ID", help="end a window now")
    what.add_argument("--list", action="store_true", help="windows still running (with --all: every one)")
    parser.add_argument(
        "--for", dest="duration", type=silence_duration, help="with --endpoint: e.g. 2h; at most 30d"
    )
    parser.add_argument("--reason", type=bounded_text, help="at most 1000 characters")
    parser.add_argument("--by", type=bounded_text, default=None, help="who (default: your user name)")
    parser.add_argument("--all", action="store_true", help="with --list: ended windows too")
    parser.add_argument("--json", action="store_true")

    def run(args: argparse.Namespace) -> int:
        if args.endpoint is not None and args.duration is None:
            parser.error("--endpoint needs --for (e.g. --for 2h)")
        if args.endpoint is not None and not args.endpoint.strip():
            parser.error("argument --endpoint: the endpoint pattern is empty")
        if args.endpoint is not None and len(args.endpoint) > 1000:
            parser.error("argument --endpoint: at most 1000 characters")
        if args.endpoint is None and args.duration is not None:
            parser.error("--for goes with --endpoint")
        if args.list:
            return cmd_list(args)
        if args.end is not None:
            return cmd_end(args)
        return cmd_start(args)

    parser.set_defaults(func=run)


def cmd_start(args: argparse.Namespace) -> int:
    store = _store(args, read_only=False)
    window = store.start_maintenance(args.endpoint, args.duration, args.by or os_user(), args.reason)
    if args.json:
        print_json({"ok": True, "action": "maintenance", "window": window_json(window)})
    else:
        print(describe(window))
    return EXIT_OK


def cmd_end(args: argparse.Namespace) -> int:
    store = _store(args, read_only=False)
    try:
        window = store.end_maintenance(args.end, args.by or os_user(), args.reason)
    except KeyError:
        raise CommandError(f"no maintenance window with id {args.end}") from None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json({"ok": True, "action": "maintenance_end", "window": window_json(window)})
    else:
        print(f"maintenance #{window.id} {printable(window.pattern)} ended by {printable(window.ended_by)}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    import time

    store = _store(args, read_only=True)
    windows = store.maintenance_windows(None if args.all else time.time())
    if args.json:
        print_json([window_json(w) for w in windows])
        return EXIT_OK
    if not windows:
        print("no maintenance windows" if args.all else "no maintenance window running")
        return EXIT_OK
    rows = [
        [
            str(w.id),
            w.pattern,
            local(w.created_at),
            local(w.ends_at),
            w.created_by,
            w.ended_by or "-",
            w.reason or "",
        ]
        for w in windows
    ]
    print(table(["ID", "ENDPOINTS", "FROM", "UNTIL", "BY", "ENDED BY", "REASON"], rows))
    return EXIT_OK
