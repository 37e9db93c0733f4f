"""`report`: the shift report over the last hours or between two times, as text, Markdown or JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

from mlops_console.commands.common import EXIT_OK, EXIT_USAGE, config_option, positive_duration, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="the shift report: pages, time to acknowledge and resolve, open alerts, changes, silences",
        description=(
            "Summarises a span of the alert store and audit trail for a handoff. Times for --from and "
            "--to are ISO 8601 (2026-11-28T08:00, UTC unless they say otherwise)."
        ),
    )
    report.add_argument(
        "--since", type=positive_duration("12h"), help="the last DURATION, e.g. 12h (the default)"
    )
    report.add_argument("--from", dest="start", type=_instant, metavar="T", help="start of the span")
    report.add_argument("--to", dest="end", type=_instant, metavar="T", help="end of the span (default: now)")
    report.add_argument("--format", choices=("text", "md", "json"), default="text")
    config_option(report)
    report.set_defaults(func=cmd_report)


def _instant(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-11-28T08:00, got {text[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _usage(message: str) -> int:
    print(f"mlops-console report: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_report(args: argparse.Namespace) -> int:
    from mlops_console.core.report import build_report, render_markdown, render_text, report_json
    from mlops_console.core.store import Store

    now = time.time()
    if args.since is not None and (args.start is not None or args.end is not None):
        return _usage("give --since or --from/--to, not both")
    if args.end is not None and args.start is None:
        return _usage("--to needs --from")
    if args.start is not None:
        start, end = args.start, args.end if args.end is not None else now
        if start >= end:
            return _usage("--from must be before --to")
    else:
        end = now
        start = end - (args.since if args.since is not None else 12 * 3600.0)
    settings = settings_from(args).store
    store = Store(settings.path, read_only=True, create=False, lock_timeout=settings.lock_timeout)
    report = build_report(store, start, end)
    if args.format == "json":
        print(json.dumps(report_json(report), indent=2))
    elif args.format == "md":
        print(render_markdown(report), end="")
    else:
        print(render_text(report), end="")
    return EXIT_OK
