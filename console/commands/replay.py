"""`replay FILE.csv --signal ...`: which alerts detection would have raised over a recorded series."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_console.commands.common import EXIT_OK, EXIT_USAGE, config_option, positive_duration, settings_from
from mlops_console.core.detectors.signals import SIGNALS
from mlops_console.core.text import printable

if TYPE_CHECKING:
    from mlops_console.core.replay import Episode


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
    replay.add_argument("file", type=Path, metavar="FILE.csv", nargs="?")
    replay.add_argument(
        "--signal", choices=SIGNALS, help="what the values are (with --endpoint: only this signal)"
    )
    replay.add_argument(
        "--endpoint", metavar="NAME", help="backtest: run the configured rules over this endpoint's history"
    )
    replay.add_argument(
        "--since",
        type=positive_duration("7d"),
        default=7 * 86400.0,
        help="with --endpoint: how far back (default 7d)",
    )
    config_option(replay)
    replay.add_argument("--json", action="store_true", help="a JSON array of {start, end, rule, severity}")
    replay.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from mlops_console.core.replay import SeriesError, read_series, replay, rules_for

    if (args.file is None) == (args.endpoint is None):
        print("mlops-console replay: give FILE.csv or --endpoint NAME (one of them)", file=sys.stderr)
        return EXIT_USAGE
    if args.endpoint is not None:
        return _backtest(args)
    if args.signal is None:
        print("mlops-console replay: FILE.csv needs --signal latency|throughput|error_rate", file=sys.stderr)
        return EXIT_USAGE

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
    return _print_episodes(episodes)


def _print_episodes(episodes: list[Episode]) -> int:
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


def _backtest(args: argparse.Namespace) -> int:
    """`replay --endpoint NAME --since 7d`: the configured rules over the endpoint's stored history."""
    import time

    from mlops_console.core.backtest import history_series
    from mlops_console.core.replay import replay, rules_for
    from mlops_console.core.store import Store

    settings = settings_from(args)
    known = [e.name for e in settings.endpoints]
    if args.endpoint not in known:
        shown = ", ".join(printable(n) for n in known) or "none"
        print(
            f"mlops-console replay: --endpoint: {printable(args.endpoint)!r} is not in the config "
            f"(endpoints: {shown})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = Store(settings.store.path, read_only=True, create=False, lock_timeout=settings.store.lock_timeout)
    rollups = store.rollups(args.endpoint, time.time() - args.since)
    if not rollups:
        print(
            f"mlops-console replay: no history for {printable(args.endpoint)!r} in the last "
            f"{_duration(args.since)} in {printable(str(settings.store.path))} (the watcher writes one "
            "row a minute while it probes)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    signals = [args.signal] if args.signal else list(SIGNALS)
    episodes = []
    summary = []
    for signal in signals:
        series = history_series(rollups, signal)
        specs = rules_for(signal, settings, endpoint=args.endpoint)
        judged = sum(1 for p in series.points if p.value is not None)
        summary.append(f"{signal} {judged} values: " + ", ".join(f"{s.rule} ({s.detector})" for s in specs))
        episodes += replay(
            series.points, specs, interval=series.interval, settings=settings, endpoint=args.endpoint
        )
    episodes.sort(key=lambda e: (e.start.at, e.rule))
    if args.json:
        print(json.dumps([e.to_json() for e in episodes], indent=2))
        return EXIT_OK
    first, last = rollups[0].minute * 60.0, rollups[-1].minute * 60.0
    print(
        f"{printable(args.endpoint)}: {len(rollups)} stored minutes over {_duration(last - first + 60.0)}; "
        + "; ".join(summary)
    )
    return _print_episodes(episodes)


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
