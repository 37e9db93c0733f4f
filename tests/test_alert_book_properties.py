"""Properties of the alert book over any sequence of events, on a real SQLite store.

Hypothesis draws sequences of conditions (active, clear, unknown) for two endpoints and two rules,
with time passing, acknowledgements, silences, reminders, restarts (a new book restored from the same
store), lease handovers (the other engine's book takes over from the store) and writes that wait in
the writer's queue. Whatever the order:

- at most one open alert per fingerprint;
- every alert pages exactly once when it opens (firing or flapping), unless its fingerprint was
  silenced before; a resolve pages at most once and only after its alert paged;
- every resolve follows its firing in the alert's timeline;
- nothing is queued for a fingerprint after it was silenced, and nothing silenced is left to deliver;
- reminders go only to firing, unacknowledged, unsilenced alerts.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import tests._hypothesis  # noqa: F401  (loads the profile)
from mlops_console.config import Settings, parse_settings
from mlops_console.core.alerts import AlertBook, AlertWrite, remind_unacknowledged
from mlops_console.core.alerts.book import fingerprint
from mlops_console.core.conditions import Condition
from mlops_console.core.store import Store

ENDPOINTS = ("a", "b")
RULES = ("down", "latency_p95")
PAGE_KINDS = ("firing", "flapping")


def condition(rule: str, endpoint: str, active: bool | None) -> Condition:
    for_ = 0.0 if rule == "down" else 30.0
    return Condition(rule, endpoint, active, "critical", for_, 1.0, 0.5, f"{endpoint} {rule}", interval=1.0)


@dataclass
class World:
    settings: Settings
    store: Store
    clock: list[float]
    books: list[AlertBook]
    active: int = 0
    queue: list[AlertWrite] = field(default_factory=list)
    silenced_after: dict[str, tuple[int, int]] = field(default_factory=dict)
    """fingerprint -> (the highest notification id, the alert silenced) when it was first silenced."""

    @property
    def book(self) -> AlertBook:
        return self.books[self.active]

    def new_book(self) -> AlertBook:
        return AlertBook(self.settings, clock=lambda: self.clock[0])

    def flush(self) -> None:
        while self.queue:
            self.queue.pop(0)(self.store)

    def open_alert_of(self, endpoint: str) -> int | None:
        rows = self.store.query(
            "SELECT id FROM alerts WHERE endpoint=? AND state!='resolved' ORDER BY id LIMIT 1", [endpoint]
        )
        return int(rows[0]["id"]) if rows else None

    def max_notification(self) -> int:
        return int(self.store.query("SELECT coalesce(max(id), 0) AS m FROM notifications")[0]["m"])


steps = st.one_of(
    st.tuples(
        st.just("cond"),
        st.sampled_from(RULES),
        st.sampled_from(ENDPOINTS),
        st.sampled_from([True, True, False, None]),
    ),
    st.tuples(st.just("tick"), st.sampled_from([1.0, 10.0, 31.0, 130.0, 700.0])),
    st.tuples(st.just("ack"), st.sampled_from(ENDPOINTS)),
    st.tuples(st.just("silence"), st.sampled_from(ENDPOINTS)),
    st.tuples(st.just("remind")),
    st.tuples(st.just("flush")),
    st.tuples(st.just("restart")),
    st.tuples(st.just("handover")),
    st.tuples(st.just("sync")),
)


def apply(world: World, step: tuple) -> None:  # type: ignore[type-arg]
    kind = step[0]
    if kind == "cond":
        _, rule, endpoint, active = step
        world.queue.extend(world.book.evaluate(condition(rule, endpoint, active)))
    elif kind == "tick":
        world.clock[0] += step[1]
    elif kind == "flush":
        world.flush()
    elif kind in ("ack", "silence"):
        world.flush()
        alert_id = world.open_alert_of(step[1])
        if alert_id is None:
            return
        if kind == "ack":
            world.store.acknowledge(alert_id, "alice")
        else:
            alert = world.store.get_alert(alert_id)
            world.silenced_after.setdefault(alert.fingerprint, (world.max_notification(), alert.id))
            world.store.silence(alert_id, 3600, by="bob")
    elif kind == "remind":
        world.flush()
        # as if the last page went out long ago: every alert that may be reminded is due
        world.store._conn().execute("UPDATE alerts SET last_notified_at = ?", [time.time() - 86400])
        due = {a.id for a in world.store.due_reminders(world.settings.notify.renotify_after)}
        before = world.max_notification()
        remind_unacknowledged(world.store, world.settings)
        reminded = world.store.query(
            "SELECT DISTINCT alert_id FROM notifications WHERE id > ? AND kind='reminder'", [before]
        )
        for row in reminded:
            alert = world.store.get_alert(row["alert_id"])
            assert alert.id in due
            assert alert.state == "firing" and not alert.flapping, "only firing, unacknowledged alerts"
            assert alert.fingerprint not in world.silenced_after, "a silenced alert is never reminded"
    elif kind in ("restart", "handover"):
        # The engine takes over (or restarts) once its queued writes are in the store.
        world.flush()
        if kind == "handover":
            world.active = 1 - world.active
        world.books[world.active] = world.new_book()
        world.book.restore(world.store.open_alerts())
    elif kind == "sync":
        world.book.restore(world.store.open_alerts())


def check(world: World) -> None:
    store = world.store
    doubled = store.query(
        "SELECT fingerprint, count(*) AS n FROM alerts WHERE state!='resolved' GROUP BY 1 HAVING n > 1"
    )
    assert doubled == [], f"two open alerts for one fingerprint: {doubled}"
    for alert in store.list_alerts(limit=100_000):
        pages = [n.kind for n in store.notifications_for(alert.id) if n.kind != "reminder"]
        events = [e.kind for e in store.events(alert.id)]
        assert events[0] == "fired", events
        if "resolved" in events:
            assert events.index("resolved") > events.index("fired")
            assert events.count("resolved") == 1 and alert.state == "resolved"
        opened = [k for k in pages if k in PAGE_KINDS]
        assert len(opened) <= 1, f"alert #{alert.id} paged {opened}"
        silenced = world.silenced_after.get(alert.fingerprint)
        if silenced is None or alert.id <= silenced[1]:
            assert len(opened) == 1, f"alert #{alert.id} never paged: {pages}"
        assert pages.count("resolved") <= 1
        if "resolved" in pages:
            assert pages.index("resolved") > pages.index(opened[0]), "a resolve follows its page"
    for fp, (last, _) in world.silenced_after.items():
        later = store.query(
            "SELECT n.id, n.kind FROM notifications n JOIN alerts a ON a.id = n.alert_id "
            "WHERE a.fingerprint = ? AND n.id > ?",
            [fp, last],
        )
        assert later == [], f"paged during a silence: {later}"
        live = store.query(
            "SELECT n.id FROM notifications n JOIN alerts a ON a.id = n.alert_id "
            "WHERE a.fingerprint = ? AND n.status = 'pending'",
            [fp],
        )
        assert live == [], "a page queued before the silence must not go out after it"


@given(st.lists(steps, min_size=1, max_size=40))
def test_any_sequence_keeps_the_paging_promise(sequence: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(
            {
                "store": {"path": str(Path(tmp) / "c.db")},
                "notifications": [{"url": "json://127.0.0.1:9/hook"}],
            }
        )
        # The book's clock starts a day back: acks and silences are stamped with the wall clock, and a
        # book clock ahead of it would order an ack before the page it acknowledges.
        world = World(settings, Store(settings.store.path), [time.time() - 86400], [])
        world.books = [world.new_book(), world.new_book()]
        for step in sequence:
            apply(world, step)
            check(world)
        world.flush()
        check(world)


@given(st.lists(st.tuples(st.sampled_from(ENDPOINTS), st.sampled_from([True, False])), max_size=30))
def test_book_and_store_agree_on_what_is_firing(sequence: list[tuple[str, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings({"store": {"path": str(Path(tmp) / "c.db")}})
        store = Store(settings.store.path)
        now = [time.time()]
        book = AlertBook(settings, clock=lambda: now[0])
        for endpoint, active in sequence:
            for write in book.evaluate(condition("down", endpoint, active)):
                write(store)
            now[0] += 1000.0  # far apart: no flapping
            open_endpoints = {a.endpoint for a in store.open_alerts()}
            firing = {e for e in ENDPOINTS if book.is_firing("down", e, None)}
            assert open_endpoints == firing
            assert {a.fingerprint for a in store.open_alerts()} == {
                fingerprint("down", e, None) for e in firing
            }
