"""What an engine that starts leading takes over from the store: the open alerts of endpoints and
pipelines the configuration no longer has, and the rows of endpoints discovered before a restart.

Nothing probes such an endpoint (or reads such a pipeline's runs) any more, so nothing would ever
resolve its alerts: in a watcher, each resolves once, in the store and in one resolve page, saying it
was removed from the configuration. A renamed endpoint or pipeline is a removed one and a new one:
guessing renames from URLs moved alerts between models served behind one URL, where nothing would
ever judge them again. Such an alert that lands in the store while the watcher leads (written late
by a watcher with an older configuration) resolves the same way at the next store sync
(`removed_since`). A console that leads for want of a watcher resolves nothing this way: it may have
been opened with a partial configuration. With `[[discover]]` tables, not before discovery has
answered (it may find the endpoint, which then carries on with its alerts); endpoints the last leader
had discovered are discovery's to settle (`PrometheusSource.remember`); until they are found again or
go, they are shown from their last row, stale, as remembered and waiting for discovery (`remembered`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mlops_console.config import Settings
from mlops_console.config.pipelines import PIPELINE_PREFIX
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Alert, Store

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine

log = logging.getLogger("mlops_console.engine")


@dataclass(frozen=True)
class Inherited:
    """What an engine that starts leading takes over from the store."""

    open_alerts: list[Alert]
    rows: list[dict[str, Any]]
    """The status rows the last leader wrote."""
    removed: dict[str, str]
    """Endpoints and pipelines (`pipeline:NAME`) with open alerts that the configuration no longer
    has, and why those resolve."""


def take_over(store: Store, settings: Settings, settles_removed: bool) -> Inherited:
    """Read the open alerts and status rows and, if `settles_removed`, list the removed endpoints and
    pipelines (in the store's thread)."""
    rows = store.read_status()
    alerts = store.open_alerts()
    if not settles_removed:
        return Inherited(alerts, rows, {})
    by_name = {str(row.get("name")): row for row in rows}
    configured = frozenset(e.name for e in settings.endpoints)

    def kept(name: str) -> bool:
        # Discovered by the last leader: discovery settles it (it may find it again), while there is any.
        row = by_name.get(name)
        return name in configured or bool(settings.discover and row is not None and discovered(row))

    return Inherited(alerts, rows, _removed(alerts, settings, kept, by_name))


def discovered(row: Mapping[str, Any]) -> bool:
    """The last leader had discovered the endpoint of its status row `row`. A row that cannot say (no
    snapshot: damaged, edited by hand) may have been: taken as such, its alerts wait for discovery's
    grace instead of resolving at discovery's first answer while its target is missing a moment."""
    return bool(row.get("discovered")) or EndpointSnapshot.from_row(row) is None


def removed_since(engine: Engine, alerts: Sequence[Alert]) -> dict[str, str]:
    """The endpoints and pipelines of open alerts that appeared while this engine leads (the write of
    a watcher with an older configuration, queued while the store was locked and flushed after the
    handover; a command run with another configuration) that the configuration does not have: as at a
    takeover, instead of waiting for the next one."""
    remembered = engine.prometheus.remembered if engine.prometheus is not None else frozenset()
    known = engine.removed_endpoints

    def kept(name: str) -> bool:
        return name in known or name in engine.endpoints or name in remembered

    # Only what the book holds firing: a read taken before this engine's resolve was written is stale.
    firing = [a for a in alerts if engine.book.is_firing(a.rule, a.endpoint, a.model)]
    return _removed(firing, engine.settings, kept, {})


def _removed(
    alerts: Sequence[Alert],
    settings: Settings,
    kept: Callable[[str], bool],
    rows: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """The endpoints and pipelines of `alerts` that the configuration does not have, and why their
    alerts resolve. `kept(endpoint)`: left alone although not configured. Alerts without an endpoint
    stay."""
    pipelines = frozenset(p.label for p in settings.pipelines)
    removed = {}
    for name in dict.fromkeys(a.endpoint for a in alerts):  # in the order the store gave them
        if name.startswith(PIPELINE_PREFIX):
            if name not in pipelines:
                removed[name] = pipeline_removed_reason(name)
        elif name and not kept(name):
            removed[name] = removed_reason(name, rows.get(name, {}), bool(settings.discover))
    return removed


def pipeline_removed_reason(label: str) -> str:
    """Why the open alerts of the pipeline `label` (`pipeline:NAME`) resolve."""
    name = label.removeprefix(PIPELINE_PREFIX)
    return (
        f"Resolved because the pipeline was removed from the configuration: [[pipelines]] no longer has "
        f"{name}. Nothing is known of its runs after that."
    )


def removed_reason(name: str, row: Mapping[str, Any], discovering: bool) -> str:
    """Why the open alerts of `name` resolve (`row`: its last status row, if any)."""
    if row.get("discovered"):
        what = "it was found by a [[discover]] table, and the configuration has none now"
    else:
        found = " and no [[discover]] table finds it" if discovering else ""
        what = f"[[endpoints]] no longer has {name}{found}"
    seen = last_seen(row)
    if seen:
        what += f"; last seen by the watcher at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(seen))}"
    return (
        f"Resolved because the endpoint was removed from the configuration: {what}. Nothing is known of "
        f"its state after that."
    )


def settle(engine: Engine, now: float, known: bool) -> Sequence[str]:
    """Resolve the open alerts of the removed endpoints and pipelines (once: each is forgotten here),
    unless discovery found the endpoint meanwhile. `known`: every endpoint there is has a state
    (discovery has answered); pipelines do not wait for it. Returns the endpoints and pipelines
    resolved."""
    removed = engine.removed_endpoints
    remembered = engine.prometheus.remembered if engine.prometheus is not None else frozenset()
    gone = []
    for name, reason in list(removed.items()):
        pipeline = name.startswith(PIPELINE_PREFIX)
        if not (pipeline or known):
            continue
        del removed[name]
        if name in engine.endpoints or name in remembered:
            continue  # found by discovery: it carries on with its alerts
        log.info(
            "%s is no longer in the configuration: its open alerts resolve",
            name,
            extra={"event": "pipeline_removed" if pipeline else "endpoint_removed", "endpoint": name},
        )
        if pipeline:
            engine.retire(name, reason)
        else:
            engine.endpoint_gone(name, reason, now)
        gone.append(name)
    return gone


def last_seen(row: Mapping[str, Any]) -> float | None:
    """When a watcher last saw a discovered endpoint: its row's time, or, for a row written while it
    was only remembered, the time the row it was remembered from had."""
    at = row.get("remembered") or row.get("updated_at")
    return float(at) if at else None


def remembered(
    rows: Sequence[Mapping[str, Any]],
    names: Collection[str],
    open_rules: Callable[[str], list[tuple[str, str | None]]],
) -> dict[str, EndpointSnapshot]:
    """The endpoints of `names` (discovered before the restart, not found again yet) as shown meanwhile:
    the last row's figures, stale; health unknown; the rules of their open alerts."""
    out = {}
    for row in rows:
        name = str(row.get("name"))
        if name not in names:
            continue
        shown = EndpointSnapshot.from_row(row)
        if shown is None:
            continue
        seen = last_seen(row)
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seen or 0))
        out[name] = replace(
            shown,
            health="unknown",
            remembered=seen,
            stale=f"remembered from before the watcher restarted, last seen {at}: waiting for discovery",
            firing=tuple(rule for rule, _ in open_rules(name)),
        )
    return out
