"""Open alerts of an endpoint or a pipeline the configuration no longer has: the real engine, run twice
on one store file, pages to a loopback sink (pipelines read from a real sqlite MLflow tracking store).
In a watcher, a removed endpoint's or pipeline's alerts resolve once, saying why (a renamed one is a
removed one and a new one); one still configured is left alone; with `[[discover]]`, nothing resolves
before discovery has answered; a console that leads for want of a watcher resolves nothing this way."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import EndpointSettings, Settings, parse_settings
from mlops_console.core.alerts.external import open_external_alert
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.engine import Engine
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Store
from mlops_console.core.takeover import take_over
from tests._loopback import Sink, async_wait_for, free_port
from tests.pipelines_helpers import Job

PAYLOAD = {"dataframe_split": {"columns": ["a"], "data": [[1.0], [2.0]]}}


def config(tmp_path: Path, sink: Sink, endpoints: dict[str, str], **extra: Any) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {"name": name, "url": url, "interval": 0.2, "timeout": 0.5, "payload": PAYLOAD}
                for name, url in endpoints.items()
            ],
            "notifications": [{"url": sink.url}],
            **extra,
        }
    )


@asynccontextmanager
async def running(settings: Settings, *, watcher: bool = True) -> AsyncIterator[Engine]:
    engine = Engine(settings, Store(settings.store.path), settles_removed=watcher)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await async_wait_for(lambda: engine.leader, what="the engine leads")
        yield engine
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


def pages(sink: Sink, kind: str, name: str = "") -> list[dict[str, Any]]:
    return [m for m in sink.received if m.get("title", "").startswith(f"[{kind}] {name}")]


async def probes_pass(engine: Engine, count: int) -> None:
    done = engine.stats.probes
    await async_wait_for(lambda: engine.stats.probes >= done + count, what=f"{count} probes more")


async def restarted_twice(
    settings: Settings, sink: Sink, new: str, judged: Callable[[Engine], Awaitable[None]]
) -> list[str]:
    """A watcher on `settings`, started twice: the first resolves the removed and the renamed-old
    name's alerts (two resolve pages) and pages for `new`; each run then lets the engine judge
    (`judged`) and has nothing left to settle. Returns the resolve pages' titles, sorted."""
    for run in range(2):  # and once more: what resolved stays resolved, nothing pages again
        async with running(settings) as engine:
            if run == 0:
                await async_wait_for(lambda: len(pages(sink, "RESOLVED")) == 2, what="two resolves")
                await async_wait_for(lambda: pages(sink, "FIRING", new), what="the new name's page")
            await judged(engine)
            assert engine.removed_endpoints == {}
    return sorted(m["title"] for m in pages(sink, "RESOLVED"))


async def test_a_removed_endpoint_resolves_once_and_the_rest_stay(tmp_path: Path, sink: Sink) -> None:
    dead = {name: f"http://127.0.0.1:{free_port()}" for name in ("kept", "removed", "before")}
    first = config(tmp_path, sink, dead)
    async with running(first) as engine:
        await async_wait_for(lambda: len(pages(sink, "FIRING")) == 3, what="three down pages")
        await probes_pass(engine, 3)
    store = Store(first.store.path)
    ids = {a.endpoint: a.id for a in store.open_alerts()}
    assert set(ids) == set(dead)

    # `removed` gone from [[endpoints]], `before` renamed to `after` (the same URL): a removed
    # endpoint and a new one, which pages for itself.
    second = config(tmp_path, sink, {"kept": dead["kept"], "after": dead["before"]})
    # Past the adopted alerts' clear window, were they clear.
    resolves = await restarted_twice(second, sink, "after", lambda engine: probes_pass(engine, 15))
    expected = ["[RESOLVED] before: endpoint down", "[RESOLVED] removed: endpoint down"]
    assert resolves == expected, sink.titles()
    assert len(pages(sink, "FIRING")) == 4, sink.titles()
    assert all("removed from the configuration" in m["message"] for m in pages(sink, "RESOLVED"))

    removed = store.get_alert(ids["removed"])
    assert removed.state == "resolved"
    (note,) = [e.note for e in store.events(removed.id) if e.kind == "resolved"]
    assert note is not None and "[[endpoints]] no longer has removed" in note
    assert "last seen by the watcher at" in note
    assert store.get_alert(ids["before"]).state == "resolved"
    assert store.get_alert(ids["kept"]).state == "firing"
    assert {a.endpoint for a in store.open_alerts()} == {"kept", "after"}


async def test_an_alert_opened_later_for_an_endpoint_the_config_lacks_resolves_once(
    tmp_path: Path, sink: Sink
) -> None:
    """While a watcher leads, an alert of an endpoint its configuration lacks lands in the store (the
    write of a watcher with an older configuration, queued while the store was locked and flushed after
    the handover; or a command run with another configuration): it pages once and resolves once, saying
    why, without waiting for the next takeover. The watcher's own endpoint is left alone."""
    settings = config(tmp_path, sink, {"kept": f"http://127.0.0.1:{free_port()}"})
    store = Store(settings.store.path)
    async with running(settings) as engine:
        await async_wait_for(lambda: pages(sink, "FIRING", "kept"), what="kept's page")
        older = {"rule": "down", "endpoint": "removed", "model": None, "version": None, "summary": "down"}
        late = open_external_alert(store, settings, severity="critical", **older)
        await async_wait_for(lambda: pages(sink, "RESOLVED", "removed"), what="the late alert's resolve")
        await probes_pass(engine, 5)
    assert [m["title"] for m in sink.received if "removed" in m["title"]] == [
        "[FIRING] removed: endpoint down",
        "[RESOLVED] removed: endpoint down",
    ]
    (note,) = [e.note for e in store.events(late) if e.kind == "resolved"]
    assert note is not None and "[[endpoints]] no longer has removed" in note
    assert [a.endpoint for a in store.open_alerts()] == ["kept"]
    assert not pages(sink, "RESOLVED", "kept"), sink.titles()


async def test_a_console_leading_for_want_of_a_watcher_resolves_nothing_this_way(
    tmp_path: Path, sink: Sink
) -> None:
    """A console opened with a partial configuration on the fleet's store, no watcher running: the
    alerts of endpoints its configuration lacks stay open, and nothing pages."""
    dead = {name: f"http://127.0.0.1:{free_port()}" for name in ("kept", "other")}
    async with running(config(tmp_path, sink, dead)) as engine:
        await async_wait_for(lambda: len(pages(sink, "FIRING")) == 2, what="two down pages")
    partial = config(tmp_path, sink, {"kept": dead["kept"]})
    async with running(partial, watcher=False) as engine:
        # One more lands while it leads (as a watcher with another configuration may leave one).
        late = {"rule": "down", "endpoint": "late", "model": None, "version": None, "summary": "down"}
        open_external_alert(Store(partial.store.path), partial, severity="critical", **late)
        await async_wait_for(lambda: engine.book.is_firing("down", "late", None), what="the late one adopted")
        await probes_pass(engine, 10)
        assert engine.removed_endpoints == {}
    assert not pages(sink, "RESOLVED"), sink.titles()
    assert {a.endpoint for a in Store(partial.store.path).open_alerts()} == {"kept", "other", "late"}


async def test_a_console_leading_keeps_the_rows_of_endpoints_a_watcher_discovered(
    tmp_path: Path, sink: Sink
) -> None:
    """A console opened without the fleet's `[[discover]]` table leads for want of a watcher. It prunes
    the rows of endpoints it lacks, but not those of endpoints the watcher had discovered: the watcher
    that leads next needs them to leave those endpoints' alerts to discovery's grace (a target gone from
    Prometheus for a moment must not resolve an outage) instead of resolving them at its first round."""
    dead = f"http://127.0.0.1:{free_port()}"
    fleet = config(tmp_path, sink, {"kept": dead, "old": dead})
    store = Store(fleet.store.path)
    watcher = Engine(fleet, store, settles_removed=True)
    name = "m-10.0.0.7:8080"
    found = EndpointSettings(name=name, url="http://10.0.0.7:8080", source="prometheus", prometheus_id="x")
    watcher.endpoints[name] = EndpointState(found, source="prometheus", discovered=True)
    await watcher.write_status()
    (row,) = [r for r in store.read_status() if r["name"] == name]
    store.write_status([dataclasses.replace(EndpointSnapshot.from_dict(row), health="up").to_dict()])
    for endpoint in (name, "old"):
        down = {"rule": "down", "endpoint": endpoint, "model": None, "version": None, "summary": "down"}
        open_external_alert(store, fleet, severity="critical", **down)

    async with running(config(tmp_path, sink, {"kept": dead}), watcher=False) as engine:
        await async_wait_for(lambda: engine.status_rows.pruned, what="the console's prune")
        await probes_pass(engine, 10)
    rows = {row["name"]: row for row in store.read_status()}
    assert rows.keys() == {"kept", name}
    # Consoles following this one show it as the watcher's last word, stale, not as a live endpoint.
    kept = EndpointSnapshot.from_dict(rows[name])
    assert (kept.health, kept.firing) == ("unknown", ("down",))
    assert kept.stale is not None and kept.remembered is not None
    discovering = config(
        tmp_path,
        sink,
        {"kept": dead},
        prometheus={"url": f"http://127.0.0.1:{free_port()}"},
        discover=[{"selector": 'up{job="models"}'}],
    )
    assert take_over(store, discovering, settles_removed=True).removed.keys() == {"old"}


async def test_with_discovery_nothing_resolves_before_it_answers(tmp_path: Path, sink: Sink) -> None:
    """A removed endpoint may be discovered now: until a round of discovery has answered (here
    Prometheus never does), its alerts stay open and nothing pages for it. A removed pipeline's do not
    wait: no discovery finds a pipeline."""
    dead = {name: f"http://127.0.0.1:{free_port()}" for name in ("kept", "removed")}
    async with running(config(tmp_path, sink, dead)) as engine:
        await async_wait_for(lambda: len(pages(sink, "FIRING")) == 2, what="two down pages")
    unanswered = config(
        tmp_path,
        sink,
        {"kept": dead["kept"]},
        prometheus={"url": f"http://127.0.0.1:{free_port()}", "interval": 0.2, "timeout": 0.5},
        discover=[{"selector": 'up{job="models"}'}],
    )
    store = Store(unanswered.store.path)
    failed = {"rule": "pipeline_failed", "model": None, "version": None, "summary": "failed"}
    open_external_alert(store, unanswered, endpoint="pipeline:gone", severity="critical", **failed)
    async with running(unanswered) as engine:
        assert engine.prometheus is not None
        await async_wait_for(lambda: "unreachable" in engine.prometheus.state, what="discovery failing")
        await async_wait_for(lambda: pages(sink, "RESOLVED"), what="the removed pipeline's resolve")
        await probes_pass(engine, 10)
        assert engine.removed_endpoints.keys() == {"removed"}
    assert [m["title"] for m in pages(sink, "RESOLVED")] == [
        "[RESOLVED] pipeline:gone: pipeline run failed"
    ], sink.titles()
    assert {a.endpoint for a in store.open_alerts()} == {"kept", "removed"}


async def test_an_endpoint_whose_discover_table_went_resolves_once_saying_so(
    tmp_path: Path, sink: Sink
) -> None:
    """Discovered before, and the configuration has no `[[discover]]` table now: nothing will find it
    again, so its open alert resolves (once), saying how it had been found."""
    settings = config(tmp_path, sink, {"kept": f"http://127.0.0.1:{free_port()}"})
    store = Store(settings.store.path)
    before = Engine(settings, store)
    name = "m-10.0.0.7:8080"
    found = EndpointSettings(name=name, url="http://10.0.0.7:8080", source="prometheus", prometheus_id="x")
    before.endpoints[name] = EndpointState(found, source="prometheus", discovered=True)
    await before.write_status()
    down = {"rule": "down", "endpoint": name, "model": None, "version": None, "summary": "down"}
    alert_id = open_external_alert(store, settings, severity="critical", **down)
    for _ in range(2):
        async with running(settings) as engine:
            await async_wait_for(lambda: pages(sink, "RESOLVED", name), what="its resolve")
            await probes_pass(engine, 5)
    assert [m["title"] for m in sink.received if name in m["title"]] == [
        f"[FIRING] {name}: endpoint down",
        f"[RESOLVED] {name}: endpoint down",
    ]
    (note,) = [e.note for e in store.events(alert_id) if e.kind == "resolved"]
    assert note is not None and "found by a [[discover]] table, and the configuration has none" in note
    assert not pages(sink, "RESOLVED", "kept")


def failing(client: Any) -> Job:
    """A pipeline's experiment whose last run failed a minute ago (`pipeline_failed` fires)."""
    job = Job.create(client)
    job.history()
    job.run("FAILED", ended_ago=60, took=30)
    return job


def with_pipelines(tmp_path: Path, sink: Sink, uri: str, pipelines: dict[str, Job]) -> Settings:
    return config(
        tmp_path,
        sink,
        {},
        registry={"tracking_uri": uri, "timeout": 5},
        pipelines=[
            {"name": name, "experiment": job.experiment, "every": "6h", "poll": 0.2}
            for name, job in pipelines.items()
        ],
    )


async def pipelines_read(engine: Engine, count: int) -> None:
    """Wait until every pipeline has been read (and judged) `count` more times."""

    def oldest() -> float:
        return min(p.read_at or 0.0 for p in engine.snapshot().pipelines)

    for _ in range(count):
        before = oldest()
        await async_wait_for(lambda since=before: oldest() > since, what="every pipeline read again")


async def test_a_removed_pipeline_resolves_once_and_the_rest_stay(
    tmp_path: Path, sink: Sink, pipelines_tracking: tuple[str, Any]
) -> None:
    uri, client = pipelines_tracking
    jobs = {name: failing(client) for name in ("kept", "removed", "before")}
    first = with_pipelines(tmp_path, sink, uri, jobs)
    async with running(first):
        await async_wait_for(lambda: len(pages(sink, "FIRING")) == 3, what="three failure pages")
    store = Store(first.store.path)
    ids = {a.endpoint: a.id for a in store.open_alerts()}
    assert set(ids) == {"pipeline:kept", "pipeline:removed", "pipeline:before"}

    # `removed` gone from [[pipelines]], `before` renamed to `after` (the same experiment): a removed
    # pipeline and a new one, which pages for itself.
    second = with_pipelines(tmp_path, sink, uri, {"kept": jobs["kept"], "after": jobs["before"]})
    resolves = await restarted_twice(second, sink, "pipeline:after", lambda engine: pipelines_read(engine, 3))
    expected = [
        "[RESOLVED] pipeline:before: pipeline run failed",
        "[RESOLVED] pipeline:removed: pipeline run failed",
    ]
    assert resolves == expected, sink.titles()
    assert len(pages(sink, "FIRING")) == 4, sink.titles()
    assert all("pipeline was removed from the configuration" in m["message"] for m in pages(sink, "RESOLVED"))

    removed = store.get_alert(ids["pipeline:removed"])
    assert removed.state == "resolved"
    (note,) = [e.note for e in store.events(removed.id) if e.kind == "resolved"]
    assert note is not None and "[[pipelines]] no longer has removed" in note
    assert store.get_alert(ids["pipeline:before"]).state == "resolved"
    assert store.get_alert(ids["pipeline:kept"]).state == "firing"
    assert {a.endpoint for a in store.open_alerts()} == {"pipeline:kept", "pipeline:after"}


async def test_a_console_leading_for_want_of_a_watcher_resolves_no_pipeline_this_way(
    tmp_path: Path, sink: Sink, pipelines_tracking: tuple[str, Any]
) -> None:
    uri, client = pipelines_tracking
    jobs = {name: failing(client) for name in ("kept", "other")}
    async with running(with_pipelines(tmp_path, sink, uri, jobs)):
        await async_wait_for(lambda: len(pages(sink, "FIRING")) == 2, what="two failure pages")
    partial = with_pipelines(tmp_path, sink, uri, {"kept": jobs["kept"]})
    async with running(partial, watcher=False) as engine:
        await pipelines_read(engine, 5)
        assert engine.removed_endpoints == {}
    assert not pages(sink, "RESOLVED"), sink.titles()
    assert {a.endpoint for a in Store(partial.store.path).open_alerts()} == {
        "pipeline:kept",
        "pipeline:other",
    }


async def test_pipeline_prefix_is_reserved_for_pipelines_in_config_and_discovery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Pipelines' alerts carry `pipeline:NAME` where an endpoint's name goes, and resolve without waiting
    for discovery once the pipeline is gone: an endpoint may not be named so, whether configured (exit
    2, naming the key) or found by `[[discover]]` (left out, said in the log), or its outage would be
    resolved as a removed pipeline's."""
    import logging

    from aiohttp import ClientSession, web

    from mlops_console.cli import main
    from mlops_console.core.promapi import PromClient
    from mlops_console.core.sources.prometheus_discovery import found_by

    config_file = tmp_path / "console.toml"
    config_file.write_text('[[endpoints]]\nname = "pipeline:score"\nurl = "http://127.0.0.1:1"\n')
    assert main(["--config", str(config_file), "config", "check"]) == 2
    assert f"{config_file}: endpoints[0].name: an endpoint's name may not start with 'pipeline:'" in (
        capsys.readouterr().err
    )

    targets = [
        {"labels": {"job": job, "instance": "10.0.0.7:8080"}, "scrapeUrl": "http://10.0.0.7:8080/metrics"}
        for job in ("pipeline", "models")
    ]

    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"status": "success", "data": {"activeTargets": targets}})

    app = web.Application()
    app.router.add_get("/api/v1/targets", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = parse_settings(
        {
            "prometheus": {"url": f"http://127.0.0.1:{port}"},
            "discover": [{"targets": {}, "name": "{job}:{instance}"}],
        }
    )
    said: set[str] = set()
    try:
        async with ClientSession() as http:
            with caplog.at_level(logging.WARNING, logger="mlops_console.prometheus"):
                for _ in range(3):  # three rounds of discovery
                    client = PromClient(f"http://127.0.0.1:{port}", 2.0)
                    found = await found_by(client, http, settings.discover[0], "job", said)
                    assert [e.name for e in found] == ["models:10.0.0.7:8080"]
    finally:
        await runner.cleanup()
    refused = [r for r in caplog.records if "may not start with 'pipeline:'" in r.getMessage()]
    assert len(refused) == 1, "said once, not every round"
