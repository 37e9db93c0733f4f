"""The lease holder writes an endpoint's status row and rollup only when they changed since its last
write; followers and a restarted watcher still read every endpoint as it is now, and the rows of
endpoints the config no longer has go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_console.config import Settings, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.engine import Engine
from mlops_console.core.status_rows import REWRITE_EVERY, StatusRows
from mlops_console.core.store import Store

NOW = 1_790_000_000.0


def settings(tmp_path: Path, *names: str, **extra: Any) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [{"name": n, "url": "http://127.0.0.1:9", "adapter": "generic"} for n in names],
            **extra,
        }
    )


def discovering(tmp_path: Path, *names: str) -> Settings:
    """`names` configured, and a `[[discover]]` table over a Prometheus that never answers."""
    return settings(
        tmp_path,
        *names,
        prometheus={"url": "http://127.0.0.1:9"},
        discover=[{"selector": 'up{job="models"}'}],
    )


def rows(store: Store) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in store.read_status()}


def content(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "updated_at"}


def plant(store: Store, sql: str, *args: Any) -> None:
    """Mark a stored row the way no write of the engine would, so a rewrite shows."""
    with store.write() as db:
        db.execute(sql, list(args))


async def test_an_unchanged_endpoint_writes_nothing_and_a_changed_one_its_new_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "console.db")
    engine = Engine(settings(tmp_path, "api", "web"), store)
    api, web = engine.endpoints["api"], engine.endpoints["web"]
    api.record(ProbeResult(ok=True, latency=0.02, status=200), NOW)
    web.record(ProbeResult(ok=True, latency=0.05, status=200), NOW)
    await engine.write_status(NOW)
    first = rows(store)
    assert {n: content(r) for n, r in first.items()} == {
        "api": api.snapshot().to_dict(),
        "web": web.snapshot().to_dict(),
    }
    assert [r.probes for r in store.rollups("web", NOW - 60)] == [1]

    plant(store, "UPDATE endpoint_status SET updated_at = 1.0 WHERE name = 'web'")
    plant(store, "UPDATE rollups SET probes = 99 WHERE endpoint = 'web'")
    api.record(ProbeResult(ok=False, status=500, error="HTTP 500: boom"), NOW + 1)
    web.refresh(NOW)  # rebuilt, yet the same content
    await engine.write_status(NOW + 1)

    second = rows(store)
    assert content(second["api"]) == api.snapshot().to_dict()
    assert (second["api"]["health"], second["api"]["probes"], second["api"]["last_error"]) == (
        "down",
        2,
        "HTTP 500: boom",
    )
    assert [(r.probes, r.failures) for r in store.rollups("api", NOW - 60)] == [(2, 1)]
    # The unchanged endpoint's row and rollup were not written again.
    assert second["web"]["updated_at"] == 1.0
    assert content(second["web"]) == web.snapshot().to_dict()
    assert [r.probes for r in store.rollups("web", NOW - 60)] == [99]


async def test_a_row_changed_without_a_probe_since_is_written_again(tmp_path: Path) -> None:
    """Rows are told apart by their probe count first; one whose count is the same but whose content
    is not (the registry's answer came in between two probes) must still be written."""
    store = Store(tmp_path / "console.db")
    engine = Engine(settings(tmp_path, "api"), store)
    api = engine.endpoints["api"]
    api.record(ProbeResult(ok=True, latency=0.02, status=200), NOW)
    await engine.write_status(NOW)
    api.expect("4", "production")
    await engine.write_status(NOW + 1)
    row = rows(store)["api"]
    assert (row["probes"], row["expected_version"], row["alias"]) == (1, "4", "production")
    assert content(row) == api.snapshot().to_dict()


async def test_the_engines_health_is_written_every_time_even_with_no_row_changed(tmp_path: Path) -> None:
    store = Store(tmp_path / "console.db")
    engine = Engine(settings(tmp_path, "api"), store)
    await engine.write_status(NOW)
    plant(store, "UPDATE engine_health SET updated_at = 1.0")
    await engine.write_status(NOW + 2)
    health = store.engine_health(engine.owner)
    assert health is not None and health.updated_at > 1.0


async def test_leading_again_or_a_restart_writes_every_row_again(tmp_path: Path) -> None:
    """Another lease holder may have written the rows meanwhile: what this engine last wrote is no
    longer what the store holds, so each row is written again, changed or not."""
    store = Store(tmp_path / "console.db")
    config = settings(tmp_path, "api")
    engine = Engine(config, store)
    engine.endpoints["api"].record(ProbeResult(ok=True, latency=0.02, status=200), NOW)
    await engine.write_status(NOW)
    plant(store, 'UPDATE endpoint_status SET updated_at = 1.0, data = \'{"name": "api", "url": "x"}\'')

    engine.status_rows.reset()  # what starting to lead does
    await engine.write_status(NOW + 2)
    row = rows(store)["api"]
    assert row["updated_at"] > 1.0
    assert content(row) == engine.endpoints["api"].snapshot().to_dict()

    plant(store, "UPDATE endpoint_status SET updated_at = 1.0")
    restarted = Engine(config, store)
    await restarted.write_status(NOW + 4)
    assert content(rows(store)["api"]) == restarted.endpoints["api"].snapshot().to_dict()
    assert rows(store)["api"]["updated_at"] > 1.0


async def test_rows_of_endpoints_the_config_no_longer_has_go(tmp_path: Path) -> None:
    store = Store(tmp_path / "console.db")
    before = Engine(settings(tmp_path, "api", "old"), store)
    await before.write_status(NOW)
    assert set(rows(store)) == {"api", "old"}

    engine = Engine(settings(tmp_path, "api"), store)
    await engine.write_status(NOW + 2)
    assert set(rows(store)) == {"api"}
    assert content(rows(store)["api"]) == engine.endpoints["api"].snapshot().to_dict()


async def test_with_discovery_old_rows_stay_until_it_has_answered(tmp_path: Path) -> None:
    """Discovered endpoints exist only once discovery has answered: until then their rows stay."""
    store = Store(tmp_path / "console.db")
    await Engine(settings(tmp_path, "api", "found-1"), store).write_status(NOW)
    config = discovering(tmp_path, "api")
    engine = Engine(config, store)
    await engine.write_status(NOW + 2)
    assert set(rows(store)) == {"api", "found-1"}
    assert engine.prometheus is not None
    engine.prometheus.state = "ok"  # a round answered, and found nothing more
    await engine.write_status(NOW + 4)
    assert set(rows(store)) == {"api"}


async def test_every_row_is_written_again_after_a_while_changed_or_not(tmp_path: Path) -> None:
    """A lease regained unnoticed (the store too busy to answer who held it) may leave another
    engine's rows in the store: every `REWRITE_EVERY` seconds each row is written whole again."""
    store = Store(tmp_path / "console.db")
    engine = Engine(settings(tmp_path, "api"), store)
    clock = [0.0]
    engine.status_rows = StatusRows(clock=lambda: clock[0])
    engine.endpoints["api"].record(ProbeResult(ok=True, latency=0.02, status=200), NOW)
    await engine.write_status(NOW)
    plant(store, 'UPDATE endpoint_status SET data = \'{"name": "api"}\', updated_at = 1.0')
    clock[0] = REWRITE_EVERY - 1
    await engine.write_status(NOW + 1)
    assert rows(store)["api"]["updated_at"] == 1.0
    clock[0] = REWRITE_EVERY
    await engine.write_status(NOW + 2)
    assert content(rows(store)["api"]) == engine.endpoints["api"].snapshot().to_dict()


async def test_a_remembered_discovered_endpoints_row_stays_through_the_prune(tmp_path: Path) -> None:
    """An endpoint discovered before a restart and not found again yet keeps its row while its grace
    runs: a watcher restarted again meanwhile still knows it, and resolves its alerts when it goes."""
    store = Store(tmp_path / "console.db")
    await Engine(settings(tmp_path, "api", "found-1", "found-2"), store).write_status(NOW)
    config = discovering(tmp_path, "api")
    engine = Engine(config, store)
    assert engine.prometheus is not None
    engine.prometheus.remember({"found-1": NOW})
    engine.prometheus.state = "ok"
    await engine.write_status(NOW + 2)
    assert set(rows(store)) == {"api", "found-1"}


async def test_the_rounds_write_every_changed_row_within_status_every_a_slice_at_a_time(
    tmp_path: Path,
) -> None:
    """Rows go out a slice a round (a thousand at once held the event loop): after the rounds of one
    `STATUS_EVERY`, every endpoint's row is the one of its last probe, whichever slice it is in, and
    the engine's health was written (followers call a watcher whose health is 8 s old stalled)."""
    from mlops_console.core.housekeeping import STATUS_EVERY, STATUS_SLICES, _housekeeping_round

    names = [f"ep-{i}" for i in range(24)]
    store = Store(tmp_path / "console.db")
    engine = Engine(settings(tmp_path, *names), store)
    last = {"status": 0.0, "slice": 0.0, "sync": 0.0, "remind": 0.0, "escalate": 0.0}
    last |= {"detectors": float("inf"), "prune": float("inf")}
    for second in range(3):
        for state in engine.endpoints.values():
            state.record(ProbeResult(ok=True, latency=0.01 * (second + 1), status=200), NOW + second)
        if second:
            plant(store, "UPDATE engine_health SET updated_at = 1.0")
        for _ in range(STATUS_SLICES):  # the rounds of one STATUS_EVERY
            last["status"] -= STATUS_EVERY  # as if a round's pause had passed
            await _housekeeping_round(engine, last)
        written = {name for name, row in rows(store).items() if row["probes"] == second + 1}
        assert written == set(names), f"probe {second + 1}: rows not written within {STATUS_EVERY} s"
        health = store.engine_health(engine.owner)
        assert health is not None and health.updated_at > 1.0, "the health, too, every STATUS_EVERY"
        assert all(content(row) == engine.endpoints[n].snapshot().to_dict() for n, row in rows(store).items())


async def test_what_every_detector_learnt_is_written_although_taken_a_slice_at_a_time(tmp_path: Path) -> None:
    """All endpoints' detectors judge at the turn of the same minute; their states are taken a slice
    per turn of the loop, and a restarted watcher must still find every one of them."""
    from mlops_console.core.housekeeping import DETECTOR_STATE_SLICE, _housekeeping_round

    names = [f"ep-{i}" for i in range(2 * DETECTOR_STATE_SLICE + 7)]
    store = Store(tmp_path / "console.db")
    engine = Engine(settings(tmp_path, *names), store)
    for second in range(3):  # the first value sets the clock, the next ones are learnt
        for state in engine.endpoints.values():
            state.record(ProbeResult(ok=True, latency=0.01, status=200), NOW + 60 * second)
            engine._evaluate(state, NOW + 60 * second)
    last = {"status": NOW, "slice": 0.0, "sync": NOW, "remind": NOW, "escalate": NOW, "prune": NOW}
    last["detectors"] = 0.0
    await _housekeeping_round(engine, last)
    saved = store.read_detector_state()
    assert set(saved) == set(names)
    assert all(saved[n] == json.loads(json.dumps(engine.endpoints[n].detected.to_state())) for n in names)
