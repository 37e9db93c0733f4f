"""The packed floats a snapshot publishes its throughput history as: the same values a tuple held, in
order, unchangeable, equal and hashed as that tuple (a row rebuilt equal is not written again)."""

from __future__ import annotations

import math
from array import array

import pytest

from mlops_console.core.packed import PackedFloats
from mlops_console.core.rings import PointRing
from mlops_console.core.snapshot import EndpointSnapshot


def test_values_in_order_indexed_sliced_and_listed() -> None:
    packed = PackedFloats([1.5, 2.0, -3.25, 0.1])
    assert list(packed) == [1.5, 2.0, -3.25, 0.1] and len(packed) == 4
    assert (packed[0], packed[-1]) == (1.5, 0.1)
    assert packed[1:3] == (2.0, -3.25) and isinstance(packed[1:3], PackedFloats)
    assert repr(packed) == "PackedFloats([1.5, 2.0, -3.25, 0.1])"
    assert not PackedFloats() and packed
    with pytest.raises(IndexError):
        packed[4]


def test_equal_to_the_tuple_of_the_same_floats_either_way_and_hashed_alike() -> None:
    values = (0.1, 0.2, 30.0)
    packed = PackedFloats(values)
    assert packed == values and values == packed and packed == PackedFloats(values)
    assert hash(packed) == hash(values)
    assert packed != (0.1, 0.2) and packed != (0.1, 0.2, 30.5) and PackedFloats([1.0]) != PackedFloats([2.0])
    assert packed != [0.1, 0.2, 30.0], "a list is no published history, as a tuple never equalled one"
    assert len({packed, values}) == 1


def test_nobody_changes_it_nor_the_values_it_was_made_from() -> None:
    source = array("d", [1.0, 2.0])
    packed = PackedFloats(source)
    source[0] = 99.0
    assert packed == (1.0, 2.0), "the doubles were copied in"
    with pytest.raises(TypeError):
        packed[0] = 5.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        packed.extra = 1  # type: ignore[attr-defined]
    assert list(packed[:]) == [1.0, 2.0]


def test_a_ring_publishes_its_newest_values_packed_and_exact() -> None:
    ring = PointRing(5)
    ring.extend((float(t), t / 3) for t in range(8))
    assert ring.values() == tuple(t / 3 for t in range(3, 8))
    assert ring.values(2) == (6 / 3, 7 / 3) and isinstance(ring.values(2), PackedFloats)
    assert math.isnan(PackedFloats([math.nan])[0])


def test_a_snapshot_keeps_it_packed_and_its_document_lists_it() -> None:
    snapshot = EndpointSnapshot(name="a", url="u", adapter="generic", rps_history=PackedFloats([1.0, 2.5]))
    assert isinstance(snapshot.rps_history, PackedFloats)
    document = snapshot.to_dict()
    assert document["rps_history"] == [1.0, 2.5] and type(document["rps_history"]) is list
    back = EndpointSnapshot.from_dict(document)
    assert back.rps_history == (1.0, 2.5) and back == snapshot, "read back, the row equals the one written"
    listed = EndpointSnapshot(name="a", url="u", adapter="generic", rps_history=[1.0, 2.5])
    assert listed.rps_history == (1.0, 2.5) and isinstance(listed.rps_history, tuple)


def test_a_history_moved_on_keeps_the_newest_and_leaves_the_old_one_as_it_was() -> None:
    before = PackedFloats([1.0, 2.0, 3.0])
    moved = before.then(4.0, 3)
    assert moved == (2.0, 3.0, 4.0) and before == (1.0, 2.0, 3.0)
    assert PackedFloats().then(1.5, 3) == (1.5,) and before.then(9.0, 5) == (1.0, 2.0, 3.0, 9.0)
    assert before.then(9.0, 1) == (9.0,)


def test_an_endpoint_read_from_prometheus_shows_its_newest_medians_rounded_as_probes_are() -> None:
    from mlops_console.config import parse_settings
    from mlops_console.core.endpoint_state import PROM_LATENCY_POINTS, EndpointState, PromFigures

    settings = parse_settings({"endpoints": [{"name": "a", "url": "http://127.0.0.1:1"}]})
    state = EndpointState(settings.endpoints[0], source="prometheus", health_source="prometheus")
    medians = [0.01 + k / 3e4 for k in range(PROM_LATENCY_POINTS + 5)]
    for k, p50 in enumerate(medians):
        state.set_prometheus(PromFigures(1000.0 + 15 * k, 5.0, 0.0, p50, 0.02, 0.03, 60.0))
    shown = state.snapshot().latency_history
    assert shown == tuple(round(m, 6) for m in medians[-PROM_LATENCY_POINTS:])
    assert isinstance(shown, PackedFloats) and len(shown) == PROM_LATENCY_POINTS
