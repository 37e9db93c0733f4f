"""The alert book's bookkeeping, case by case: restores that skip one alert and adopt the next, times
taken from the book's clock, resolves that carry the right id and note, what `pending`, `is_pending`
and `open_rules` answer. Each case is a way the book once could (or a plausible edit would) page
twice, resolve late, or lose an alert."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.alerts import FLAP_FIRES, FLAP_WINDOW, AlertBook
from mlops_console.core.alerts.book import fingerprint
from mlops_console.core.conditions import Condition
from mlops_console.core.store import NewAlert, Store


class Clock:
    def __init__(self) -> None:
        self.now = time.time() + 5000.0  # ahead of wall time: a time taken from the wrong clock shows

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": "json://127.0.0.1:9/hook"}]}
    )
    store = Store(settings.store.path)
    clock = Clock()
    return settings, store, clock, AlertBook(settings, clock=clock)


def down(endpoint: str, active: bool | None, detail: str = "") -> Condition:
    return Condition(
        "down", endpoint, active, "critical", 0.0, 3, 2, detail or f"{endpoint} down", interval=1.0
    )


def run(book: AlertBook, store: Store, condition: Condition) -> None:
    for write in book.evaluate(condition):
        write(store)


def external(store: Store, endpoint: str) -> int:
    """An alert another engine (or a command) opened."""
    return store.open_alert(
        NewAlert(
            fingerprint=fingerprint("down", endpoint, None),
            rule="down",
            endpoint=endpoint,
            severity="critical",
            summary="opened elsewhere",
            started_at=time.time(),
        ),
        [],
    )


def pages(store: Store) -> list[str]:
    return [r["title"] for r in store.query("SELECT title FROM notifications ORDER BY id")]


def test_restore_skips_an_alert_it_resolved_and_still_adopts_the_next(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    [a] = store.open_alerts()
    run(book, store, down("a", False))
    b = external(store, "b")
    book.restore([a, store.get_alert(b)])  # a read taken before a's resolve landed
    assert not book.is_firing("down", "a", None)
    assert book.is_firing("down", "b", None), "the alert after a skipped one is adopted too"


def test_restore_skips_an_alert_with_queued_writes_and_still_adopts_the_next(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    queued = book.evaluate(down("a", True))  # decided, not yet in the store
    a = external(store, "a")
    b = external(store, "b")
    book.restore([store.get_alert(a), store.get_alert(b)])
    assert book.is_firing("down", "b", None)
    for write in queued:
        write(store)
    assert [x.id for x in store.open_alerts() if x.endpoint == "a"] == [a], "adopted, not doubled"


def test_a_synced_alert_the_book_fired_itself_resolves_on_the_first_clear(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    book.restore(store.open_alerts())  # the engine's periodic sync with the store
    [resolve] = book.evaluate(down("a", False))
    resolve(store)
    assert store.list_alerts()[0].state == "resolved"


def test_an_adopted_silenced_alert_resolves_quietly(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, _ = world
    alert_id = external(store, "a")
    store.silence(alert_id, 3600, by="bob")
    reborn = AlertBook(settings, clock=clock)
    reborn.restore(store.open_alerts())
    assert reborn.evaluate(down("a", False)) == []
    clock.now += 10
    [resolve] = reborn.evaluate(down("a", False))
    assert resolve.fingerprint == fingerprint("down", "a", None)
    resolve(store)
    assert store.get_alert(alert_id).state == "resolved" and pages(store) == []


def test_open_rules_lists_only_this_endpoints_adopted_alerts(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, _ = world
    external(store, "a")
    external(store, "b")
    book = AlertBook(settings, clock=clock)
    book.restore(store.open_alerts())
    assert book.open_rules("a") == [("down", None)]
    assert book.open_rules("c") == []


def test_open_rules_forgets_an_adopted_alert_once_resolved_and_forgotten(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, _ = world
    external(store, "a")
    book = AlertBook(settings, clock=clock)
    book.restore(store.open_alerts())
    book.evaluate(down("a", False))
    clock.now += 10
    run(book, store, down("a", False))
    clock.now += FLAP_WINDOW + 1
    run(book, store, down("a", False))  # clear long after: the book forgets the fingerprint
    assert book.open_rules("a") == []


def test_pending_and_is_pending(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, book = world
    slow = Condition("latency_p95", "ep", True, "warning", 30.0, 2.0, 1.0, "slow", "iris")
    assert book.evaluate(slow) == []
    assert book.pending() == [fingerprint("latency_p95", "ep", "iris")]
    assert book.is_pending("latency_p95", "ep", "iris")
    assert not book.is_pending("latency_p95", "ep", None), "another model's fingerprint"
    assert not book.is_pending("down", "ep", None), "never seen"
    assert not book.is_firing("latency_p95", "ep", "iris")
    clock.now += 30
    run(book, store, slow)
    assert book.is_firing("latency_p95", "ep", "iris")
    assert not book.is_pending("latency_p95", "ep", "iris") and book.pending() == []


def test_a_pending_condition_that_clears_is_forgotten(world) -> None:  # type: ignore[no-untyped-def]
    _, _, _, book = world
    slow = Condition("latency_p95", "ep", True, "warning", 30.0, 2.0, 1.0, "slow")
    book.evaluate(slow)
    assert book.evaluate(Condition("latency_p95", "ep", False, "warning", 30.0)) == []
    assert book.pending() == [] and not book.is_pending("latency_p95", "ep", None)


def test_times_come_from_the_books_clock(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, book = world
    [fire] = book.evaluate(down("a", True))
    assert fire.created_at == clock.now
    fire(store)
    assert store.list_alerts()[0].started_at == clock.now
    clock.now += 42
    [resolve] = book.evaluate(down("a", False))
    assert resolve.created_at == clock.now
    resolve(store)
    assert store.list_alerts()[0].resolved_at == clock.now


def test_resolve_names_its_alert_and_records_why(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    [alert] = store.open_alerts()
    [resolve] = book.evaluate(down("a", False, detail="a answers again"))
    assert resolve.alert.id == alert.id, "a page sent directly for the resolve names the alert"
    resolve(store)
    assert store.events(alert.id)[-1].kind == "resolved"
    assert store.events(alert.id)[-1].note == "a answers again"


def test_resolve_of_an_alert_not_yet_written_names_no_old_alert(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    run(book, store, down("a", False))
    queued = book.evaluate(down("a", True))  # the second outage, not yet written
    [resolve] = book.evaluate(down("a", False))
    assert resolve.alert.id is None, "the first outage's id would name the wrong alert"
    for write in [*queued, resolve]:
        write(store)
    assert [a.state for a in store.list_alerts()] == ["resolved", "resolved"]


def test_an_alert_resolved_elsewhere_is_not_resolved_or_paged_again(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    [alert] = store.open_alerts()
    store.resolve_alert(alert.id, [], note="closed by hand")
    run(book, store, down("a", False))
    assert [e.kind for e in store.events(alert.id)].count("resolved") == 1
    assert pages(store) == ["[FIRING] a: endpoint down"]


def test_after_a_resolve_the_next_outage_is_fresh_not_adopted(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, _ = world
    external(store, "a")
    book = AlertBook(settings, clock=clock)
    book.restore(store.open_alerts())
    book.evaluate(down("a", False))
    clock.now += 10
    run(book, store, down("a", False))  # adopted: resolved after its window
    clock.now += 1000
    run(book, store, down("a", True))  # a new outage this book sees itself
    run(book, store, down("a", False))
    assert [a.state for a in store.list_alerts()] == ["resolved", "resolved"], "resolves on its first clear"


def test_restore_skips_an_alert_it_already_fires_and_still_adopts_the_next(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    [a] = store.open_alerts()
    b = external(store, "b")
    book.restore([a, store.get_alert(b)])
    assert book.is_firing("down", "a", None) and book.is_firing("down", "b", None)


def test_an_adopted_alert_with_fast_probes_still_waits_its_window(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, _ = world
    external(store, "a")
    book = AlertBook(settings, clock=clock)
    book.restore(store.open_alerts())
    fast = Condition("down", "a", False, "critical", 0.0, 0, 2, "a answers", interval=0.2)
    assert book.evaluate(fast) == [], "one clear probe is not the 0.6 s window"
    clock.now += 0.61
    assert len(book.evaluate(fast)) == 1


def test_a_resolve_still_queued_is_not_undone_by_a_stale_read(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, book = world
    run(book, store, down("a", True))
    stale = store.open_alerts()
    clock.now += FLAP_WINDOW + 10  # its firing is long past: only the queued write keeps it known
    queued = book.evaluate(down("a", False))
    assert len(queued) == 1
    assert book.evaluate(down("a", False)) == []  # a second clear while the resolve waits
    book.restore(stale)
    assert not book.is_firing("down", "a", None), "the store is behind, not the book"
    for write in queued:
        write(store)
    assert [a.state for a in store.list_alerts()] == ["resolved"]


def test_flapping_is_seen_through_repeated_clears(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, book = world
    for _ in range(FLAP_FIRES):
        run(book, store, down("a", True))
        clock.now += 20
        run(book, store, down("a", False))
        clock.now += 20
        run(book, store, down("a", False))  # clear again before it returns
        clock.now += 20
    flapping = [a for a in store.list_alerts() if a.flapping]
    assert len(flapping) == 1 and flapping[0].state == "firing"
    assert "flapping" in [e.kind for e in store.events(flapping[0].id)]
    assert pages(store).count("[FLAPPING] a: endpoint down") == 1


def test_fires_exactly_a_flap_window_apart_still_count_as_flapping(world) -> None:  # type: ignore[no-untyped-def]
    _, store, clock, book = world
    start = clock.now
    for i in range(FLAP_FIRES):
        clock.now = start + i * FLAP_WINDOW / (FLAP_FIRES - 1)
        run(book, store, down("a", True))
        clock.now += 1
        run(book, store, down("a", False))
    assert store.list_alerts()[0].flapping, "the first fire is exactly FLAP_WINDOW before the last"


def test_a_fired_alert_keeps_its_model_version_in_store_and_page(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    cond = Condition("down", "a", True, "critical", 0.0, 3, 2, "a down", "iris", "3", interval=1.0)
    [write] = book.evaluate(cond)
    assert write.kind == "firing"
    [direct] = write.direct_messages(book.settings, "")
    assert direct.title == "[FIRING] a: endpoint down" and "Model: iris v3" in direct.body
    write(store)
    [alert] = store.list_alerts()
    assert (alert.model, alert.version) == ("iris", "3")
    assert "Model: iris v3" in store.notifications_for(alert.id)[0].body


def test_the_log_says_fired_or_adopted(world, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    settings, store, clock, book = world
    caplog.set_level("INFO", logger="mlops_console.alerts")
    run(book, store, down("a", True))
    fired = [r for r in caplog.records if getattr(r, "event", None) == "alert_firing"]
    assert len(fired) == 1 and fired[0].levelname == "WARNING"
    caplog.clear()
    other = AlertBook(settings, clock=clock)  # another engine that has not seen the store's alert
    run(other, store, down("a", True))
    assert len(store.open_alerts()) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"alert #{store.open_alerts()[0].id} was already open in the store: adopted"
    ]
