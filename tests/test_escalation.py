"""Escalation (`[[notifications]] after`): a second channel hears only about alerts nobody acknowledged in
time, once per alert, across restarts, and then hears their resolve.

The engine runs against a fault-injecting endpoint on loopback and pages two real apprise `json://`
sinks: `first` (every page) and `second` (escalation after `AFTER` seconds).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import Settings, parse_settings
from mlops_console.core.alerts import escalate_unacknowledged, remind_unacknowledged
from mlops_console.core.engine import ESCALATE_EVERY, Engine
from mlops_console.core.notifier import channel_id
from mlops_console.core.store import Store, escalations
from tests._loopback import FaultServer, Sink, async_wait_for
from tests.test_engine_faults import PAYLOAD

AFTER = 3.0


def make_settings(tmp_path: Path, server_url: str, first: Sink, second: Sink) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {"name": "ep", "url": server_url, "interval": 0.2, "timeout": 0.5, "payload": PAYLOAD}
            ],
            "notifications": [{"url": first.url}, {"url": second.url, "after": f"{AFTER:g}s"}],
        }
    )


def count(sink: Sink, prefix: str) -> int:
    return sum(t.startswith(prefix) for t in sink.titles())


class Watcher:
    """One engine run on the shared store, stopped (and awaited) by `stop`."""

    def __init__(self, settings: Settings) -> None:
        self.store = Store(settings.store.path)
        self.engine = Engine(settings, self.store)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.engine.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        await self._task


class EscalationClock:
    """The clock the store's escalation checks read: standing still at `at` while a test needs an alert
    to be "in time" however slow the machine is, real time when `at` is None. `looks` counts the reads
    (one per check for alerts due, while none is)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at: float | None = None
        self.looks = 0
        monkeypatch.setattr(escalations, "now", self._now)

    def _now(self) -> float:
        self.looks += 1
        return time.time() if self.at is None else self.at

    async def checks(self, count: int) -> None:
        """Until the engine's escalation round has looked `count` more times."""
        target = self.looks + count
        await async_wait_for(lambda: self.looks >= target, what=f"{count} escalation rounds")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> EscalationClock:
    return EscalationClock(monkeypatch)


async def past_the_deadline(store: Store, rounds: float = 2.0) -> None:
    """Until the only alert has been firing for `AFTER` plus `rounds` escalation rounds (and a delivery)."""
    [alert] = await asyncio.to_thread(store.list_alerts)
    deadline = alert.started_at + AFTER + rounds * ESCALATE_EVERY + 1.0
    await async_wait_for(lambda: time.time() > deadline, timeout=AFTER + 20, what="the escalation deadline")


async def test_unacknowledged_alert_escalates_once_and_the_escalation_channel_hears_the_resolve(
    tmp_path: Path, server: FaultServer, sinks: tuple[Sink, Sink]
) -> None:
    first, second = sinks
    settings = make_settings(tmp_path, server.url, first, second)
    server.faults.mode = "error"
    watcher = Watcher(settings)
    try:
        await async_wait_for(lambda: count(first, "[FIRING] ep") == 1, what="first page")
        assert second.titles() == [], "the escalation channel does not hear the first page"
        await async_wait_for(lambda: count(second, "[ESCALATED] ep") == 1, timeout=30, what="escalation")
        [alert] = await asyncio.to_thread(watcher.store.list_alerts)
        [escalated] = [e for e in watcher.store.events(alert.id) if e.kind == "escalated"]
        assert escalated.at >= alert.started_at + AFTER, "not before its channel's `after`"
        assert escalated.data == {"channel": channel_id(second.url), "after": AFTER}
        await past_the_deadline(watcher.store, rounds=3)
        assert second.titles() == [second.titles()[0]], "one escalation per alert and channel"
        body = second.received[0]["message"]
        assert "Nobody acknowledged it within 3s" in body and f"Alert #{alert.id}" in body
        server.faults.mode = "ok"
        await async_wait_for(lambda: count(second, "[RESOLVED] ep") == 1, what="resolve on the 2nd channel")
        await async_wait_for(lambda: count(first, "[RESOLVED] ep") == 1, what="resolve on the 1st channel")
    finally:
        await watcher.stop()
    assert first.titles() == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]
    assert second.titles() == ["[ESCALATED] ep: endpoint down", "[RESOLVED] ep: endpoint down"]


@pytest.mark.parametrize("decision", ["acknowledge", "silence"])
async def test_an_alert_acknowledged_or_silenced_in_time_never_reaches_the_escalation_channel(
    tmp_path: Path, server: FaultServer, sinks: tuple[Sink, Sink], decision: str, clock: EscalationClock
) -> None:
    first, second = sinks
    settings = make_settings(tmp_path, server.url, first, second)
    server.faults.mode = "error"
    # In time by construction: the first page's delivery and this decision can take longer than
    # `AFTER` on a loaded machine, so the escalation checks see no time pass until it is made.
    clock.at = time.time()
    watcher = Watcher(settings)
    try:
        await async_wait_for(lambda: count(first, "[FIRING] ep") == 1, what="first page")
        [alert] = await asyncio.to_thread(watcher.store.list_alerts)
        if decision == "acknowledge":
            await asyncio.to_thread(watcher.store.acknowledge, alert.id, "alice", "on it")
        else:
            await asyncio.to_thread(watcher.store.silence, alert.id, 600, "alice")
        clock.at = alert.started_at + AFTER + 1.0  # then past the deadline, for two rounds
        await clock.checks(2)
        server.faults.mode = "ok"
        await async_wait_for(
            lambda: watcher.store.get_alert(alert.id).state == "resolved", what="the alert resolves"
        )
        if decision == "acknowledge":
            await async_wait_for(lambda: count(first, "[RESOLVED] ep") == 1, what="resolve on the 1st")
    finally:
        await watcher.stop()
    assert second.titles() == [], "nobody needed the second line: not the escalation, not the resolve"
    assert "escalated" not in [e.kind for e in watcher.store.events(alert.id)]


@pytest.mark.parametrize("restart", ["before the deadline", "after the escalation"])
async def test_a_restarted_watcher_escalates_once(
    tmp_path: Path, server: FaultServer, sinks: tuple[Sink, Sink], restart: str, clock: EscalationClock
) -> None:
    first, second = sinks
    settings = make_settings(tmp_path, server.url, first, second)
    server.faults.mode = "error"
    if restart == "before the deadline":  # however long the first page takes on a loaded machine
        clock.at = time.time()
    watcher = Watcher(settings)
    try:
        await async_wait_for(lambda: count(first, "[FIRING] ep") == 1, what="first page")
        if restart == "after the escalation":
            await async_wait_for(lambda: count(second, "[ESCALATED] ep") == 1, timeout=30, what="escalation")
    finally:
        await watcher.stop()
    if restart == "before the deadline":
        assert second.titles() == []
        clock.at = None
    watcher = Watcher(settings)
    try:
        await async_wait_for(lambda: count(second, "[ESCALATED] ep") == 1, timeout=30, what="escalation")
        await past_the_deadline(watcher.store, rounds=3)
        assert count(second, "[ESCALATED] ep") == 1
        server.faults.mode = "ok"
        await async_wait_for(lambda: count(second, "[RESOLVED] ep") == 1, what="resolve on the 2nd channel")
    finally:
        await watcher.stop()
    assert first.titles() == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]
    assert second.titles() == ["[ESCALATED] ep: endpoint down", "[RESOLVED] ep: endpoint down"]


# -- the store's side: re-checked under the write lock, cancelled by an ack, reminders -----------------
@pytest.fixture
def stored(tmp_path: Path, sinks: tuple[Sink, Sink]) -> tuple[Settings, Store, int]:
    """An alert that has been firing, unacknowledged, for longer than the escalation's `after`."""
    from mlops_console.core.store import NewAlert

    settings = make_settings(tmp_path, "http://127.0.0.1:9", *sinks)
    store = Store(settings.store.path)
    alert = NewAlert("fp", "down", "ep", "critical", "ep failed 3 probes", started_at=time.time() - 60)
    return settings, store, store.open_alert(alert, [])


@pytest.mark.parametrize("decision", ["acknowledge", "silence", "resolve", "escalate"])
def test_a_decision_landing_between_due_and_escalate_stops_the_escalation(
    stored: tuple[Settings, Store, int], decision: str
) -> None:
    settings, store, alert_id = stored
    second = settings.notifications[1]
    [due] = store.due_escalations(channel_id(second.template), second.after)
    if decision == "acknowledge":
        store.acknowledge(alert_id, "alice")
    elif decision == "silence":
        store.silence(alert_id, 600, by="bob")
    elif decision == "resolve":
        store.resolve_alert(alert_id, [])
    else:
        assert escalate_unacknowledged(store, settings) == 1, "another watcher escalated it first"
    assert escalate_unacknowledged(store, settings) == 0
    from mlops_console.core.alerts.escalation import escalation_message

    message = escalation_message(settings, second, due)
    assert store.escalate(due.id, message.channel, second.after, [message]) is False
    expected = 1 if decision == "escalate" else 0
    assert [n.kind for n in store.notifications_for(alert_id)] == ["escalation"] * expected


def test_an_ack_cancels_an_escalation_queued_but_not_yet_sent(stored: tuple[Settings, Store, int]) -> None:
    settings, store, alert_id = stored
    assert escalate_unacknowledged(store, settings) == 1
    [queued] = store.notifications_for(alert_id)
    store.acknowledge(alert_id, "alice")
    assert [n.status for n in store.notifications_for(alert_id)] == ["cancelled"]
    assert store.due_notifications() == []
    assert store.mark_sending(queued, "test") is None


def test_reminders_reach_the_escalation_channel_only_once_escalated(
    stored: tuple[Settings, Store, int],
) -> None:
    settings, store, alert_id = stored
    first, second = (channel_id(n.template) for n in settings.notifications)
    overdue = "UPDATE alerts SET last_notified_at = 1.0"
    store._conn().execute(overdue)
    assert remind_unacknowledged(store, settings) == 1
    assert [(n.kind, n.channel) for n in store.notifications_for(alert_id)] == [("reminder", first)]
    assert escalate_unacknowledged(store, settings) == 1
    store._conn().execute(overdue)
    assert remind_unacknowledged(store, settings) == 1
    assert [(n.kind, n.channel) for n in store.notifications_for(alert_id)][1:] == [
        ("escalation", second),
        ("reminder", first),
        ("reminder", second),
    ]


@pytest.mark.parametrize(
    ("after", "problem"), [('"soon"', "expected a duration"), ("-5", "greater than or equal to 0")]
)
def test_a_bad_after_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], after: str, problem: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[notifications]]\nurl = "json://127.0.0.1:9/a"\n\n'
        f'[[notifications]]\nurl = "json://127.0.0.1:9/b"\nafter = {after}\n'
    )
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: notifications[1].after" in err and problem in err, err
    assert "Traceback" not in err


async def test_the_engine_taking_over_the_lease_escalates_once(
    tmp_path: Path, server: FaultServer, sinks: tuple[Sink, Sink]
) -> None:
    first, second = sinks
    settings = make_settings(tmp_path, server.url, first, second)
    leader = Watcher(settings)
    await async_wait_for(lambda: leader.engine.leader, what="leader")
    follower = Watcher(settings)
    try:
        await async_wait_for(lambda: follower.engine.follow_owner, what="follower")
        server.faults.mode = "error"
        await async_wait_for(lambda: count(first, "[FIRING] ep") == 1, what="page from the leader")
        await leader.stop()
        await async_wait_for(lambda: follower.engine.leader, timeout=20, what="takeover")
        await async_wait_for(lambda: count(second, "[ESCALATED] ep") == 1, timeout=30, what="escalation")
        await past_the_deadline(follower.store, rounds=3)
        server.faults.mode = "ok"
        await async_wait_for(lambda: count(second, "[RESOLVED] ep") == 1, what="resolve on the 2nd channel")
    finally:
        await leader.stop()
        await follower.stop()
    assert first.titles() == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]
    assert second.titles() == ["[ESCALATED] ep: endpoint down", "[RESOLVED] ep: endpoint down"]
