"""The watcher's garbage collector: its long-lived objects are frozen once the engine leads and has read
every endpoint once (so full collections stop walking them), never before, and once."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.engine import Engine
from mlops_console.core.gc_tuning import freeze_when, settled
from mlops_console.core.store import Store


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


def engine_of(tmp_path: Path) -> Engine:
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "endpoints": [
                {"name": name, "url": "http://127.0.0.1:9", "adapter": "generic", "interval": 1.0}
                for name in ("api", "web")
            ],
        }
    )
    return Engine(settings, Store(settings.store.path))


def test_settled_once_leading_and_every_endpoint_probed_failed_or_not(tmp_path: Path) -> None:
    engine = engine_of(tmp_path)
    api, web = engine.endpoints["api"], engine.endpoints["web"]
    api.record(ProbeResult(ok=True, latency=0.01, status=200), 1000.0)
    web.record(ProbeResult(ok=False, error="connection refused"), 1000.0)
    assert not settled(engine)  # a follower builds nothing of the fleet's state
    engine.leader = True
    assert settled(engine)
    web.last_probe_at = None
    assert not settled(engine)


def test_frozen_once_ready_and_not_before(unfrozen: None) -> None:
    looks: list[int] = []

    def ready() -> bool:
        looks.append(gc.get_freeze_count())
        return len(looks) >= 3

    asyncio.run(freeze_when(ready, poll=0.001))
    assert looks == [0, 0, 0]
    assert gc.get_freeze_count() > 0


def collected_before_freezing(freeze: Callable[[], object]) -> bool:
    """Whether a cycle that is already garbage when `freeze` runs is collected: frozen, it never would
    be (the freeze is once per process)."""

    class Node:
        loop: object = None

    gc.disable()  # no automatic collection may find it first
    try:
        node = Node()
        node.loop = node
        gone = weakref.ref(node)
        del node
        freeze()
        return gone() is None
    finally:
        gc.enable()


def test_garbage_alive_at_the_freeze_is_collected_not_frozen(unfrozen: None) -> None:
    """The engine settling freezes what is alive, not what is already garbage."""
    assert collected_before_freezing(lambda: asyncio.run(freeze_when(lambda: True, poll=0.001)))
