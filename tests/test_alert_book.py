"""The alert state machine on a real store: pending, dedupe, flapping, silences, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.alerts import ADOPTED_CLEAR_PROBES, FLAP_FIRES, FLAP_SETTLE, AlertBook
from mlops_console.core.conditions import Condition
from mlops_console.core.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": "json://127.0.0.1:9/hook"}]}
    )
    store = Store(settings.store.path)
    clock = Clock()
    book = AlertBook(settings, clock=clock)

    def step(active: bool, for_: float = 0.0) -> None:
        for op in book.evaluate(
            Condition("latency_p95", "ep", active, "warning", for_, 2.0, 1.0, "p95 2 s > 1 s")
        ):
            op(store)

    return settings, store, clock, book, step


def titles(store: Store) -> list[str]:
    return [r["title"] for r in store.query("SELECT title FROM notifications ORDER BY id")]


def test_pending_until_for_elapses_then_one_alert_not_one_per_probe(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, book, step = world
    step(True, for_=30)
    assert store.list_alerts() == [] and book.is_pending("latency_p95", "ep", None)
    clock.now += 31
    for _ in range(5):
        step(True, for_=30)
        clock.now += 1
    assert [a.state for a in store.list_alerts()] == ["firing"]
    assert titles(store) == ["[FIRING] ep: latency p95 high"]
    step(False)
    assert [a.state for a in store.list_alerts()] == ["resolved"]
    assert titles(store)[-1] == "[RESOLVED] ep: latency p95 high"


def test_flapping_pages_once_stays_open_then_resolves_when_settled(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, _, step = world
    for _ in range(FLAP_FIRES + 5):
        step(True)
        clock.now += 20
        step(False)
        clock.now += 20
    pages = titles(store)
    assert pages.count("[FLAPPING] ep: latency p95 high") == 1
    assert pages.count("[FIRING] ep: latency p95 high") == FLAP_FIRES - 1
    alerts = store.list_alerts()
    assert len(alerts) == FLAP_FIRES, "cycles while flapping stay one open alert"
    assert alerts[0].flapping and alerts[0].state == "firing"
    clock.now += FLAP_SETTLE
    step(False)
    assert store.list_alerts()[0].state == "resolved"
    assert titles(store)[-1] == "[RESOLVED] ep: latency p95 high"


def test_silence_covers_recurrences_but_alerts_are_still_stored(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _, step = world
    step(True)
    first = store.list_alerts()[0]
    store.silence(first.id, 3600, by="bob")
    step(False)
    step(True)
    assert len(store.list_alerts()) == 2
    assert titles(store) == ["[FIRING] ep: latency p95 high"], "silenced fingerprint must not page again"


def test_restart_adopts_open_alerts_instead_of_paging_twice(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, _, step = world
    step(True)
    reborn = AlertBook(settings, clock=clock)
    reborn.restore(store.open_alerts())
    for op in reborn.evaluate(Condition("latency_p95", "ep", True, "warning", 0, 2.0, 1.0, "again")):
        op(store)
    assert len(store.list_alerts()) == 1
    for op in reborn.evaluate(Condition("latency_p95", "ep", False, "warning")):
        op(store)
    assert store.list_alerts()[0].state == "resolved"


def test_acknowledged_alert_is_not_reminded(world) -> None:  # type: ignore[no-untyped-def]
    from mlops_console.core.alerts import remind_unacknowledged

    settings, store, _, _, step = world
    step(True)
    alert = store.list_alerts()[0]
    store._conn().execute("UPDATE alerts SET last_notified_at = started_at - 7200")
    assert remind_unacknowledged(store, settings) == 1
    store._conn().execute("UPDATE alerts SET last_notified_at = started_at - 7200")
    store.acknowledge(alert.id, "alice")
    assert remind_unacknowledged(store, settings) == 0
    assert titles(store)[-1] == "[STILL FIRING] ep: latency p95 high"


def adopt(settings, store, clock):  # type: ignore[no-untyped-def]
    """A restarted engine's book: the open alert comes from the store, not from its own probes."""
    reborn = AlertBook(settings, clock=clock)
    reborn.restore(store.open_alerts())
    return reborn


def down(active: bool | None) -> Condition:
    return Condition("down", "ep", active, "critical", 0.0, 3, 2, "ep failed 3 probes", interval=1.0)


def test_adopted_alert_is_not_resolved_by_missing_evidence(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, book, _ = world
    for op in book.evaluate(down(True)):
        op(store)
    reborn = adopt(settings, store, clock)
    for _ in range(20):  # a restarted engine whose failure count starts again from zero
        assert reborn.evaluate(down(None)) == []
        clock.now += 1
    assert reborn.is_firing("down", "ep", None)
    assert [a.state for a in store.list_alerts()] == ["firing"]


def test_adopted_alert_resolves_only_after_a_full_clear_window(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, book, _ = world
    for op in book.evaluate(down(True)):
        op(store)
    reborn = adopt(settings, store, clock)
    window = ADOPTED_CLEAR_PROBES * 1.0
    assert reborn.evaluate(down(False)) == [], "one clear probe after a restart is not a full window"
    clock.now += window / 2
    assert reborn.evaluate(down(None)) == [], "a probe that says nothing breaks the clear run"
    clock.now += window / 2
    assert reborn.evaluate(down(False)) == []
    clock.now += window - 0.1
    assert reborn.evaluate(down(False)) == []
    clock.now += 0.1
    for op in reborn.evaluate(down(False)):
        op(store)
    assert [a.state for a in store.list_alerts()] == ["resolved"]
    assert titles(store) == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]


def test_adopted_alert_seen_active_again_resolves_at_once(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, book, _ = world
    for op in book.evaluate(down(True)):
        op(store)
    reborn = adopt(settings, store, clock)
    assert reborn.evaluate(down(True)) == [], "still down after the restart: no second page"
    for op in reborn.evaluate(down(False)):
        op(store)
    assert [a.state for a in store.list_alerts()] == ["resolved"]


def test_fresh_alert_resolves_on_first_clear_but_not_on_missing_evidence(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book, _ = world
    for op in book.evaluate(down(True)):
        op(store)
    assert book.evaluate(down(None)) == []
    assert store.list_alerts()[0].state == "firing"
    for op in book.evaluate(down(False)):
        op(store)
    assert store.list_alerts()[0].state == "resolved"


def test_write_that_lands_after_a_stale_read_does_not_revive_the_alert(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book, _ = world
    for op in book.evaluate(down(True)):
        op(store)
    stale = store.open_alerts()  # read before the resolve is written
    (resolve,) = book.evaluate(down(False))
    book.restore(stale)
    assert not book.is_firing("down", "ep", None), "its own resolve is queued: the store is behind"
    resolve(store)
    book.restore(stale)
    assert not book.is_firing("down", "ep", None)
    for op in book.evaluate(down(True)):
        op(store)
    assert titles(store).count("[FIRING] ep: endpoint down") == 2, "a new outage pages again"
