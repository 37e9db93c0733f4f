"""The store's JSON text: every document a follower or a restarted watcher reads back must equal the one
written, whichever encoder wrote it (the fast one writes NaN and infinity as null)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mlops_console.core.store import Store
from mlops_console.core.store.jsontext import dumps

INF, NAN = float("inf"), float("nan")


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN and -0.0 told from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(
    "where",
    [
        lambda x: {"p95": x},
        lambda x: {"bands": [["latency_p95", 0.1, x]]},
        lambda x: {"quality": {"performance": [["rmse", x, 0.4]]}},
        lambda x: {"recent_errors": [{"at": 1.0, "error": "e"}, {"at": x}]},
        lambda x: [1, "a", (2.0, x)],
        lambda x: x,
    ],
    ids=["top", "list-in-list", "dict-in-dict", "second-dict-in-list", "tuple-in-list", "alone"],
)
@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_a_non_finite_float_anywhere_reads_back_as_written(where: Any, value: float) -> None:
    document = where(value)
    assert same(json.loads(dumps(document)), json.loads(json.dumps(document)))
    assert "null" not in dumps(document)


def test_what_the_fast_encoder_refuses_or_would_change_reads_back_as_json_dumps_writes_it() -> None:
    class Ratio(float):
        pass

    for document in (
        {"count": 2**70, "n": -(2**64)},  # past 64 bits
        {"error": "bad \udc80 byte"},  # a lone surrogate from a hostile body
        {1: "int key", "k": None},  # json.dumps writes the key as "1"
        {"ratio": Ratio("nan")},  # a float subclass: judged by json.dumps
    ):
        assert same(json.loads(dumps(document)), json.loads(json.dumps(document)))


def test_a_plain_status_document_reads_back_equal_and_compact() -> None:
    document = {
        "name": "fleet-[red]e1[/]\x1b[2J",
        "health": "up",
        "p50": 0.0123,
        "p95": 1 / 3,
        "rps": 5e-324,
        "rps_5m": None,
        "zero": -0.0,
        "probes": 10,
        "discovered": True,
        "firing": ["latency_p95 (pending)"],
        "detection": ["p95: 45ms within 30\u201360ms \u2713"],
        "bands": [["latency_p95", None, 0.06]],
        "recent_errors": [{"at": 1.7e9, "error": 'a "quoted" error', "status": 503}],
    }
    text = dumps(document)
    assert same(json.loads(text), document)
    assert ", " not in text.replace("latency_p95 (pending)", "")  # the fast encoder wrote it


def test_detector_states_with_infinite_bounds_read_back_for_the_next_leader(tmp_path: Path) -> None:
    """A detector state holds bands open on one side (infinite): the next lease holder continues from
    exactly what was written, not from a null it cannot load."""
    store = Store(tmp_path / "c.db")
    states = {
        "api": {"latency_p95": {"every": 60.0, "evaluator": {"band": [-INF, 0.2], "values": [0.1, 0.11]}}},
        "web": {"throughput": {"every": 60.0, "evaluator": {"band": [1.5, 9.0], "values": [2.0]}}},
    }
    store.write_detector_state(states)
    assert same(store.read_detector_state(), states)
