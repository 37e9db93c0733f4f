"""`replay FILE.csv --signal ...`: which alerts detection would have raised over a recorded series."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mlops_console.commands.common import EXIT_OK, EXIT_USAGE, config_option, settings_from
from mlops_console.core.detectors.signals import SIGNALS
from mlops_console.core.text import printable


def register(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser(
        "replay",
        help="run detection over a recorded timestamp,value CSV and list the alerts it would raise",
        description=(
            "Reads a CSV with the header `timestamp,value` (timestamps like 2014-04-10 00:05:00 or ISO "
            "8601, UTC unless they say otherwise; latency in seconds, throughput in req/s, error ratio "
            "as a share, optionally with a third column `requests`) and runs the rules of that signal "
            "over it, one row per poll, exactly as the engine would."
        ),
    )
    replay.add_argument("file", type=Path, metavar="FILE.csv")
    replay.add_argument("--signal", required=True, choices=SIGNALS, help="what the values are")
    config_option(replay)
    replay.add_argument("--json", action="store_true", help="a JSON array of {start, end, rule, severity}")
    replay.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from mlops_console.core.replay import SeriesError, read_series, replay, rules_for

    # Defaults unless a config is named: replay needs no watcher set up.
    explicit = getattr(args, "config", None) or os.environ.get("MLOPS_CONSOLE_CONFIG")
    settings = settings_from(args) if explicit else None
    try:
        series = read_series(args.file, args.signal)
    except SeriesError as exc:
        print(f"mlops-console: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    endpoint = args.file.stem  # what `[[rules]] endpoint` globs match, and what the alerts name
    specs = rules_for(args.signal, settings, endpoint=endpoint)
    if args.signal == "error_rate" and series.points[0].count is None:
        print(
            "mlops-console: no `requests` column: each row counts as 100 requests for the binomial test",
            file=sys.stderr,
        )
    episodes = replay(series.points, specs, interval=series.interval, settings=settings, endpoint=endpoint)
    if args.json:
        print(json.dumps([e.to_json() for e in episodes], indent=2))
        return EXIT_OK
    points = series.points
    print(
        f"{printable(args.file)}: {len(points)} values from {printable(points[0].label)} to "
        f"{printable(points[-1].label)}, every {_duration(series.interval)}; rules: "
        + ", ".join(f"{s.rule} ({s.detector})" for s in specs)
    )
    if not episodes:
        print("no alerts")
        return EXIT_OK
    rows = [("start", "end", "rule", "severity", "kind", "why it fired")]
    for e in episodes:
        rows.append(
            (
                printable(e.start.label),
                printable(e.end.label) if e.end else "(open)",
                e.rule,
                e.severity,
                (e.kind or "-").replace("_", " "),
                printable(e.detail),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5])
    print(f"{len(episodes)} alert{'s' if len(episodes) != 1 else ''}")
    return EXIT_OK


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
