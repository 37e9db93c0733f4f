"""The console's collector settings for a large fleet: after its first large snapshot, what is alive is
frozen and the young generation is collected less often (full collections landed inside keystrokes)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mlops_console.core.gc_tuning import YOUNG_THRESHOLD
from mlops_console.tui import collector
from tests.test_gc_tuning import collected_before_freezing


@pytest.fixture
def gc_state() -> Iterator[None]:
    threshold, frozen = gc.get_threshold(), collector._frozen
    collector._frozen = False
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        collector._frozen = frozen


def test_a_large_fleet_freezes_once_and_collects_the_young_less_often(gc_state: None) -> None:
    gc.set_threshold(700, 10, 10)
    assert not collector.freeze_after_start(collector.LARGE_FLEET - 1)  # a small fleet: as it was
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0
    alive = [object(), [1, 2]]
    assert collector.freeze_after_start(collector.LARGE_FLEET)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0 and alive
    assert not collector.freeze_after_start(10_000)  # once


def test_garbage_alive_at_the_freeze_is_collected_not_frozen(gc_state: None) -> None:
    def freeze() -> None:
        assert collector.freeze_after_start(collector.LARGE_FLEET)

    assert collected_before_freezing(freeze)
