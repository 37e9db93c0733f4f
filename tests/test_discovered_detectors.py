"""An endpoint found by `[[discover]]` continues with the detector state stored for it (by this watcher
before a restart, or by another), as a configured one does when the engine starts leading, instead of
learning its baseline from scratch: half an hour blind to its anomalies after every restart. The real
engine on a real store file; a loopback Prometheus answers discovery and the figures."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.conditions import evaluate
from mlops_console.core.conditions.detected import DetectedRules
from mlops_console.core.engine import Engine
from mlops_console.core.housekeeping import write_detector_states
from mlops_console.core.store import Store
from tests._loopback import async_wait_for
from tests.test_detection_rules import reading
from tests.test_prometheus_source import RPS, FakePrometheus

NAMES = [f"m-{instance}" for instance in RPS]
LEARNING = "learning the baseline"


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.stop()


def discovering(tmp_path: Path, url: str) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "prometheus": {"url": url, "interval": 0.2, "timeout": 2.0},
            "discover": [{"selector": 'up{job="models"}', "name": "m-{instance}"}],
            "rules": [{"rule": "latency_anomaly", "every": "1s"}],
        }
    )


def learnt(settings: Settings) -> dict:
    """What a watcher before the restart stored: a latency baseline past its warm-up, around the
    50 ms Prometheus answers."""
    detected = DetectedRules()
    for i in range(40):
        evaluate(settings, reading(1000.0 + i, (0.049, 0.050, 0.051)[i % 3]), detected)
    state = detected.take_state()
    assert state is not None and "latency_anomaly" in state
    return state


async def test_a_discovered_endpoint_continues_from_its_stored_detector_state(
    tmp_path: Path, prometheus: FakePrometheus
) -> None:
    settings = discovering(tmp_path, prometheus.url)
    restored, fresh = NAMES[0], NAMES[1]
    store = Store(settings.store.path)
    store.write_detector_state({restored: learnt(settings), "elsewhere": learnt(settings)})
    assert store.read_detector_state([restored, "absent"]).keys() == {restored}, "those asked for alone"
    many = {f"e{i}": {"rule": {}} for i in range(1201)}  # more names than one statement takes
    store.write_detector_state(many)
    assert store.read_detector_state([*many, "absent"]) == many
    engine = Engine(settings, Store(settings.store.path))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    def said(name: str) -> str:
        state = engine.endpoints.get(name)
        return " ".join(state.snapshot().detection) if state is not None else ""

    try:

        def judged(name: str) -> bool:
            return "latency_anomaly" in said(name) and "latency_anomaly: waiting" not in said(name)

        await async_wait_for(lambda: all(judged(n) for n in NAMES), what="a latency judged for each")
        assert LEARNING in said(fresh), "nothing stored for it: it learns"
        assert LEARNING not in said(restored), said(restored)
        assert "latency_anomaly: 50 ms, expected up to" in said(restored), said(restored)
        assert not engine.found_endpoints, "read once"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


def test_a_discovered_endpoint_whose_target_changed_keeps_what_its_detectors_learnt(
    tmp_path: Path, prometheus: FakePrometheus
) -> None:
    """Found again with other settings (its target's labels changed): a new state, the same learning."""
    from mlops_console.config import EndpointSettings
    from mlops_console.core.endpoint_state import EndpointState
    from mlops_console.core.sources.prometheus import PrometheusSource
    from tests.test_prometheus_source import run_round

    settings = discovering(tmp_path, prometheus.url)
    before = EndpointSettings(name=NAMES[0], url="http://10.9.9.9:1", source="prometheus", prometheus_id="x")
    old = EndpointState(before, source="prometheus", health_source="prometheus", discovered=True)
    old.detected.load(learnt(settings))
    endpoints = {NAMES[0]: old}
    run_round(PrometheusSource(settings, endpoints))
    now = endpoints[NAMES[0]]
    assert now is not old and now.settings.url != before.url
    assert now.detected is old.detected


class ComingAndGoing(FakePrometheus):
    """The loopback Prometheus, with a latency p95 the test sets and instances it can take away (from
    discovery and from every figure, as a target gone takes its series with it)."""

    def __init__(self) -> None:
        self.p95 = 0.050
        self.hidden: set[str] = set()
        super().__init__()

    def answer(self, query: str) -> tuple[int, bytes]:
        status, body = super().answer(query)
        document = json.loads(body)
        result = document["data"]["result"]
        document["data"]["result"] = [s for s in result if s["metric"]["instance"] not in self.hidden]
        if "histogram_quantile(0.95," in query or "histogram_quantile(0.99," in query:
            for sample in document["data"]["result"]:
                sample["value"][1] = str(self.p95)
        return status, json.dumps(document).encode()


@pytest.mark.parametrize("written", [True, False], ids=["going-written", "store-locked-meanwhile"])
async def test_an_endpoint_gone_for_good_and_found_again_pages_only_for_what_it_does_now(
    tmp_path: Path, written: bool
) -> None:
    """A discovered endpoint whose latency anomaly fired, then went for good (its alert resolved, saying
    so), comes back later with an ordinary latency: the verdicts of the incident it left with are no
    evidence about it now, and no alert opens (they paged it again at its first value). Also when the
    store was locked from its going until it was found again, so its going was not written yet."""
    fake = ComingAndGoing()
    try:
        settings = discovering(tmp_path, fake.url)
        settings = settings.model_copy(
            update={"prometheus": settings.prometheus.model_copy(update={"discover_grace": 0.5})}
        )
        name, instance = NAMES[0], next(iter(RPS))
        store = Store(settings.store.path)
        stored = learnt(settings)
        store.write_detector_state({name: stored})
        engine = Engine(settings, Store(settings.store.path, lock_timeout=0.2))
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))

        def said() -> str:
            state = engine.endpoints.get(name)
            return " ".join(state.snapshot().detection) if state is not None else ""

        def alerts() -> list:
            return [a for a in store.list_alerts(endpoint=name) if a.rule == "latency_anomaly"]

        try:
            await async_wait_for(lambda: "latency_anomaly: 50 ms" in said(), what="its baseline restored")
            fake.p95 = 1.0
            await async_wait_for(lambda: [a.state for a in alerts()] == ["firing"], what="the anomaly fired")
            await async_wait_for(
                lambda: store.read_detector_state([name])[name] != stored, what="the incident's state stored"
            )
            other = sqlite3.connect(settings.store.path, isolation_level=None)
            if not written:
                other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            fake.hidden = {instance}
            await async_wait_for(lambda: name not in engine.endpoints, what="gone for good")
            if written:
                await async_wait_for(lambda: [a.state for a in alerts()] == ["resolved"], what="resolved")
                await async_wait_for(
                    lambda: name not in {row["name"] for row in store.read_status()}, what="its row gone"
                )
            fake.p95, fake.hidden = 0.050, set()
            await async_wait_for(lambda: name in engine.endpoints, what="found again")
            if not written:  # judged once with the store still locked: its going is written after
                await async_wait_for(lambda: "latency_anomaly: 50 ms" in said(), what="judged meanwhile")
                other.execute("COMMIT")
            other.close()
            await async_wait_for(lambda: [a.state for a in alerts()] == ["resolved"], what="going written")
            await async_wait_for(lambda: not store.read_detector_state([name]), what="its old state deleted")
            await async_wait_for(lambda: "latency_anomaly: 50 ms: learning" in said(), what="judged again")
            assert "latency_anomaly" not in engine.endpoints[name].firing, said()
            assert [a.state for a in alerts()] == ["resolved"], "one alert, for the incident it left with"
            # Back for good: what it learns from now on is kept by the store's next writes.
            await write_detector_states(engine, everything=True)
            await engine.write_status()
            assert store.read_detector_state([name]), "its new state deleted by a later status write"
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)
    finally:
        fake.stop()


@pytest.mark.parametrize("damaged", [False, True], ids=["row-intact", "row-damaged"])
async def test_a_discovered_endpoint_missing_at_a_restart_keeps_its_alert_for_the_grace(
    tmp_path: Path, damaged: bool
) -> None:
    """A watcher had discovered an endpoint and paged for it; the next one leads while its target is
    missing from Prometheus for a moment. Its alert waits for discovery's grace, also when its status
    row cannot be read (damaged): such a row cannot say it was discovered, and resolving the alert at
    discovery's first answer ("removed from the configuration") would close an outage still on."""
    from mlops_console.config import EndpointSettings
    from mlops_console.core.alerts.external import open_external_alert
    from mlops_console.core.endpoint_state import EndpointState

    fake = ComingAndGoing()
    try:
        settings = discovering(tmp_path, fake.url)
        name, instance = NAMES[0], next(iter(RPS))
        store = Store(settings.store.path)
        before = Engine(settings, store)
        found = EndpointSettings(
            name=name, url=f"http://{instance}", source="prometheus", prometheus_id=instance
        )
        before.endpoints[name] = EndpointState(
            found, source="prometheus", health_source="prometheus", discovered=True
        )
        await before.write_status()
        down = {"rule": "down", "endpoint": name, "model": None, "version": None, "summary": "down"}
        open_external_alert(store, settings, severity="critical", **down)
        if damaged:
            with sqlite3.connect(settings.store.path) as db:
                db.execute("UPDATE endpoint_status SET data='{\"name\": ' WHERE name=?", [name])
        fake.hidden = {instance}
        engine = Engine(settings, Store(settings.store.path), settles_removed=True)  # a watcher
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        try:
            await async_wait_for(lambda: engine.status_rows.pruned, what="discovery answered, rows pruned")
            pruned_at = time.time()

            def a_round_later() -> bool:
                health = store.engine_health(engine.owner)
                return health is not None and health.updated_at > pruned_at

            await async_wait_for(a_round_later, what="a housekeeping round with discovery answered")
            assert len(engine.endpoints) == len(NAMES) - 1, "the other targets found"
            assert engine.book.is_firing("down", name, None), "resolved before the grace ran out"
            assert engine.prometheus is not None and name in engine.prometheus.remembered
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)
        assert [a.endpoint for a in store.open_alerts()] == [name]
    finally:
        fake.stop()
