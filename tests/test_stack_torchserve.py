"""The `torchserve` adapter against a real TorchServe 0.12 (its own cached virtual environment with
torch 2.13 CPU; the JDK 17 on PATH runs its frontend), serving a torch handler: health from `/ping`
and the management API's workers, the version the management API reports against the registry,
throughput from the `ts_*` metrics, a kill and a restart on a new version, and a version whose workers
crash-loop while `/ping` goes on saying Healthy: loading, then down once `load_timeout` has run out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._loopback import Sink, async_wait_for
from tests._stacks import EngineRun, TorchServer
from tests.fixtures_mlflow import MlflowRegistry
from tests.serving_envs import ensure

pytestmark = [pytest.mark.serving, pytest.mark.timeout(900)]

PAYLOAD = {"data": [[1.0, 2.0], [3.0, 4.0]]}


@pytest.fixture(scope="module")
def torchserve_env() -> Path:
    path, seconds = ensure("torchserve")
    if seconds:
        print(f"built the TorchServe environment in {seconds:.0f} s")
    return path


@pytest.fixture
def torchserve(torchserve_env: Path, tmp_path: Path) -> Iterator[TorchServer]:
    server = TorchServer(tmp_path / "torchserve")
    yield server
    server.kill()


def pages(sink: Sink, prefix: str) -> list[str]:
    return [t for t in sink.titles() if t.startswith(prefix)]


def endpoint(server: TorchServer, **extra: object) -> dict[str, object]:
    return {
        "url": server.url,
        "adapter": "torchserve",
        "model": "iris",
        "management_url": server.management_url,
        "metrics_url": server.metrics_url,
        "payload": PAYLOAD,
        **extra,
    }


async def test_torchserve_watched_end_to_end_kill_restart_new_version(
    torchserve: TorchServer, mlflow_registry: MlflowRegistry, sink: Sink, tmp_path: Path
) -> None:
    torchserve.archive("2")
    torchserve.start().wait_ready()
    rules = [{"rule": "version_mismatch", "for": 0}]
    registry = {"tracking_uri": mlflow_registry.tracking_uri, "refresh": 1}
    config = endpoint(torchserve, alias="production")
    async with EngineRun(tmp_path, config, sink.url, registry=registry, rules=rules) as run:
        await run.until(
            lambda s: s.health == "up" and s.served_version == "2" and s.expected_version == "2",
            "TorchServe up, serving v2 as the registry expects",
            timeout=90,
        )
        await run.until(lambda s: s.rps is not None and s.rps > 0, "throughput from ts_inference_requests")
        # No latency histogram in TorchServe's metrics: percentiles come from the probes.
        assert run.snap.latency_source == "probe" and run.snap.p95 is not None

        torchserve.kill()
        await run.until(lambda s: s.health == "down", "down after the kill")
        await async_wait_for(lambda: pages(sink, "[FIRING] ep: endpoint down"), 20, "the down page")

        torchserve.archive("3")
        torchserve.start().wait_ready()
        await run.until(lambda s: s.health != "down" and s.served_version == "3", "serving v3", timeout=90)
        await async_wait_for(lambda: pages(sink, "[RESOLVED] ep: endpoint down"), 20, "the resolve")
        await async_wait_for(
            lambda: pages(sink, "[FIRING] ep: serves the wrong model version"), 20, "the mismatch page"
        )


async def test_torchserve_crash_looping_workers_behind_a_healthy_ping_are_down(
    torchserve: TorchServer, sink: Sink, tmp_path: Path
) -> None:
    torchserve.archive("2-broken")
    torchserve.start().wait_status("/ping", timeout=180)
    async with EngineRun(tmp_path, endpoint(torchserve, load_timeout=8), sink.url) as run:
        await run.until(lambda s: s.health == "loading", "loading while no worker is READY", timeout=60)
        assert "no worker of iris is READY" in (run.snap.last_error or "")
        await run.until(lambda s: s.health == "down", "down once load_timeout has run out", timeout=60)
        assert "still not ready after" in (run.snap.last_error or "")
        await async_wait_for(lambda: pages(sink, "[FIRING] ep: endpoint down"), 20, "the down page")
        ping = httpx.get(f"{torchserve.url}/ping", timeout=5.0)
        assert ping.status_code == 200 and "Healthy" in ping.text, "TorchServe's /ping no longer lies?"
    assert "up" not in run.healths, run.healths
