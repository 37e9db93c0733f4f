"""The engine against a fault-injecting loopback server and a real apprise `json://` sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.engine import Engine
from mlops_console.core.store import Store
from tests._loopback import FaultServer, Sink, async_wait_for

PAYLOAD = {"dataframe_split": {"columns": ["a"], "data": [[1.0], [2.0]]}}


def make_settings(tmp_path: Path, server: FaultServer, sink: Sink, **endpoint: Any) -> Settings:
    rules = endpoint.pop("rules", [])
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {
                    "name": "ep",
                    "url": server.url,
                    "interval": 0.2,
                    "timeout": 0.5,
                    "payload": PAYLOAD,
                    **endpoint,
                }
            ],
            "notifications": [{"url": sink.url}],
            "rules": rules,
        }
    )


class Running:
    def __init__(self, settings: Settings) -> None:
        self.store = Store(settings.store.path)
        self.engine = Engine(settings, self.store)
        self.stop = asyncio.Event()

    @property
    def snap(self):  # type: ignore[no-untyped-def]
        return self.engine.snapshot().endpoints[0]

    async def alerts(self, state: str = "all") -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.list_alerts, state)


@pytest.fixture
async def running(
    tmp_path: Path, server: FaultServer, sink: Sink, request: pytest.FixtureRequest
) -> AsyncIterator:
    extra = dict(getattr(request, "param", {}))
    if extra.get("metrics_url") == "METRICS":
        extra["metrics_url"] = f"{server.url}/metrics"
    run = Running(make_settings(tmp_path, server, sink, **extra))
    task = asyncio.create_task(run.engine.run(run.stop))
    yield run
    run.stop.set()
    await task


async def test_down_fires_once_and_resolves_with_deliveries(
    running: Running, server: FaultServer, sink: Sink
) -> None:
    await async_wait_for(lambda: running.snap.health == "up", what="endpoint up")
    server.faults.mode = "reset"
    await async_wait_for(
        lambda: any("[FIRING] ep: endpoint down" in t for t in sink.titles()), what="down page"
    )
    firing = await running.alerts("firing")
    assert [a.rule for a in firing] == ["down"]
    assert "connection" in firing[0].summary or "closed" in firing[0].summary
    server.faults.mode = "ok"
    await async_wait_for(
        lambda: any("[RESOLVED] ep: endpoint down" in t for t in sink.titles()), what="resolve"
    )
    alerts = await running.alerts()
    assert len(alerts) == 1 and alerts[0].state == "resolved"
    # One page per state change, never one per failed probe.
    assert sum("FIRING" in t for t in sink.titles()) == 1
    events = [e.kind for e in running.store.events(alerts[0].id)]
    assert events[:2] == ["fired", "notified"] and "resolved" in events


@pytest.mark.parametrize(
    "running", [{"rules": [{"rule": "latency_p95", "threshold": 0.1, "for": "0.5s"}]}], indirect=True
)
async def test_slow_endpoint_raises_latency_alert_naming_value_and_threshold(
    running: Running, server: FaultServer, sink: Sink
) -> None:
    server.faults.delay = 0.25
    await async_wait_for(lambda: any("latency p95 high" in t for t in sink.titles()), what="latency page")
    body = next(m["message"] for m in sink.received if "latency" in m["title"])
    assert "> 100 ms" in body and "ep latency p95" in body
    assert running.snap.health == "degraded"


async def test_wrong_shape_is_an_invalid_prediction_not_down(
    running: Running, server: FaultServer, sink: Sink
) -> None:
    server.faults.mode = "wrong_shape"
    await async_wait_for(lambda: any("invalid predictions" in t for t in sink.titles()), what="invalid page")
    assert running.snap.last_error == "expected 2 predictions, got 0"
    assert not any("endpoint down" in t for t in sink.titles())


async def test_garbage_body_is_reported_cut_and_escaped(running: Running, server: FaultServer) -> None:
    server.faults.mode = "garbage"
    await async_wait_for(
        lambda: running.snap.last_error and "not JSON" in running.snap.last_error, what="garbage"
    )
    assert running.snap.health == "degraded"


async def test_answer_over_the_cap_is_too_large_and_pages_nobody(
    running: Running, server: FaultServer, sink: Sink
) -> None:
    """A 6 MB answer cannot be checked: the endpoint answered, so it is up, and nobody is paged for
    `invalid_prediction` (or `down`) because of its size; the reason stays visible."""
    server.faults.mode = "huge"
    await async_wait_for(
        lambda: running.snap.last_error and "response too large" in running.snap.last_error,
        what="huge answer reported",
    )
    seen = running.snap.probes
    # The invalid_prediction and down rules fire after 2 probes: give them 4 chances.
    await async_wait_for(lambda: running.snap.probes >= seen + 4, what="more probes of the huge answer")
    snap = running.snap
    assert (snap.health, snap.consecutive_failures) == ("up", 0)
    assert (
        snap.last_error == "response too large (over 1048576 bytes) from /invocations: prediction not checked"
    )
    assert await running.alerts() == [] and sink.received == []


@pytest.mark.parametrize(
    "running", [{"metrics_url": "METRICS", "rules": [{"rule": "error_ratio", "for": 0}]}], indirect=True
)
async def test_metrics_give_throughput_and_error_bursts_alert(
    running: Running, server: FaultServer, sink: Sink
) -> None:
    await async_wait_for(
        lambda: running.snap.rps is not None and running.snap.rps > 0,
        timeout=20,
        what="throughput from /metrics",
    )
    assert running.snap.latency_source == "metrics"
    server.faults.error_rate = 0.5
    await async_wait_for(
        lambda: any("error ratio high" in t for t in sink.titles()), timeout=20, what="error ratio page"
    )
    assert running.snap.error_ratio is not None and running.snap.error_ratio > 0.05


async def test_without_metrics_throughput_is_unknown_not_zero(running: Running) -> None:
    await async_wait_for(lambda: running.snap.probes >= 3, what="probes")
    assert running.snap.rps is None


async def test_served_version_comes_from_model_info(running: Running, server: FaultServer) -> None:
    await async_wait_for(lambda: running.snap.served_version == "1", what="served version")
    assert running.snap.health == "up"
    server.version = "7"  # a redeploy: the next probes report what it serves now
    await async_wait_for(lambda: running.snap.served_version == "7", what="the new served version")
    assert running.snap.served_version == "7"


async def test_second_engine_on_the_same_store_follows_instead_of_paging_twice(
    running: Running, server: FaultServer, sink: Sink, tmp_path: Path
) -> None:
    await async_wait_for(lambda: running.snap.health == "up", what="leader probing")
    follower = Engine(running.engine.settings, Store(running.engine.settings.store.path))
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    try:
        await async_wait_for(
            lambda: follower.follow_owner and follower.snapshot().endpoints, what="following"
        )
        assert follower.snapshot().owner.startswith("pid ")
        assert follower.snapshot().endpoints[0].name == "ep"
        server.faults.mode = "error"
        await async_wait_for(lambda: any("FIRING" in t for t in sink.titles()), what="page")
        await async_wait_for(
            lambda: follower.snapshot().endpoints[0].health == "down", what="follower sees down"
        )
        assert not follower.leader
    finally:
        stop.set()
        await task
    assert sum("FIRING" in t for t in sink.titles()) == 1


@pytest.mark.parametrize(
    "running", [{"rules": [{"rule": "latency_p95", "threshold": 0.05, "for": "1h"}]}], indirect=True
)
async def test_pending_condition_shows_in_snapshot_without_paging(
    running: Running, server: FaultServer, sink: Sink
) -> None:
    server.faults.delay = 0.1
    await async_wait_for(lambda: running.engine.snapshot().pending, what="pending rule in snapshot")
    assert running.engine.snapshot().pending == ("ep:latency_p95 (pending)",)
    assert running.snap.health == "degraded"
    assert await running.alerts() == [] and sink.received == []


@pytest.mark.parametrize(
    "running",
    [
        {
            "metrics_url": "METRICS",
            "rules": [{"rule": "error_ratio_anomaly", "every": "1s", "params": {"warmup": 2}}],
        }
    ],
    indirect=True,
)
async def test_a_counter_claiming_1e18_requests_is_judged_without_holding_the_loop(
    running: Running, server: FaultServer
) -> None:
    # A misread or hostile counter: the error-ratio test's exact tail over 1e18 requests took minutes
    # of the engine's loop, a poll at a time. It is judged at once, and the probes go on.
    def judged() -> str:
        return next((d for d in running.snap.detection if d.startswith("error_ratio_anomaly: ")), "")

    await async_wait_for(lambda: "errors in" in judged(), timeout=30, what="an error ratio judged")
    # On the server's thread: its counting of a request beside this would lose one of the two.
    server.run_in_server(lambda: setattr(server, "requests", server.requests + 10**18))
    # Judged as its share of errors in ten million requests (the most a test is computed over).
    await async_wait_for(lambda: " in 10000000 requests" in judged(), timeout=30, what="1e18 judged")
    probes = running.snap.probes
    await async_wait_for(lambda: running.snap.probes >= probes + 10, timeout=30, what="probes go on")
    assert running.snap.health == "up"
