"""The lease holder's status rows and rollups, written every few seconds: a row written again replaces
the one before (every column), and what followers read back is what was written."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from mlops_console.core.packed import PackedFloats
from mlops_console.core.snapshot import EndpointSnapshot, ProbeError
from mlops_console.core.store import Rollup, Store

MINUTE = 29_000_040


def rollup(endpoint: str, minute: int, probes: int) -> Rollup:
    return Rollup(
        endpoint, minute, probes, 1, 0.01, 0.02, 0.03, 4.0, 0.1, probes - 1, 0.012, 0.005, 0.04, 30.0
    )


def test_a_minute_written_again_replaces_every_column_and_other_minutes_stay(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.write_rollups([rollup("api", MINUTE, 10), rollup("api", MINUTE + 1, 5), rollup("web", MINUTE, 7)])
    later = dataclasses.replace(
        rollup("api", MINUTE + 1, 12), p95=None, rps=None, latency_max=0.5, requests=None, failures=3
    )
    store.write_rollups([later])
    assert store.rollups("api", MINUTE * 60.0) == [rollup("api", MINUTE, 10), later]
    assert store.rollups("web", MINUTE * 60.0) == [rollup("web", MINUTE, 7)]
    store.write_rollups([])


def test_status_rows_are_replaced_and_read_back_as_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    first = EndpointSnapshot(name="api", url="http://127.0.0.1:1", adapter="generic", probes=1)
    other = EndpointSnapshot(name="web", url="http://127.0.0.1:2", adapter="generic", health="down")
    store.write_status([first.to_dict(), other.to_dict()], engine={"owner": "me", "state": "running"})
    second = dataclasses.replace(
        first,
        probes=2,
        health="up",
        p95=0.25,
        latency_history=(0.1, 0.25),
        last_error='a "quoted" [red]error[/] ✓',
        recent_errors=(ProbeError(at=5.0, error="timed out", status=None),),
    )
    store.write_status([second.to_dict()])
    rows = store.read_status()
    assert [r["name"] for r in rows] == ["api", "web"]
    assert EndpointSnapshot.from_dict(rows[0]) == second
    assert EndpointSnapshot.from_dict(rows[1]) == other
    assert rows[0]["updated_at"] >= rows[1]["updated_at"]


def test_a_row_with_an_infinite_quality_figure_reads_back_for_followers(tmp_path: Path) -> None:
    """A diverged regressor's rmse is infinite: its row must still read back (a follower that cannot
    read the rows shows nothing, and a standby watcher's lease task fails on it)."""
    from mlops_console.core.quality.snapshot import QualitySnapshot

    quality = QualitySnapshot(log="x", evaluated_at=1.0, performance=(("rmse", float("inf"), 0.4),))
    row = EndpointSnapshot(name="api", url="http://127.0.0.1:1", adapter="generic", quality=quality)
    store = Store(tmp_path / "c.db")
    store.write_status([row.to_dict()], engine={"owner": "me", "state": "running"})
    (back,) = [EndpointSnapshot.from_dict(r) for r in store.read_status()]
    assert back.quality is not None and back.quality.performance == (("rmse", float("inf"), 0.4),)


def test_histories_read_back_exactly_and_each_write_replaces_them(tmp_path: Path) -> None:
    """The sparkline histories are stored apart from the JSON document: a follower must read back every
    value as written (NaN, infinities, -0.0, the shortest and longest reprs), in the document's order,
    and the histories of the last write, never those of one before."""
    import json

    tricky = (0.1, 1 / 3, -0.0, float("inf"), float("-inf"), float("nan"), 5e-324, 1e16, 0.012345678901234567)
    rates = tuple(1.0 + k / 7 for k in range(60))
    first = EndpointSnapshot(
        name="api",
        url="http://127.0.0.1:1",
        adapter="mlflow",
        probes=3,
        latency_history=tricky,
        rps_history=rates,
    )
    store = Store(tmp_path / "c.db")
    store.write_status([first.to_dict()])
    (row,) = store.read_status()
    assert json.dumps({k: v for k, v in row.items() if k != "updated_at"}) == json.dumps(first.to_dict())
    assert [math.copysign(1.0, v) for v in row["latency_history"][2:3]] == [-1.0]

    # The next round: each history shifted by one value (the usual change of a Prometheus-read row).
    second = dataclasses.replace(
        first, probes=4, latency_history=(*tricky[1:], 0.5), rps_history=(*rates[1:], 9.75)
    )
    store.write_status([second.to_dict()])
    (row,) = store.read_status()
    assert EndpointSnapshot.from_dict(row).latency_history[-1] == 0.5
    assert EndpointSnapshot.from_dict(row).rps_history == second.rps_history

    # Histories the store cannot hold as doubles (an int, a gap) stay JSON, and the ones before go.
    third = dataclasses.replace(second, latency_history=(), rps_history=())
    mixed = third.to_dict() | {"latency_history": [1, 0.5], "rps_history": [None, 2.0]}
    store.write_status([mixed])
    (row,) = store.read_status()
    assert json.dumps(row["latency_history"]) == "[1, 0.5]" and row["rps_history"] == [None, 2.0]
    store.write_status([third.to_dict()])
    (row,) = store.read_status()
    assert EndpointSnapshot.from_dict(row) == third


def test_histories_as_the_engine_publishes_them_are_written_exactly(tmp_path: Path) -> None:
    """The engine hands the store its snapshots' histories unconverted (packed doubles, or a tuple
    where probes time the endpoint): each combination reads back exactly, and packed ones beside a
    history the store cannot pack (a gap) go into the JSON as lists."""
    import json

    tricky = (0.1, 1 / 3, -0.0, float("inf"), float("nan"), 5e-324, 0.012345678901234567)
    rates = tuple(1.0 + k / 7 for k in range(60))
    store = Store(tmp_path / "c.db")
    base = EndpointSnapshot(name="api", url="http://127.0.0.1:1", adapter="mlflow", probes=3)
    for latencies in (PackedFloats(tricky), tricky):
        snapshot = dataclasses.replace(base, latency_history=latencies, rps_history=PackedFloats(rates))
        store.write_status([snapshot.to_dict(histories=False)])
        (row,) = store.read_status()
        assert json.dumps(row["latency_history"]) == json.dumps(list(tricky)), type(latencies)
        assert row["rps_history"] == list(rates) and type(row["rps_history"]) is list
        assert math.copysign(1.0, row["latency_history"][2]) == -1.0
        assert EndpointSnapshot.from_dict(row).rps_history == snapshot.rps_history
    gap = dataclasses.replace(base, rps_history=PackedFloats(rates)).to_dict(histories=False)
    store.write_status([gap | {"latency_history": [None, 0.5]}])
    (row,) = store.read_status()
    assert row["latency_history"] == [None, 0.5] and row["rps_history"] == list(rates)


async def test_a_damaged_row_shows_as_unreadable_and_every_other_endpoint_still_shows(tmp_path: Path) -> None:
    """A status row that is no document (damaged on disk, edited by hand) must not blank a follower's
    screen, nor its endpoint vanish from it unexplained: the other rows read back, a row whose
    histories alone cannot be read shows without them, and the damaged ones show by name, health
    unknown, saying their row cannot be read."""
    from array import array

    from mlops_console.config import parse_settings
    from mlops_console.core.engine import Engine
    from mlops_console.core.engine_lease import _follow

    store = Store(tmp_path / "c.db")
    names = ["api", "half", "lost", "list", "long", "nameless", "unnamed"]
    rows = [
        EndpointSnapshot(
            name=n,
            url="http://127.0.0.1:1",
            adapter="mlflow",
            probes=2,
            latency_history=(0.1, 0.2),
            rps_history=(3.0,),
        )
        for n in names
    ]
    store.write_status(
        [row.to_dict() for row in rows], engine={"owner": "pid 1 on elsewhere", "state": "running"}
    )
    huge = array("d", [1e9, 0.1]).tobytes()
    with store.write() as db:
        db.execute("UPDATE endpoint_status SET histories=? WHERE name='half'", [b"\x00\x01\x02"])
        db.execute("UPDATE endpoint_status SET data='{\"name\": \"lost\", ' WHERE name='lost'")
        db.execute("UPDATE endpoint_status SET data='[1, 2]' WHERE name='list'")
        db.execute("UPDATE endpoint_status SET histories=? WHERE name='long'", [huge])
        db.execute("UPDATE endpoint_status SET data='{\"name\": \"nameless\"}' WHERE name='nameless'")
        db.execute("UPDATE endpoint_status SET data='{\"url\": \"http://x\"}' WHERE name='unnamed'")

    read = {row["name"]: row for row in store.read_status()}
    assert sorted(read) == sorted(names)
    assert set(read["lost"]) == set(read["list"]) == {"name", "updated_at"}, "the name alone, from its column"
    assert (read["api"]["latency_history"], read["api"]["rps_history"]) == ([0.1, 0.2], [3.0])
    assert read["half"]["latency_history"] == read["half"]["rps_history"] == []
    assert read["long"]["latency_history"] == read["long"]["rps_history"] == []

    settings = parse_settings({"store": {"path": str(tmp_path / "c.db")}, "endpoints": []})
    follower = Engine(settings, store)
    await _follow(follower)
    shown = {s.name: s for s in follower.snapshot().endpoints}
    assert sorted(shown) == sorted(names)
    # `nameless` and `unnamed` are documents, but no snapshots (no url, no name: shown by its key).
    for name in ("lost", "list", "nameless", "unnamed"):
        assert shown[name].health == "unknown" and shown[name].probes == 0, name
        assert shown[name].stale and "status row in the store cannot be read" in shown[name].stale, name
        assert shown[name].last_error == shown[name].stale, name
    assert shown["long"].stale is None and shown["half"].stale is None, "a readable row is no damaged one"
    assert shown["api"] == rows[0] and shown["half"].probes == 2 and shown["half"].latency_history == ()
