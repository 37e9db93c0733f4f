"""Run detection over a recorded series and say which alerts it would have raised, and when.

Every value goes through the rule's `SignalEvaluator` (detector plus persistence), the judgement
becomes the rule's `Condition`, and the engine's own `AlertBook` decides pending, firing and resolved,
on a clock that reads the series' timestamps. `condition_for` is the step the engine takes too, so a
replay pages exactly when the engine would have.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from mlops_console.config import Settings
from mlops_console.core.alerts import AlertBook
from mlops_console.core.conditions import params_for
from mlops_console.core.conditions.detected import condition_for, rule_spec
from mlops_console.core.detectors.evaluator import SignalEvaluator
from mlops_console.core.detectors.signals import RULE_SIGNALS, RuleSpec


@dataclass(frozen=True)
class Point:
    at: float
    value: float | None
    count: float | None = None
    label: str = ""
    """The timestamp exactly as written in the source."""


@dataclass(frozen=True)
class Series:
    points: tuple[Point, ...]
    interval: float
    """The usual spacing of the points (median of the gaps), in seconds."""


@dataclass
class Episode:
    rule: str
    severity: str
    start: Point
    end: Point | None = None
    """None while the alert is still open at the end of the series."""
    kind: str | None = None
    detail: str = ""
    """What the condition said when the alert fired."""
    peak: float | None = None
    """The most anomalous score while the alert was open."""
    closing: str = ""
    """What the condition said when it resolved (e.g. a level shift accepted as the new normal)."""

    def to_json(self) -> dict[str, str | None]:
        return {
            "start": self.start.label,
            "end": self.end.label if self.end else None,
            "rule": self.rule,
            "severity": self.severity,
        }


class SeriesError(ValueError):
    """A file that is not a `timestamp,value` series; says where and what."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")


HEADER = ["timestamp", "value"]
COUNT_COLUMN = "requests"


def parse_timestamp(text: str) -> float:
    """Epoch seconds from `2014-04-10 00:05:00` or ISO 8601; a time without a zone is UTC."""
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_series(path: Path, signal: str) -> Series:
    """A CSV with the header `timestamp,value` (and, for error ratios, optionally `requests`)."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SeriesError(path, None, f"cannot read: {exc.strerror or exc}") from None
    points: list[Point] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise SeriesError(path, None, "empty file (expected a header line `timestamp,value`)")
            columns = [h.strip().lower() for h in header]
            with_count = columns == [*HEADER, COUNT_COLUMN]
            if columns != HEADER and not with_count:
                raise SeriesError(
                    path, 1, f"expected the header `timestamp,value`, got `{','.join(header)[:80]}`"
                )
            if with_count and signal != "error_rate":
                raise SeriesError(path, 1, "a `requests` column only goes with --signal error_rate")
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                points.append(_point(path, reader.line_num, row, len(columns), signal, points))
        except UnicodeDecodeError:
            raise SeriesError(path, None, "not a UTF-8 text file") from None
        except csv.Error as exc:
            raise SeriesError(path, reader.line_num, f"not valid CSV: {exc}") from None
    if not points:
        raise SeriesError(path, None, "no data rows after the header")
    gaps = [b.at - a.at for a, b in itertools.pairwise(points)]
    return Series(tuple(points), median(gaps) if gaps else 0.0)


def _point(path: Path, line: int, row: list[str], width: int, signal: str, before: list[Point]) -> Point:
    if len(row) != width:
        raise SeriesError(path, line, f"expected {width} columns, got {len(row)}")
    label = row[0].strip()
    try:
        at = parse_timestamp(label)
    except ValueError:
        shown = label if len(label) <= 40 else label[:40] + "..."
        raise SeriesError(
            path, line, f"bad timestamp {shown!r} (expected e.g. 2014-04-10 00:05:00 or ISO 8601)"
        ) from None
    if before and at <= before[-1].at:
        raise SeriesError(path, line, f"timestamp {label} is not after the previous one ({before[-1].label})")
    value = _number(path, line, row[1], "value")
    if value < 0 or (signal == "error_rate" and value > 1):
        bounds = "between 0 and 1 (a share)" if signal == "error_rate" else "0 or more"
        raise SeriesError(path, line, f"value {row[1].strip()} out of range: expected {bounds}")
    count = _number(path, line, row[2], "requests") if width == 3 else None
    if count is not None and count < 0:
        raise SeriesError(path, line, f"requests {row[2].strip()} is negative")
    return Point(at, value, count, label)


def _number(path: Path, line: int, text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text.strip() if len(text.strip()) <= 40 else text.strip()[:40] + "..."
        raise SeriesError(path, line, f"{column} {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise SeriesError(path, line, f"{column} {text.strip()!r} is not a finite number")
    return value


def rules_for(signal: str, settings: Settings | None = None, endpoint: str = "") -> list[RuleSpec]:
    """The signal's enabled rules for `endpoint`, resolved from the config as the engine resolves them."""
    settings = settings or Settings()
    out: list[RuleSpec] = []
    for rule, watched in RULE_SIGNALS.items():
        params = params_for(settings, rule, endpoint)
        if watched == signal and params.enabled:
            out.append(rule_spec(rule, params))
    return out


def replay(
    points: Iterable[Point],
    specs: Sequence[RuleSpec],
    *,
    interval: float,
    settings: Settings | None = None,
    endpoint: str = "replay",
) -> list[Episode]:
    """The alert episodes `specs` would have raised over `points`, in order of their start."""
    now = [0.0]
    book = AlertBook(settings or Settings(), clock=lambda: now[0])
    evaluators: list[tuple[RuleSpec, SignalEvaluator]] = [(spec, spec.evaluator()) for spec in specs]
    open_: dict[str, Episode] = {}
    episodes: list[Episode] = []
    for point in points:
        now[0] = point.at
        for spec, evaluator in evaluators:
            judgement = evaluator.update(point.at, point.value, point.count)
            episode = open_.get(spec.rule)
            # The text is only read when an alert fires or resolves: skip it on quiet polls.
            needed = bool(judgement.active) or episode is not None
            condition = condition_for(spec, endpoint, judgement, interval=interval, detail=needed)
            if episode is not None and judgement.verdict.score is not None and judgement.active:
                episode.peak = max(episode.peak or -math.inf, judgement.verdict.score)
            for write in book.evaluate(condition):
                if write.kind in ("firing", "flapping"):
                    episode = Episode(
                        spec.rule,
                        spec.severity,
                        point,
                        kind=judgement.verdict.kind,
                        detail=condition.detail,
                        peak=judgement.verdict.score,
                    )
                    open_[spec.rule] = episode
                    episodes.append(episode)
                elif write.kind == "resolved" and spec.rule in open_:
                    closed = open_.pop(spec.rule)
                    closed.end, closed.closing = point, condition.detail
    return episodes
