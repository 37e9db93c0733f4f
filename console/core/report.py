"""The shift report: what paged, how fast people answered, what is still open, what changed.

`build_report` reads the store over one span of time and returns a frozen `ShiftReport`; `render_text`,
`render_markdown` and `report_json` write it for a terminal, a handoff document or a script. Every
figure is derived from stored rows, so a report over the same span says the same thing twice.

Definitions (the README's "Shift report" says the same):
- an alert belongs to the shift when it fired in [start, end); it *paged* when its timeline has a
  `notified` event;
- time to acknowledge: from firing to its first `acknowledged` event, for the shift's alerts
  acknowledged by `end`; time to resolve: from firing to resolving, for those resolved by `end`;
- still open: fired before `end` and not resolved by then, whenever it fired; held by whoever
  acknowledged it last;
- a rule *flapped* when one of its alerts was marked flapping, or one fingerprint fired FLAP_FIRES
  times within FLAP_WINDOW.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops_console.core.alerts.timing import FLAP_FIRES, FLAP_WINDOW
from mlops_console.core.limits import displayable_epoch, json_safe
from mlops_console.core.text import printable

if TYPE_CHECKING:
    from mlops_console.core.store import Alert, Store

CHANGE_ACTIONS = ("promote", "rollback", "deploy")
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Durations:
    """How long something took over `count` alerts: the median and the worst, in seconds."""

    count: int
    median: float | None
    worst: float | None


@dataclass(frozen=True, slots=True)
class Tally:
    """Alerts of one severity, rule or endpoint fired during the shift, and how many of them paged."""

    name: str
    alerts: int
    paged: int
    flapped: bool = False


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    endpoint: str
    rule: str
    severity: str
    state: str
    """firing, acknowledged or silenced, as of the report's end."""
    started_at: float
    held_by: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One promote, rollback or deploy from the audit trail."""

    at: float
    action: str
    actor: str
    model: str | None
    alias: str | None
    from_version: str | None
    to_version: str | None
    result: str
    endpoint: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Silence:
    alert_id: int
    endpoint: str
    rule: str
    until: float
    by: str | None


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A maintenance window still running at the report's end."""

    window: int
    endpoints: str
    until: float
    by: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class ShiftReport:
    start: float
    end: float
    fired: int
    paged: int
    pages_sent: int
    """`notified` events in the span: first pages, reminders and resolves, per channel."""
    by_severity: tuple[Tally, ...]
    by_rule: tuple[Tally, ...]
    """Noisiest first (most alerts, then name)."""
    by_endpoint: tuple[Tally, ...]
    acknowledge: Durations
    resolve: Durations
    open_alerts: tuple[OpenAlert, ...]
    changes: tuple[Change, ...]
    silences: tuple[Silence, ...]
    maintenance: tuple[Maintenance, ...] = ()


def build_report(store: Store, start: float, end: float) -> ShiftReport:
    """The report over [start, end), read from the store (reads only)."""
    alerts = store.alerts_in_span(start, end)
    fired = [a for a in alerts if a.started_at >= start]
    events = store.events_of([a.id for a in alerts], ("notified", "acknowledged", "flapping"))
    notified: set[int] = set()
    first_ack: dict[int, float] = {}
    holder: dict[int, str | None] = {}
    flapping: set[int] = set()
    pages_sent = 0
    for event in events:
        if event.at >= end:
            continue
        if event.kind == "notified":
            notified.add(event.alert_id)
            pages_sent += start <= event.at
        elif event.kind == "acknowledged":
            first_ack.setdefault(event.alert_id, event.at)
            holder[event.alert_id] = event.actor
        else:
            flapping.add(event.alert_id)
    flapped_rules = _flapped_rules(fired, flapping)

    def tallies(key: str) -> list[Tally]:
        counts: Counter[str] = Counter()
        paged: Counter[str] = Counter()
        for alert in fired:
            name = getattr(alert, key)
            counts[name] += 1
            paged[name] += alert.id in notified
        return [
            Tally(name, n, paged[name], key == "rule" and name in flapped_rules) for name, n in counts.items()
        ]

    by_severity = sorted(tallies("severity"), key=lambda t: (_SEVERITY_ORDER.get(t.name, 9), t.name))
    noisiest = lambda t: (-t.alerts, t.name)  # noqa: E731
    open_alerts = tuple(
        OpenAlert(
            id=a.id,
            endpoint=a.endpoint,
            rule=a.rule,
            severity=a.severity,
            state=_state_at(a, end, a.id in holder),
            started_at=a.started_at,
            held_by=holder.get(a.id),
        )
        for a in alerts
        if a.resolved_at is None or a.resolved_at >= end
    )
    changes = tuple(
        Change(
            at=row.at,
            action=row.action,
            actor=row.actor,
            model=row.model,
            alias=row.alias,
            from_version=row.from_version,
            to_version=row.to_version,
            result=row.result,
            endpoint=row.endpoint,
            reason=row.reason,
        )
        for row in store.audit_in_span(start, end, CHANGE_ACTIONS)
    )
    silences = tuple(
        Silence(
            alert_id=row["id"],
            endpoint=row["endpoint"],
            rule=row["rule"],
            until=row["silenced_until"],
            by=row["silenced_by"],
        )
        for row in store.silences_running(end)
    )
    maintenance = tuple(
        Maintenance(window=w.id, endpoints=w.pattern, until=w.ends_at, by=w.created_by, reason=w.reason)
        for w in store.maintenance_windows(end)
    )
    return ShiftReport(
        start=start,
        end=end,
        fired=len(fired),
        paged=sum(a.id in notified for a in fired),
        pages_sent=pages_sent,
        by_severity=tuple(by_severity),
        by_rule=tuple(sorted(tallies("rule"), key=noisiest)),
        by_endpoint=tuple(sorted(tallies("endpoint"), key=noisiest)),
        acknowledge=_durations([first_ack[a.id] - a.started_at for a in fired if a.id in first_ack]),
        resolve=_durations(
            [a.resolved_at - a.started_at for a in fired if a.resolved_at is not None and a.resolved_at < end]
        ),
        open_alerts=open_alerts,
        changes=changes,
        silences=silences,
        maintenance=maintenance,
    )


def _durations(values: list[float]) -> Durations:
    if not values:
        return Durations(0, None, None)
    return Durations(len(values), statistics.median(values), max(values))


def _state_at(alert: Alert, end: float, acknowledged: bool) -> str:
    if alert.silenced_until is not None and alert.silenced_until > end:
        return "silenced"
    return "acknowledged" if acknowledged else "firing"


def _flapped_rules(fired: list[Alert], flapping: set[int]) -> set[str]:
    rules = {a.rule for a in fired if a.flapping or a.id in flapping}
    starts: dict[tuple[str, str], list[float]] = defaultdict(list)
    for alert in fired:
        starts[(alert.rule, alert.fingerprint)].append(alert.started_at)
    for (rule, _), times in starts.items():
        times.sort()
        for i in range(len(times) - FLAP_FIRES + 1):
            if times[i + FLAP_FIRES - 1] - times[i] <= FLAP_WINDOW:
                rules.add(rule)
                break
    return rules


# -- writing it -------------------------------------------------------------------------------------------
def utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(displayable_epoch(at)))


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(displayable_epoch(at)))


def span(seconds: float | None) -> str:
    """`45s`, `4m 30s`, `2h 05m`, `1d 3h`: exact enough to compare shifts, short enough to read."""
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


_MD_SPECIAL = set("\\`*_[]<|~&#")


def md(value: object) -> str:
    """Untrusted text for a Markdown table cell or line: escaped for a terminal first (`printable`), then
    every character Markdown would read as markup or as a cell border backslash-escaped."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in printable(value))


def _version_move(change: Change) -> str:
    if change.from_version or change.to_version:
        return f"v{change.from_version or '?'} -> v{change.to_version or '?'}"
    return ""


def _sections(report: ShiftReport, cell: Any) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of each table, cells already escaped by `cell`."""
    severity = [[cell(t.name), str(t.alerts), str(t.paged)] for t in report.by_severity]
    rules = [
        [cell(t.name), str(t.alerts), str(t.paged), "flapped" if t.flapped else ""] for t in report.by_rule
    ]
    endpoints = [[cell(t.name), str(t.alerts), str(t.paged)] for t in report.by_endpoint]
    still_open = [
        [
            f"#{a.id}",
            cell(a.state),
            cell(a.severity),
            cell(a.endpoint),
            cell(a.rule),
            utc(a.started_at),
            cell(a.held_by) if a.held_by else "nobody",
        ]
        for a in report.open_alerts
    ]
    changes = [
        [
            utc(c.at),
            cell(c.action),
            cell(c.model or ""),
            cell(c.alias or ""),
            cell(_version_move(c)),
            cell(c.endpoint or ""),
            cell(c.result),
            cell(c.actor),
            cell(c.reason or ""),
        ]
        for c in report.changes
    ]
    silences = [
        [f"#{s.alert_id}", cell(s.endpoint), cell(s.rule), utc(s.until), cell(s.by or "")]
        for s in report.silences
    ]
    maintenance = [
        [f"#{m.window}", cell(m.endpoints), utc(m.until), cell(m.by), cell(m.reason or "")]
        for m in report.maintenance
    ]
    return [
        ("Pages by severity", ["severity", "alerts", "paged"], severity),
        ("Noisiest rules", ["rule", "alerts", "paged", "hint"], rules),
        ("Noisiest endpoints", ["endpoint", "alerts", "paged"], endpoints),
        ("Still open", ["alert", "state", "severity", "endpoint", "rule", "since", "held by"], still_open),
        (
            "Promotes, rollbacks and deploys",
            ["at", "action", "model", "alias", "versions", "endpoint", "result", "by", "reason"],
            changes,
        ),
        ("Silences still running", ["alert", "endpoint", "rule", "until", "by"], silences),
        ("Maintenance windows still running", ["window", "endpoints", "until", "by", "reason"], maintenance),
    ]


def _headline(report: ShiftReport) -> list[str]:
    ack, res = report.acknowledge, report.resolve
    return [
        f"Shift report {utc(report.start)} to {utc(report.end)}",
        f"{report.fired} alerts fired, {report.paged} paged ({report.pages_sent} notifications sent)",
        f"time to acknowledge: median {span(ack.median)}, worst {span(ack.worst)} ({ack.count} acknowledged)",
        f"time to resolve: median {span(res.median)}, worst {span(res.worst)} ({res.count} resolved)",
    ]


def render_text(report: ShiftReport) -> str:
    lines = _headline(report)
    for title, headers, rows in _sections(report, printable):
        lines += ["", f"{title}:"]
        if not rows:
            lines.append("  none")
            continue
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [[h.upper() for h in headers], *rows]:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def render_markdown(report: ShiftReport) -> str:
    head = _headline(report)
    lines = [f"## {head[0]}", "", *[f"- {line}" for line in head[1:]]]
    for title, headers, rows in _sections(report, md):
        lines += ["", f"### {title}", ""]
        if not rows:
            lines.append("None.")
            continue
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def report_json(report: ShiftReport) -> dict[str, Any]:
    """The report as JSON-ready data: exact text, times in ISO 8601 UTC, durations in seconds."""
    data = asdict(report)
    data["start"], data["end"] = iso(report.start), iso(report.end)
    for row in data["open_alerts"]:
        row["started_at"] = iso(row["started_at"])
    for row in data["changes"]:
        row["at"] = iso(row["at"])
    for row in [*data["silences"], *data["maintenance"]]:
        row["until"] = iso(row["until"])
    return json_safe(data)  # type: ignore[no-any-return]
