"""The console against a real Prometheus (Debian's `prometheus`, our own process, 1 s scrapes)
scraping real `mlops-console serve` endpoints under steady traffic: rates and quantiles read through
Prometheus agree with the console's own scrapes; discovery adds and removes an endpoint as its target
comes and goes; the watcher's `/metrics` is scraped by the same Prometheus and queried back.

One Prometheus and one pair of servers for the whole module."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import new_http_session
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.promscrape import scrape
from mlops_console.core.series import MetricsSample
from mlops_console.core.sources.prometheus import PrometheusSource
from mlops_console.core.sources.prometheus_history import PromError, read_history
from mlops_console.core.store import Store
from tests._loopback import Sink, free_port, wait_for
from tests._prometheus import SCRAPE_INTERVAL, PrometheusServer
from tests._serve_helpers import (
    IRIS_COLUMNS,
    TINY_MODEL,
    process_env,
    spawn,
    stop_group,
    train_tiny_registry,
    wait_ping,
)

pytestmark = pytest.mark.slow

BODY = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}
WINDOW = "10s"
CLI = [sys.executable, "-m", "mlops_console"]
T = TypeVar("T")


@dataclass
class Fleet:
    prometheus: PrometheusServer
    serves: list[str]
    """Base URLs of two `mlops-console serve` processes."""
    console_port: int
    """Where a watcher's `/metrics` is expected (a static target of the same Prometheus)."""


def _instance(url: str) -> str:
    return url.removeprefix("http://")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("prometheus")
    console_port = free_port()
    prometheus = PrometheusServer(root, {"console": [f"127.0.0.1:{console_port}"]})
    tracking_uri = train_tiny_registry(tmp_path_factory.mktemp("registry"))
    procs, urls = [], []
    for index in range(2):
        port, log = free_port(), root / f"serve{index}.log"
        cmd = [
            sys.executable,
            "-m",
            "mlops_console.serve",
            f"models:/{TINY_MODEL}@production",
            "--port",
            str(port),
        ]
        procs.append((spawn(cmd, log, process_env(tracking_uri)), log))
        urls.append(f"http://127.0.0.1:{port}")
    stop = threading.Event()
    try:
        prometheus.wait_ready()
        for url, (proc, log) in zip(urls, procs, strict=True):
            wait_ping(url, proc, log)
        prometheus.set_targets("models", [_instance(urls[0])])

        def traffic() -> None:
            # Steady load on the first server, so its rate and latency mean something.
            with httpx.Client(timeout=5.0) as client:
                while not stop.is_set():
                    client.post(f"{urls[0]}/invocations", json=BODY)
                    stop.wait(0.05)

        threading.Thread(target=traffic, daemon=True).start()
        yield Fleet(prometheus, urls, console_port)
    finally:
        stop.set()
        for proc, _ in procs:
            stop_group(proc)
        prometheus.stop()


def _settings(fleet: Fleet, body: str) -> Any:
    text = (
        f'[prometheus]\nurl = "{fleet.prometheus.url}"\nwindow = "{WINDOW}"\ninterval = 1\n'
        f"discover_grace = 1\n{body}"
    )
    return parse_settings(tomllib.loads(text), known_adapters={"mlflow"})


def _discovering_watch_config(tmp_path: Path, fleet: Fleet, sink: Sink, grace: int) -> Path:
    """A `watch` config: the fleet's models found by `[[discover]]`, every page to `sink`."""
    config = tmp_path / "console.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "console.db"}"\n'
        f'[prometheus]\nurl = "{fleet.prometheus.url}"\nwindow = "{WINDOW}"\ninterval = 1\n'
        f"discover_grace = {grace}\n"
        '[[discover]]\ntargets = {job = "models"}\nname = "m-{instance}"\n'
        f'[[notifications]]\nurl = "{sink.url}"\n'
    )
    return config


def _round(source: PrometheusSource) -> None:
    async def go() -> None:
        async with new_http_session() as http:
            await source.evaluate(http, None)

    asyncio.run(go())


def _direct(url: str, settings: Any) -> MetricsSample:
    endpoint = settings.endpoints[0]

    async def go() -> MetricsSample:
        async with new_http_session() as http:
            return await scrape(http, f"{url}/metrics", endpoint.metrics, 5.0)

    return asyncio.run(go())


def test_rates_and_quantiles_through_prometheus_agree_with_direct_scrapes(fleet: Fleet) -> None:
    url = fleet.serves[0]
    settings = _settings(
        fleet,
        f'[[endpoints]]\nname = "a"\nurl = "{url}"\nsource = "prometheus"\nmetrics_url = "{url}/metrics"\n',
    )
    state = EndpointState(settings.endpoints[0], source="prometheus", health_source="prometheus")
    source = PrometheusSource(settings, {"a": state})

    def through_prometheus() -> bool:
        _round(source)
        return state.prom is not None and state.prom.rps is not None and state.prom.p95 is not None

    wait_for(through_prometheus, timeout=60, interval=0.5, what="a rate through Prometheus")
    # Direct: two scrapes one rate window apart; Prometheus: its rate over the window ending now.
    direct = EndpointState(settings.endpoints[0])
    first = _direct(url, settings)
    direct.series.add_metrics(first)
    wait_for(lambda: _direct(url, settings).at - first.at >= 10.0, timeout=20, interval=0.5, what="10 s")
    direct.series.add_metrics(_direct(url, settings))
    _round(source)
    mine = direct.series.metric_stats(first.at + 60, 60.0)
    theirs = state.prom
    assert theirs is not None and mine.rps is not None and mine.p95 is not None
    assert theirs.rps is not None and theirs.p95 is not None
    # The two windows differ by up to a scrape interval at each end (and Prometheus extrapolates):
    # within that share of a 10 s window.
    tolerance = 2 * SCRAPE_INTERVAL / 10.0 + 0.1
    assert abs(theirs.rps - mine.rps) <= tolerance * mine.rps, (theirs.rps, mine.rps)
    assert abs(theirs.p95 - mine.p95) <= max(0.5 * mine.p95, 0.005), (theirs.p95, mine.p95)
    assert (theirs.error_ratio, mine.error_ratio) == (0.0, 0.0)
    assert state.snapshot().health == "up" and state.snapshot().health_source == "prometheus"
    assert theirs.p50 is not None and state.snapshot().latency_history[-1] == round(theirs.p50, 6)
    print(
        f"rps {theirs.rps:.2f} via Prometheus, {mine.rps:.2f} direct; "
        f"p95 {theirs.p95:.4f} s, {mine.p95:.4f} s"
    )


def test_history_from_query_range_agrees_with_the_instant_round(fleet: Fleet) -> None:
    """The detail charts' history of a Prometheus-sourced endpoint (`query_range`, read outside the
    engine) ends where the instant round is: within a scrape interval's share of the window."""
    url = fleet.serves[0]
    settings = _settings(fleet, f'[[endpoints]]\nname = "a"\nurl = "{url}"\nsource = "prometheus"\n')
    endpoint = settings.endpoints[0]
    state = EndpointState(endpoint, source="prometheus", health_source="prometheus")
    source = PrometheusSource(settings, {"a": state})

    def rated() -> bool:
        _round(source)
        return state.prom is not None and state.prom.rps is not None and state.prom.p95 is not None

    wait_for(rated, timeout=60, interval=0.5, what="a rate through Prometheus")
    wait_for(
        lambda: len(read_history(settings, endpoint, time.time() - 60, time.time(), 5.0)) >= 6,
        timeout=60,
        interval=1.0,
        what="half a minute of rates in Prometheus",
    )
    _round(source)
    assert state.prom is not None and state.prom.rps is not None and state.prom.p95 is not None
    history = read_history(settings, endpoint, state.prom.at - 60, state.prom.at, 5.0)
    assert len(history) >= 6 and all(r.endpoint == "a" for r in history)
    last = history[-1]
    assert last.rps is not None and last.p95 is not None and last.error_ratio == 0.0
    tolerance = 2 * SCRAPE_INTERVAL / 10.0 + 0.1
    assert abs(last.rps - state.prom.rps) <= tolerance * state.prom.rps, (last.rps, state.prom.rps)
    assert abs(last.p95 - state.prom.p95) <= max(0.5 * state.prom.p95, 0.005), (last.p95, state.prom.p95)
    # Prometheus unreachable: one clear error, nothing made up.
    gone = settings.model_copy(
        update={
            "prometheus": settings.prometheus.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})
        }
    )
    with pytest.raises(PromError, match="unreachable"):
        read_history(gone, endpoint, state.prom.at - 60, state.prom.at, 5.0)


def test_discovery_adds_and_removes_an_endpoint_with_its_target(fleet: Fleet) -> None:
    a, b = (_instance(u) for u in fleet.serves)
    settings = _settings(
        fleet,
        '[[discover]]\ntargets = {job = "models"}\nname = "{job}-{instance}"\n'
        '[[discover]]\nselector = \'up{job="models"}\'\nname = "sel-{instance}"\n',
    )
    endpoints: dict[str, EndpointState] = {}
    source = PrometheusSource(settings, endpoints)

    def names() -> set[str]:
        _round(source)
        return set(endpoints)

    wait_for(lambda: names() >= {f"models-{a}", f"sel-{a}"}, timeout=30, interval=0.5, what="a discovered")
    assert f"models-{b}" not in endpoints
    fleet.prometheus.set_targets("models", [a, b])
    try:
        wait_for(lambda: names() >= {f"models-{b}", f"sel-{b}"}, timeout=30, interval=0.5, what="b found")
        found = endpoints[f"models-{b}"]
        assert found.settings.url == fleet.serves[1] and found.settings.prometheus_id == b
        wait_for(
            lambda: names() and endpoints[f"models-{b}"].snapshot().health == "up", timeout=30, what="b up"
        )
    finally:
        fleet.prometheus.set_targets("models", [a])
    wait_for(lambda: not names() & {f"models-{b}", f"sel-{b}"}, timeout=30, interval=0.5, what="b gone")
    assert {f"models-{a}", f"sel-{a}"} <= set(endpoints)


def test_the_watchers_own_metrics_are_scraped_and_queried_back(fleet: Fleet, tmp_path: Path) -> None:
    url = fleet.serves[0]
    config = tmp_path / "console.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "console.db"}"\n'
        f'[[endpoints]]\nname = "served"\nurl = "{url}"\nmetrics_url = "{url}/metrics"\ninterval = 0.5\n'
    )
    watch = subprocess.Popen(
        [*CLI, "--config", str(config), "watch", "--metrics-addr", f"127.0.0.1:{fleet.console_port}"],
        stderr=subprocess.PIPE,
        text=True,
        env=process_env(),
    )
    try:

        def queried(promql: str) -> list[dict[str, Any]]:
            return fleet.prometheus.query(promql)

        wait_for(
            lambda: queried('mlops_console_watchdog{job="console"} == 1'),
            timeout=60,
            interval=0.5,
            what="watchdog",
        )
        wait_for(
            lambda: queried('mlops_console_endpoint_up{job="console",endpoint="served"} == 1'),
            timeout=60,
            interval=0.5,
            what="the watcher's view of its endpoint",
        )
        probes = wait_for(
            lambda: queried(
                'rate(mlops_console_probes_total{job="console",endpoint="served",result="ok"}[5s]) > 0'
            ),
            timeout=60,
            interval=0.5,
            what="probe rate",
        )
        # Probing every 0.5 s: about 2 probes a second, as Prometheus computes it from our counter.
        assert 0.5 <= float(probes[0]["value"][1]) <= 4.0
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err[-2000:]
    assert os.path.exists(tmp_path / "console.db")


def test_the_shipped_dashboard_and_rules_are_valid_promql(fleet: Fleet) -> None:
    from tests.test_shipped_monitoring import PROMETHEUS, dashboard_queries

    rules = re.findall(
        r"^\s+expr: (.+(?:\n\s{10}.+)*)", (PROMETHEUS / "mlops-console.rules.yml").read_text(), re.M
    )
    assert len(rules) >= 5
    for query in [*dashboard_queries(), *rules]:
        promql = query.replace("$instance", ".*").replace("$__rate_interval", "1m")
        # Grafana's `label_values(series, label)` asks Prometheus for that series' labels.
        promql = re.sub(r"^label_values\((.+), \w+\)$", r"\1", promql)
        answer = httpx.get(
            f"{fleet.prometheus.url}/api/v1/query", params={"query": promql}, timeout=5.0
        ).json()
        assert answer["status"] == "success", (promql, answer)


def test_a_discovered_endpoint_that_goes_resolves_its_alerts_once(
    fleet: Fleet, sink: Sink, tmp_path: Path
) -> None:
    """A dead replica (its target answers nothing) pages `down`; its target leaving service discovery
    and coming back within the grace changes nothing; leaving for good resolves the alert once, saying
    why, in the store and in one page, and nothing else pages."""
    a = _instance(fleet.serves[0])
    dead = f"127.0.0.1:{free_port()}"
    name = f"m-{dead}"
    grace = 10
    config = _discovering_watch_config(tmp_path, fleet, sink, grace)
    events: list[dict[str, Any]] = []
    fleet.prometheus.set_targets("models", [a, dead])
    watch = subprocess.Popen(
        [*CLI, "--config", str(config), "watch", "--log-format", "json"],
        stderr=subprocess.PIPE,
        text=True,
        env=process_env(),
    )

    def read_log() -> None:
        assert watch.stderr is not None
        for line in watch.stderr:
            if line.startswith("{"):
                events.append(json.loads(line))

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()

    def logged(event: str) -> list[dict[str, Any]]:
        return [e for e in list(events) if e.get("event") == event and e.get("endpoint") == name]

    def pages(kind: str) -> list[dict[str, Any]]:
        return [m for m in sink.received if m.get("title", "").startswith(f"[{kind}] {name}")]

    def rounds() -> int:
        rows = {row["name"]: row for row in _read(tmp_path, Store.read_status)}
        return int(rows[name]["probes"]) if name in rows else 0

    try:
        wait_for(lambda: pages("FIRING"), timeout=60, interval=0.2, what="the dead replica's down page")

        # Out of discovery and back within the grace: held, not judged, then carrying on.
        fleet.prometheus.set_targets("models", [a])
        wait_for(lambda: logged("endpoint_missing"), timeout=30, interval=0.2, what="missing")
        missing_seen = time.monotonic()
        fleet.prometheus.set_targets("models", [a, dead])
        wait_for(lambda: logged("endpoint_back"), timeout=30, interval=0.2, what="back")
        # Read (and judged) again, past the end of the grace it would have had: it did not go.
        start = rounds()
        wait_for(
            lambda: time.monotonic() - missing_seen > grace and rounds() >= start + 3,
            timeout=90,
            interval=0.5,
            what="rounds past the grace",
        )
        assert not logged("endpoint_gone") and not pages("RESOLVED")

        # Out for good: gone after the grace, its alert resolved once, saying why.
        fleet.prometheus.set_targets("models", [a])
        wait_for(lambda: pages("RESOLVED"), timeout=60, interval=0.2, what="the resolve page")
        wait_for(lambda: name not in _status_names(tmp_path), timeout=30, interval=0.5, what="row gone")
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait(10)
        fleet.prometheus.set_targets("models", [a])
    reader.join(timeout=10)
    assert watch.returncode == 0, events[-5:]
    assert len(pages("FIRING")) == 1 and len(pages("RESOLVED")) == 1, sink.titles()
    assert "no longer discovered in Prometheus" in pages("RESOLVED")[0]["message"]
    assert all(name in title for title in sink.titles()), sink.titles()  # nothing else paged
    assert len(logged("endpoint_gone")) == 1
    (alert,) = _read(tmp_path, lambda store: store.list_alerts(endpoint=name))
    assert alert.state == "resolved"
    notes = [
        e.note or "" for e in _read(tmp_path, lambda store: store.events(alert.id)) if e.kind == "resolved"
    ]
    assert len(notes) == 1 and "no longer discovered in Prometheus" in notes[0]


def _read(root: Path, what: Callable[[Store], T]) -> T:
    store = Store(root / "console.db")
    try:
        return what(store)
    finally:
        store.close()


def _status_names(root: Path) -> set[str]:
    return {row["name"] for row in _read(root, Store.read_status)}


class _Watcher:
    """A `watch --log-format json` process and the events it logs."""

    def __init__(self, config: Path) -> None:
        self.events: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [*CLI, "--config", str(config), "watch", "--log-format", "json"],
            stderr=subprocess.PIPE,
            text=True,
            env=process_env(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def logged(self, event: str, endpoint: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == event and e.get("endpoint") == endpoint]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(timeout=10)
        assert self.proc.returncode == 0, self.events[-5:]


def test_a_discovered_endpoints_alert_across_watcher_restarts(
    fleet: Fleet, sink: Sink, tmp_path: Path
) -> None:
    """A dead replica pages `down` once. A restart while it is still discovered (and still dead)
    neither resolves nor pages it again; a restart after its target left discovery resolves it once,
    after the grace, saying it was no longer discovered after the restart; nothing else pages."""
    a = _instance(fleet.serves[0])
    dead = f"127.0.0.1:{free_port()}"
    name = f"m-{dead}"
    grace = 3
    config = _discovering_watch_config(tmp_path, fleet, sink, grace)

    def pages(kind: str) -> list[dict[str, Any]]:
        return [m for m in sink.received if m.get("title", "").startswith(f"[{kind}] {name}")]

    def rounds() -> int:
        rows = {row["name"]: row for row in _read(tmp_path, Store.read_status)}
        return int(rows[name]["probes"]) if name in rows else 0

    fleet.prometheus.set_targets("models", [a, dead])
    try:
        first = _Watcher(config)
        try:
            wait_for(lambda: pages("FIRING"), timeout=60, interval=0.2, what="the dead replica's down page")
        finally:
            first.stop()
        assert name in _status_names(tmp_path)

        # Restarted while it is still discovered: the same open alert carries on.
        before = rounds()
        second = _Watcher(config)
        try:
            wait_for(lambda: rounds() >= before + grace + 3, timeout=60, interval=0.5, what="rounds")
        finally:
            second.stop()
        assert not pages("RESOLVED") and len(pages("FIRING")) == 1, sink.titles()

        # Restarted after its target left discovery: resolved once, after the grace.
        fleet.prometheus.set_targets("models", [a])
        wait_for(lambda: dead not in _active_targets(fleet), timeout=30, interval=0.5, what="target out")
        third = _Watcher(config)
        try:
            wait_for(lambda: pages("RESOLVED"), timeout=60, interval=0.2, what="the resolve page")
            wait_for(lambda: name not in _status_names(tmp_path), timeout=30, interval=0.5, what="row gone")
        finally:
            third.stop()
    finally:
        fleet.prometheus.set_targets("models", [a])
    assert len(pages("FIRING")) == 1 and len(pages("RESOLVED")) == 1, sink.titles()
    assert "after the watcher restarted" in pages("RESOLVED")[0]["message"]
    assert all(name in title for title in sink.titles()), sink.titles()  # nothing else paged
    assert len(third.logged("endpoint_gone", name)) == 1
    (alert,) = _read(tmp_path, lambda store: store.list_alerts(endpoint=name))
    assert alert.state == "resolved"
    events = _read(tmp_path, lambda store: store.events(alert.id))
    notes = [e.note or "" for e in events if e.kind == "resolved"]
    assert len(notes) == 1 and "no longer discovered in Prometheus" in notes[0]
    assert notes[0].count("last seen by the watcher at") == 1


def _active_targets(fleet: Fleet) -> set[str]:
    answer = httpx.get(f"{fleet.prometheus.url}/api/v1/targets", timeout=5.0).json()
    return {t["labels"]["instance"] for t in answer["data"]["activeTargets"]}


class _GoneSink:
    """The engine's side of discovery, recorded: which endpoints went, and why."""

    def __init__(self) -> None:
        self.gone: list[tuple[str, str]] = []

    def probed(self, state: EndpointState, result: Any, now: float) -> None:
        state.record(result, now)

    def quality_evaluated(self, state: EndpointState, quality: Any, every: float, now: float) -> None:
        raise AssertionError("no quality here")

    def endpoint_gone(self, name: str, reason: str, now: float) -> None:
        self.gone.append((name, reason))

    def endpoints_found(self, names: Any) -> None:
        pass


def test_a_remembered_endpoint_goes_only_after_discovery_answered_for_the_grace(fleet: Fleet) -> None:
    """A watcher that starts while Prometheus is unreachable resolves nothing for the endpoints the last
    one had discovered, however long that lasts; once discovery answers, one still not found goes
    after the grace (counted from that answer), one found again stays."""
    a = _instance(fleet.serves[0])
    settings = _settings(fleet, '[[discover]]\ntargets = {job = "models"}\nname = "m-{instance}"\n')
    seen: dict[str, EndpointState] = {}
    ready = PrometheusSource(settings, seen)
    wait_for(lambda: _round(ready) or f"m-{a}" in seen, timeout=60, interval=0.5, what="the target active")
    endpoints: dict[str, EndpointState] = {}
    source = PrometheusSource(settings, endpoints)
    source.remember({"m-127.0.0.1:9": 1000.0, f"m-{a}": None})
    reachable = source.client
    source.client = dataclasses.replace(reachable, url=f"http://127.0.0.1:{free_port()}")
    sink = _GoneSink()

    def round_() -> None:
        async def go() -> None:
            async with new_http_session() as http:
                await source.evaluate(http, sink)

        asyncio.run(go())

    unreachable_since = time.monotonic()
    wait_for(
        lambda: round_() or time.monotonic() - unreachable_since > 2 * settings.prometheus.discover_grace,
        timeout=30,
        interval=0.3,
        what="rounds past the grace, Prometheus unreachable",
    )
    assert sink.gone == [] and "unreachable" in source.state
    source.client = reachable
    answered = time.monotonic()
    round_()
    assert sink.gone == [] and f"m-{a}" in endpoints
    wait_for(lambda: round_() or sink.gone, timeout=30, interval=0.3, what="the remembered one gone")
    assert time.monotonic() - answered >= settings.prometheus.discover_grace
    ((name, reason),) = sink.gone
    assert name == "m-127.0.0.1:9" and "after the watcher restarted" in reason
    assert "last seen by the watcher at 1970-01-01 00:16:40 UTC" in reason
    for _ in range(3):
        round_()
    assert len(sink.gone) == 1 and f"m-{a}" in endpoints


def test_leading_again_gives_a_remembered_endpoint_a_new_grace(fleet: Fleet) -> None:
    """A watcher that lost the lease and leads again counts a remembered endpoint's grace from its new
    term's first answer, not from its last term's (which would resolve its alerts at once)."""
    settings = _settings(fleet, '[[discover]]\ntargets = {job = "models"}\nname = "m-{instance}"\n')
    source = PrometheusSource(settings, {})
    sink = _GoneSink()

    async def round_() -> None:
        async with new_http_session() as http:
            await source.evaluate(http, sink)

    source.remember({"m-127.0.0.1:9": 1000.0})
    asyncio.run(round_())  # answered: its grace starts
    first_term = time.monotonic()
    wait_for(
        lambda: time.monotonic() - first_term > 2 * settings.prometheus.discover_grace,
        timeout=30,
        interval=0.1,
        what="the first term's grace over, without a round (the lease lost)",
    )
    source.remember({"m-127.0.0.1:9": 1000.0})  # leading again
    asyncio.run(round_())
    assert sink.gone == []
    wait_for(
        lambda: asyncio.run(round_()) or sink.gone, timeout=30, interval=0.3, what="gone after a new grace"
    )
    assert [name for name, _ in sink.gone] == ["m-127.0.0.1:9"]


def test_a_discovered_endpoints_chart_history_reads_prometheus(fleet: Fleet, tmp_path: Path) -> None:
    """The detail charts of an endpoint found by `[[discover]]` read its ranges from Prometheus (known
    from its snapshot: the label value it is grouped by), and agree with the instant round; without
    its snapshot (nothing says it is discovered) the store's history is all there is."""
    from mlops_console.core.sources.prometheus_history import chart_history

    a = _instance(fleet.serves[0])
    settings = _settings(fleet, '[[discover]]\ntargets = {job = "models"}\nname = "d-{instance}"\n')
    endpoints: dict[str, EndpointState] = {}
    source = PrometheusSource(settings, endpoints)
    name = f"d-{a}"

    def rated() -> bool:
        _round(source)
        state = endpoints.get(name)
        return state is not None and state.prom is not None and state.prom.rps is not None

    wait_for(rated, timeout=60, interval=0.5, what="the discovered endpoint's rate")
    shown = endpoints[name].snapshot()
    assert shown.discovered and shown.prometheus_id == a
    store = Store(tmp_path / "console.db")
    try:
        now = time.time()
        rollups, said = chart_history(settings, store, name, now, 600.0, 1, shown)
        assert said == "from Prometheus" and rollups and all(r.endpoint == name for r in rollups)
        last = rollups[-1]
        assert last.rps is not None and last.rps > 0 and last.p95 is not None
        assert chart_history(settings, store, name, now, 600.0, 1, None) == ((), "")
    finally:
        store.close()


def test_the_stores_missing_minutes_are_filled_from_prometheus(fleet: Fleet, tmp_path: Path) -> None:
    """After a restart the store's per-minute history of a Prometheus-sourced endpoint continues from
    Prometheus: the minutes after the newest stored one up to the last complete one are filled with
    what the charts read (rates, error ratio, quantiles), never over a stored minute, and nothing of
    the current minute (the engine's own); an endpoint with nothing stored gets the last hour."""
    from mlops_console.core.store import Rollup

    url = fleet.serves[0]
    settings = _settings(
        fleet,
        f'[[endpoints]]\nname = "a"\nurl = "{url}"\nsource = "prometheus"\n'
        f'[[endpoints]]\nname = "b"\nurl = "{url}"\nsource = "prometheus"\n',  # the same series as a
    )
    a = settings.endpoints[0]

    def complete_minutes() -> int:
        current = int(time.time() // 60)
        return len(read_history(settings, a, (current - 10) * 60.0, (current - 1) * 60.0, 60.0))

    wait_for(lambda: complete_minutes() >= 2, timeout=240, interval=2.0, what="two minutes in Prometheus")
    store = Store(tmp_path / "console.db")
    try:
        now_minute = int(time.time() // 60)
        # Before the restart (Prometheus need not have it), then this run's own (it does).
        kept = Rollup("a", now_minute - 3, 30, 0, 0.5, 0.5, 0.5, 123.0, 0.0)
        live = Rollup("a", now_minute - 1, 30, 0, 0.25, 0.25, 0.25, 321.0, 0.0)
        store.write_rollups([kept, live])
        states = {
            e.name: EndpointState(e, source="prometheus", health_source="prometheus")
            for e in settings.endpoints
        }
        source = PrometheusSource(settings, states, store)
        source._since_minute = now_minute - 1  # as if started then: the store has one minute of this run

        async def fill() -> None:
            async with new_http_session() as http:
                await source.fill_store(http)

        # A store that refuses the fill (full, read-only): nothing written, no error out of the task,
        # and the next call fills it.
        with store.write() as db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON rollups BEGIN SELECT RAISE(ABORT, 'full'); END"
            )
        asyncio.run(fill())
        assert {r.minute for r in store.rollups("a", 0)} == {now_minute - 3, now_minute - 1}
        with store.write() as db:
            db.execute("DROP TRIGGER refuse")
        began = int(time.time() // 60)
        asyncio.run(fill())
        ended = int(time.time() // 60)
        # The fill's current minute (not filled: the engine's own), as the fill read it: a minute may
        # turn while it runs on a loaded machine. What `b`, with nothing stored, got ends just before it.
        b_rows = store.rollups("b", 0)
        until = max(r.minute for r in b_rows) + 1
        assert began <= until <= ended
        a_rows = {r.minute: r for r in store.rollups("a", 0)}
        assert a_rows[now_minute - 3] == kept and a_rows[now_minute - 1] == live  # never overwritten
        assert min(a_rows) == now_minute - 3 and until not in a_rows
        filled = [a_rows[m] for m in range(now_minute - 2, until) if m != now_minute - 1]
        assert filled and all(r.rps and r.p95 is not None and r.error_ratio == 0.0 for r in filled)
        truth = {
            r.minute: r for r in read_history(settings, a, (now_minute - 2) * 60, (until - 1) * 60, 60.0)
        }
        for row in filled:
            assert row.rps == pytest.approx(truth[row.minute].rps) and row.p95 == truth[row.minute].p95
        assert len(b_rows) >= 2
        assert min(r.minute for r in b_rows) >= until - 60
        # Filled once: a second call reads nothing more.
        sent = source.queries_sent
        asyncio.run(fill())
        assert source.queries_sent == sent
    finally:
        store.close()
