"""What the engine publishes to the UI thread is a frozen value, never its live state.

The engine keeps recording probes while the UI renders the snapshot it was handed. A row must never
mix fields of two probes (a "torn read"): the published objects are built at publish time, hold
tuples, and refuse changes.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.engine import Engine
from mlops_console.core.packed import PackedFloats
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Store

UP = ProbeResult(ok=True, latency=0.01, valid=True, served_version="1")
DOWN = ProbeResult(ok=False, error="connection refused")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "endpoints": [{"name": "ep", "url": "http://127.0.0.1:9", "interval": 1.0}],
        }
    )
    return Engine(settings, Store(settings.store.path))


def consistent(row: EndpointSnapshot) -> bool:
    """Fields one probe sets together: a row mixing two probes breaks at least one of these."""
    if row.health == "down":
        return row.consecutive_failures > 0 and row.last_error == DOWN.error and row.firing == ()
    return row.consecutive_failures == 0 and row.last_error is None and row.last_ok_at == row.last_probe_at


def test_a_published_row_is_not_changed_by_later_probes(engine: Engine) -> None:
    state = engine.endpoints["ep"]
    engine.probed(state, UP, 1000.0)
    published = engine.snapshot()
    before = published.endpoints[0].to_dict()
    for i in range(3):
        engine.probed(state, DOWN, 1001.0 + i)
    assert published.endpoints[0].to_dict() == before, "the row the UI holds changed under it"
    assert engine.snapshot().endpoints[0].health == "down"
    assert engine.snapshot().endpoints[0] is not published.endpoints[0]


def test_a_published_snapshot_refuses_changes(engine: Engine) -> None:
    engine.probed(engine.endpoints["ep"], UP, 1000.0)
    snapshot = engine.snapshot()
    row = snapshot.endpoints[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.health = "down"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.endpoints = ()  # type: ignore[misc]
    assert isinstance(snapshot.endpoints, tuple)
    for name in ("latency_history", "recent_errors", "firing"):
        assert isinstance(getattr(row, name), tuple), name
    assert isinstance(row.rps_history, PackedFloats), "published packed, never a list the UI could change"
    with pytest.raises(TypeError):
        row.rps_history[0] = 1.0  # type: ignore[index]


def test_a_reader_in_another_thread_never_sees_a_row_mixing_two_probes(engine: Engine) -> None:
    """The engine thread records a probe between the reader's first and last look at one row."""
    state = engine.endpoints["ep"]
    engine.probed(state, UP, 1000.0)
    published = [engine.snapshot()]
    read_first, recorded = threading.Event(), threading.Event()
    torn: list[dict[str, object]] = []

    def reader() -> None:
        for _ in range(20):
            row = published[-1].endpoints[0]
            health = row.health  # the UI starts rendering the row...
            read_first.set()
            recorded.wait(5)  # ...the engine records and publishes the next probe meanwhile...
            recorded.clear()
            if health != row.health or not consistent(row):  # ...and the UI reads the rest of it
                torn.append(row.to_dict())

    def engine_thread() -> None:
        for i in range(20):
            read_first.wait(5)
            read_first.clear()
            engine.probed(state, DOWN if i % 2 == 0 else UP, 1001.0 + i)
            published.append(engine.snapshot())
            recorded.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=engine_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(published) == 21, "every probe was published"
    assert torn == []
