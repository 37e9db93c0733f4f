"""The `bentoml` adapter against a real BentoML server (its own cached virtual environment), serving
bentos built from a one-route service with an iris classifier: health, the bento's version against the
registry, traffic from BentoML's `/metrics`, a kill and a restart on a new version, and the slow model
load during which BentoML accepts connections and answers nothing: `loading`, never a false page,
until the load outlasts `load_timeout`, when it is down and pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import new_http_session
from mlops_console_plugins.bentoml_adapter import BentomlAdapter
from tests._loopback import Sink, async_wait_for
from tests._stacks import BentoServer, EngineRun
from tests.fixtures_mlflow import MlflowRegistry
from tests.serving_envs import ensure

pytestmark = [pytest.mark.serving, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def bentoml_env() -> Path:
    path, seconds = ensure("bentoml")
    if seconds:
        print(f"built the BentoML environment in {seconds:.0f} s")
    return path


@pytest.fixture
def bento(bentoml_env: Path, tmp_path: Path) -> Iterator[BentoServer]:
    server = BentoServer(tmp_path / "bento")
    yield server
    server.kill()


def pages(sink: Sink, prefix: str) -> list[str]:
    return [t for t in sink.titles() if t.startswith(prefix)]


async def test_bentoml_watched_end_to_end_kill_restart_new_version(
    bento: BentoServer, mlflow_registry: MlflowRegistry, sink: Sink, tmp_path: Path
) -> None:
    bento.build("2", c=1.0)
    bento.start().wait_ready()
    endpoint = {
        "url": bento.url,
        "adapter": "bentoml",
        "model": "iris",
        "alias": "production",
        "metrics_url": bento.metrics_url,
    }
    rules = [{"rule": "version_mismatch", "for": 0}]
    registry = {"tracking_uri": mlflow_registry.tracking_uri, "refresh": 1}
    async with EngineRun(tmp_path, endpoint, sink.url, registry=registry, rules=rules) as run:
        # Route from /schema.json, body from the registry's serving example, answer a list per row.
        await run.until(
            lambda s: s.health == "up" and s.served_version == "2" and s.expected_version == "2",
            "BentoML up, serving bento v2 as the registry expects",
            timeout=90,
        )
        await run.until(
            lambda s: s.rps is not None and s.rps > 0 and s.latency_source == "metrics",
            "throughput and latency read from BentoML's metrics",
        )
        assert run.snap.error_ratio == 0.0 and run.snap.last_error is None
        # Rejected requests count as errors (by their `http_response_code`).
        async with httpx.AsyncClient() as client:
            for _ in range(10):
                answer = await client.post(f"{bento.url}/predict", json={"data": "not rows"})
                assert answer.status_code >= 400
        await run.until(lambda s: (s.error_ratio or 0) > 0, "rejected requests in the error ratio")

        bento.kill()
        await run.until(lambda s: s.health == "down", "down after the kill")
        await async_wait_for(lambda: pages(sink, "[FIRING] ep: endpoint down"), 20, "the down page")

        bento.build("3", c=0.05)
        bento.start().wait_ready()
        await run.until(lambda s: s.health != "down" and s.served_version == "3", "serving v3", timeout=90)
        await async_wait_for(lambda: pages(sink, "[RESOLVED] ep: endpoint down"), 20, "the resolve")
        await async_wait_for(
            lambda: pages(sink, "[FIRING] ep: serves the wrong model version"), 20, "the mismatch page"
        )
        assert run.snap.version_mismatch and run.snap.health == "degraded"


async def test_bentoml_slow_model_load_is_loading_not_down(
    bento: BentoServer, sink: Sink, tmp_path: Path
) -> None:
    bento.build("2")
    bento.start(load_delay=12).wait_listening()
    endpoint = {"url": bento.url, "adapter": "bentoml", "timeout": 1.0, "load_timeout": 120}
    async with EngineRun(tmp_path, endpoint, sink.url) as run:
        await run.until(lambda s: s.health == "loading", "loading while the service loads")
        assert "timed out" in (run.snap.last_error or ""), run.snap.last_error
        await run.until(lambda s: s.health == "up", "up once loaded", timeout=120)
        assert not await run.alerts(), "a slow load must not page"
    assert "down" not in run.healths, run.healths
    assert sink.titles() == []


async def test_bentoml_load_that_outlasts_load_timeout_is_down(
    bento: BentoServer, sink: Sink, tmp_path: Path
) -> None:
    bento.build("2")
    bento.start(load_delay=600).wait_listening()
    endpoint = {"url": bento.url, "adapter": "bentoml", "timeout": 1.0, "load_timeout": 4}
    async with EngineRun(tmp_path, endpoint, sink.url) as run:
        await run.until(lambda s: s.health == "loading", "loading at first")
        await run.until(lambda s: s.health == "down", "down once load_timeout has run out", timeout=30)
        assert "still not ready after" in (run.snap.last_error or "")
        await async_wait_for(lambda: pages(sink, "[FIRING] ep: endpoint down"), 20, "the down page")


async def test_bentoml_adapter_reads_schema_version_and_checks_answers(bento: BentoServer) -> None:
    bento.build("7")
    bento.start().wait_ready()
    settings = parse_settings(
        {"endpoints": [{"name": "ep", "url": bento.url, "adapter": "bentoml", "timeout": 5}]}
    )
    async with new_http_session() as http:
        adapter = BentomlAdapter(settings.endpoints[0])
        # No payload and no registry example: the route is known, but its body cannot be built.
        result = await adapter.probe(http)
        assert (result.ok, result.valid, result.served_version) == (True, None, "7")
        assert adapter.route == "/predict"
        assert adapter.metric_names().match == {"endpoint": "/predict"}
        rows = [[5.1, 3.5, 1.4, 0.2]] * 3
        adapter.set_example({"dataframe_split": {"columns": list("abcd"), "data": rows}})
        result = await adapter.probe(http)
        assert (result.ok, result.valid, result.error) == (True, True, None)

        # A configured body that the service rejects is an error answer, not a valid prediction.
        bad = parse_settings(
            {
                "endpoints": [
                    {"name": "ep", "url": bento.url, "adapter": "bentoml", "path": "/predict",
                     "payload": {"data": [[1.0, 2.0]]}}
                ]
            }
        )  # fmt: skip
        result = await BentomlAdapter(bad.endpoints[0]).probe(http)
        assert not result.ok and result.status is not None and result.status >= 400
