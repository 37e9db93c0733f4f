"""One outage stays one alert across restarts and takeovers: no false RESOLVED, no second FIRING."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mlops_console.core.engine import Engine
from mlops_console.core.store import Store
from tests._loopback import FaultServer, Sink, async_wait_for
from tests.test_engine_faults import make_settings


def count(sink: Sink, prefix: str) -> int:
    return sum(t.startswith(prefix) for t in sink.titles())


async def test_engine_restart_during_outage_neither_resolves_nor_pages_again(
    tmp_path: Path, server: FaultServer, sink: Sink
) -> None:
    settings = make_settings(tmp_path, server, sink)
    server.faults.mode = "error"
    first = Engine(settings, Store(settings.store.path))
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await async_wait_for(lambda: count(sink, "[FIRING] ep") == 1, what="first page")
    stop.set()
    await task

    second = Engine(settings, Store(settings.store.path))
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        await async_wait_for(lambda: second.leader, what="restarted engine leads")
        # Still down: many probes later, the adopted alert is still the only one and still firing.
        probes = second.stats.probes
        await async_wait_for(lambda: second.stats.probes >= probes + 10, what="probes after restart")
        alerts = await asyncio.to_thread(second.store.list_alerts)
        assert [(a.rule, a.state) for a in alerts] == [("down", "firing")]
        assert count(sink, "[RESOLVED]") == 0 and count(sink, "[FIRING]") == 1
        assert second.snapshot().endpoints[0].firing == ("down",)
        server.faults.mode = "ok"
        await async_wait_for(lambda: count(sink, "[RESOLVED] ep") == 1, what="one resolve after recovery")
    finally:
        stop.set()
        await task
    assert count(sink, "[FIRING]") == 1 and count(sink, "[RESOLVED]") == 1
    alerts = await asyncio.to_thread(second.store.list_alerts)
    assert [(a.rule, a.state) for a in alerts] == [("down", "resolved")]


async def test_second_engine_taking_over_the_lease_adopts_the_outage(
    tmp_path: Path, server: FaultServer, sink: Sink
) -> None:
    settings = make_settings(tmp_path, server, sink)
    leader = Engine(settings, Store(settings.store.path))
    follower = Engine(settings, Store(settings.store.path))
    stop_leader, stop_follower = asyncio.Event(), asyncio.Event()
    leading = asyncio.create_task(leader.run(stop_leader))
    await async_wait_for(lambda: leader.leader, what="leader")
    following = asyncio.create_task(follower.run(stop_follower))
    try:
        await async_wait_for(lambda: follower.follow_owner, what="follower")
        server.faults.mode = "reset"
        await async_wait_for(lambda: count(sink, "[FIRING] ep") == 1, what="page from the leader")
        stop_leader.set()
        await leading
        await async_wait_for(lambda: follower.leader, timeout=20, what="takeover")
        probes = follower.stats.probes
        await async_wait_for(lambda: follower.stats.probes >= probes + 10, what="probes after takeover")
        assert count(sink, "[RESOLVED]") == 0 and count(sink, "[FIRING]") == 1
        server.faults.mode = "ok"
        await async_wait_for(lambda: count(sink, "[RESOLVED] ep") == 1, what="one resolve after recovery")
    finally:
        stop_leader.set()
        stop_follower.set()
        await asyncio.gather(leading, following)
    assert count(sink, "[FIRING]") == 1 and count(sink, "[RESOLVED]") == 1


def test_conditions_clear_only_on_evidence(tmp_path: Path) -> None:
    from mlops_console.config import parse_settings
    from mlops_console.core.adapters import ProbeResult
    from mlops_console.core.conditions import evaluate
    from mlops_console.core.conditions.traffic import MIN_LATENCY_SAMPLES

    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "endpoints": [{"name": "ep", "url": "http://127.0.0.1:9", "interval": 1.0}],
        }
    )
    engine = Engine(settings, Store(settings.store.path))
    state = engine.endpoints["ep"]

    def verdicts(now: float) -> dict[str, bool | None]:
        return {c.rule: c.active for c in evaluate(settings, state.reading(now))}

    assert verdicts(1000.0)["down"] is None, "no probe yet says nothing"
    state.record(ProbeResult(ok=False, error="refused"), 1000.0)
    assert verdicts(1000.0)["down"] is None, "one failure is below the threshold but is not clear"
    state.record(ProbeResult(ok=False, error="refused"), 1001.0)
    assert verdicts(1001.0)["down"] is True
    state.record(ProbeResult(ok=True, latency=0.01, valid=True), 1002.0)
    after_one = verdicts(1002.0)
    assert after_one["down"] is False and after_one["invalid_prediction"] is False
    assert after_one["latency_p95"] is None, "a p95 of one probe cannot clear a latency alert"
    for i in range(MIN_LATENCY_SAMPLES - 1):
        state.record(ProbeResult(ok=True, latency=0.01, valid=True), 1003.0 + i)
    assert verdicts(1003.0 + i)["latency_p95"] is False
    state.record(ProbeResult(ok=True, latency=0.01, valid=False, error="bad shape"), 1010.0)
    assert verdicts(1010.0)["invalid_prediction"] is None
    state.record(ProbeResult(ok=True, latency=0.01, valid=False, error="bad shape"), 1011.0)
    assert verdicts(1011.0)["invalid_prediction"] is True
    assert verdicts(1011.0)["version_mismatch"] is None, "no versions known: no verdict"
    state.served_version = "3"
    state.expect("3", "production")
    assert verdicts(1011.0)["version_mismatch"] is False
