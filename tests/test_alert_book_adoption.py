"""Adopted alerts (a restart, a takeover) page like the alerts they are: their resolve, sent directly
while the store refuses writes, says everything the stored alert says; their clear window scales with
the rule's `for` and the probe interval."""

from __future__ import annotations

import time
from pathlib import Path

from mlops_console.config import parse_settings
from mlops_console.core.alerts import ADOPTED_CLEAR_PROBES, AlertBook, adopted_window, render_message
from mlops_console.core.conditions import Condition
from mlops_console.core.store import Store


def cond(active: bool | None, for_: float = 0.0, interval: float = 1.0) -> Condition:
    return Condition(
        "latency_p95",
        "ep",
        active,
        "warning",
        for_,
        2.5,
        1.0,
        "p95 2.5 s > 1 s",
        "iris",
        "3",
        interval=interval,
    )


def test_adopted_window_is_the_longer_of_for_and_the_clear_probes() -> None:
    assert adopted_window(cond(False, for_=0.0, interval=2.0)) == ADOPTED_CLEAR_PROBES * 2.0
    assert adopted_window(cond(False, for_=0.0, interval=0.5)) == ADOPTED_CLEAR_PROBES * 0.5
    assert adopted_window(cond(False, for_=30.0, interval=2.0)) == 30.0


def test_adopted_alert_with_a_long_for_waits_for_it_before_resolving(tmp_path: Path) -> None:
    settings = parse_settings({"store": {"path": str(tmp_path / "c.db")}})
    store = Store(settings.store.path)
    now = [time.time()]
    first = AlertBook(settings, clock=lambda: now[0])
    for write in first.evaluate(cond(True)):
        write(store)
    reborn = AlertBook(settings, clock=lambda: now[0])
    reborn.restore(store.open_alerts())
    assert reborn.evaluate(cond(False, for_=30.0)) == []
    now[0] += 29.0
    assert reborn.evaluate(cond(False, for_=30.0)) == [], "3 probes have passed, but not its `for`"
    now[0] += 1.0
    [resolve] = reborn.evaluate(cond(False, for_=30.0))
    resolve(store)
    assert store.list_alerts()[0].state == "resolved"


def test_resolve_of_an_adopted_alert_carries_the_stored_alert(tmp_path: Path) -> None:
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": "json://127.0.0.1:9/hook"}]}
    )
    store = Store(settings.store.path)
    now = [time.time()]
    first = AlertBook(settings, clock=lambda: now[0])
    for write in first.evaluate(cond(True)):
        write(store)
    [stored] = store.open_alerts()
    book = AlertBook(settings, clock=lambda: now[0])  # a restarted engine that never saw it fire
    book.restore(store.open_alerts())
    assert book.is_firing("latency_p95", "ep", "iris") and book.open_rules("ep") == [("latency_p95", "iris")]
    assert book.evaluate(cond(False)) == []
    now[0] += adopted_window(cond(False))
    [resolve] = book.evaluate(cond(False))
    alert = resolve.alert
    assert (alert.id, alert.fingerprint, alert.rule, alert.endpoint, alert.severity) == (
        stored.id,
        stored.fingerprint,
        stored.rule,
        stored.endpoint,
        stored.severity,
    )
    assert (alert.summary, alert.model, alert.version, alert.started_at) == (
        stored.summary,
        stored.model,
        stored.version,
        stored.started_at,
    )
    assert (alert.value, alert.threshold, alert.flapping) == (stored.value, stored.threshold, stored.flapping)
    # The page sent straight through apprise while the store is unwritable reads like the stored one.
    [direct] = resolve.direct_messages(settings, "")
    assert (direct.title, direct.body) == render_message("resolved", stored)
    assert direct.kind == "resolved" and direct.severity == "warning"
    resolve(store)
    assert book.open_rules("ep") == [] and not book.is_firing("latency_p95", "ep", "iris")
