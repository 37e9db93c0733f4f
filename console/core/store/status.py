"""Endpoint status and per-minute rollups, so followers and `status` see what the lease holder sees;
and what its detectors learnt, so the next lease holder continues from it."""

from __future__ import annotations

import json
import math
import sys
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

from mlops_console.core.packed import PackedFloats
from mlops_console.core.store.base import StoreBase, now
from mlops_console.core.store.jsontext import dumps
from mlops_console.core.store.rows import Rollup

# Written for every endpoint every few seconds: one executemany of prepared upserts.
_STATUS_UPSERT = (
    "INSERT INTO endpoint_status (name, updated_at, data, histories) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at, data = excluded.data, "
    "histories = excluded.histories"
)
# The latency and throughput histories (20 and 60 floats, two thirds of a document's bytes and four
# fifths of its encoding: each float's shortest repr) go to the `histories` column as doubles, exact
# (NaN and infinities included), and stand as null in `data`, where `read_status` puts them back.
_HISTORIES = ("latency_history", "rps_history")
_ROLLUP_COLUMNS = tuple(f.name for f in fields(Rollup))
_ROLLUP_UPSERT = (
    f"INSERT INTO rollups ({', '.join(_ROLLUP_COLUMNS)}) VALUES ({', '.join('?' * len(_ROLLUP_COLUMNS))}) "
    "ON CONFLICT (endpoint, minute) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ROLLUP_COLUMNS if c not in ("endpoint", "minute"))
)
_ROLLUP_FILL = (
    f"INSERT INTO rollups ({', '.join(_ROLLUP_COLUMNS)}) VALUES ({', '.join('?' * len(_ROLLUP_COLUMNS))}) "
    "ON CONFLICT (endpoint, minute) DO NOTHING"
)
_rollup_values = attrgetter(*_ROLLUP_COLUMNS)
_FLOAT_ONLY = {float}
_HISTORY_TYPES = (list, tuple, PackedFloats)


def _document(row: dict[str, Any], at: float) -> tuple[str, float, str, bytes | None]:
    """A status row as stored: its histories packed where both are sequences of floats alone (a list
    holding an int or None goes in the JSON, which is what keeps it one)."""
    latencies, rates = row.get("latency_history"), row.get("rps_history")
    if type(latencies) is PackedFloats and type(rates) is PackedFloats:  # a snapshot's, most rows
        packed = array("d", (len(latencies),))
        packed.frombytes(latencies.tobytes())
        packed.frombytes(rates.tobytes())
    elif (
        isinstance(latencies, _HISTORY_TYPES)
        and isinstance(rates, _HISTORY_TYPES)
        and set(map(type, latencies)) | set(map(type, rates)) <= _FLOAT_ONLY
    ):
        packed = array("d", (len(latencies), *latencies, *rates))
    else:
        listed = {key: list(row[key]) for key in _HISTORIES if isinstance(row.get(key), PackedFloats)}
        return row["name"], at, dumps(row | listed), None
    if sys.byteorder == "big":
        packed.byteswap()
    return row["name"], at, dumps({**row, "latency_history": None, "rps_history": None}), packed.tobytes()


def _status_row(data: str, histories: bytes | None) -> dict[str, Any] | None:
    """The document a status row holds, its histories back in their place (a document written with
    them in the JSON, by an older writer or by hand, is left as it is). None for a row that is no
    document at all (damaged, or edited by hand); histories that cannot be read are shown empty."""
    try:
        document = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    if histories is not None and all(document.get(key, 0) is None for key in _HISTORIES):
        try:
            values = array("d")
            values.frombytes(histories)
            if sys.byteorder == "big":
                values.byteswap()
            latencies = int(values[0]) + 1
            if not 1 <= latencies <= len(values):
                raise ValueError("history lengths out of range")
        except (TypeError, ValueError, OverflowError, IndexError):
            document["latency_history"] = document["rps_history"] = []
        else:
            document["latency_history"] = values[1:latencies].tolist()
            document["rps_history"] = values[latencies:].tolist()
    return document


class EndpointStatus(StoreBase):
    def write_status(
        self,
        rows: Iterable[dict[str, Any]],
        engine: dict[str, Any] | None = None,
        gone: Sequence[str] = (),
        keep: Collection[str] | None = None,
        back: Sequence[str] = (),
    ) -> None:
        """Endpoint snapshots (as JSON documents), and the writing engine's health (`owner`, `state`,
        `reason`); the rows of endpoints `gone` (no longer discovered) are deleted, their detector
        states too (what they learnt, an incident's verdicts included, says nothing of one found again
        under the name), as are those of endpoints `back` (gone, then found again before this write),
        and with `keep`, every row of an endpoint not in it (one the config no longer has). Rows not
        in `rows` stay."""
        at = now()
        # Encoded one at a time as they are written: a fleet's first write is 10,000 documents.
        documents = (_document(row, at) for row in rows)
        with self.write() as db:
            forgotten = [[name] for name in (*gone, *back)]
            db.conn.executemany("DELETE FROM detector_state WHERE endpoint=?", forgotten)
            if keep is not None:
                stored = [row[0] for row in db.execute("SELECT name FROM endpoint_status").fetchall()]
                gone = [*gone, *(name for name in stored if name not in keep)]
            for name in gone:
                db.execute("DELETE FROM endpoint_status WHERE name=?", [name])
            self._conn().executemany(_STATUS_UPSERT, documents)
            if engine is not None:
                db.execute("DELETE FROM engine_health WHERE owner!=?", [engine["owner"]])
                db["engine_health"].upsert({**engine, "updated_at": at}, pk="owner")  # type: ignore[union-attr]

    def read_status(self) -> list[dict[str, Any]]:
        """The endpoint snapshots the lease holder wrote, as JSON documents with their `updated_at`. A
        row that holds no document (damaged, edited by hand) stands as its name alone: one damaged row
        must not blank every follower, nor its endpoint vanish from their screens unexplained. The name
        is the row's key, whatever a document edited by hand says (or leaves out)."""
        out = []
        for row in self.query("SELECT * FROM endpoint_status ORDER BY name"):
            document = _status_row(row["data"], row["histories"]) or {}
            out.append(document | {"name": row["name"], "updated_at": row["updated_at"]})
        return out

    def write_rollups(self, rows: Sequence[Rollup]) -> None:
        if rows:
            values = [_rollup_values(row) for row in rows]
            with self.write():
                self._conn().executemany(_ROLLUP_UPSERT, values)

    def fill_rollups(self, rows: Sequence[Rollup]) -> None:
        """Minutes read back from elsewhere (Prometheus, after a restart): written where the store has
        none, never over a minute it has (the engine's own rollups win)."""
        if rows:
            values = [_rollup_values(row) for row in rows]
            with self.write():
                self._conn().executemany(_ROLLUP_FILL, values)

    def last_minutes(self, endpoints: Sequence[str], before: int) -> dict[str, int]:
        """The newest stored minute before the minute `before` of each of `endpoints` that has one
        (one index lookup each)."""
        out = {}
        for name in endpoints:
            rows = self.query(
                "SELECT MAX(minute) AS minute FROM rollups WHERE endpoint=? AND minute<?", [name, before]
            )
            if rows and rows[0]["minute"] is not None:
                out[name] = int(rows[0]["minute"])
        return out

    def rollups(self, endpoint: str, since: float) -> list[Rollup]:
        rows = self.query(
            "SELECT * FROM rollups WHERE endpoint=? AND minute>=? ORDER BY minute",
            [endpoint, int(since // 60)],
        )
        return [Rollup.from_row(row) for row in rows]

    def history(self, endpoint: str, since: float, step: int = 1) -> list[Rollup]:
        """The endpoint's rollups from `since`, merged `step` minutes to a row (for day and week views):
        counts summed, min and max kept, means weighted by their counts, percentiles and rates averaged
        over the minutes (a mean of per-minute p95s, not a p95 of the merged minutes)."""
        if step <= 1:
            return self.rollups(endpoint, since)
        rows = self.query(
            """
            SELECT endpoint, (minute / :step) * :step AS minute,
                SUM(probes) AS probes, SUM(failures) AS failures,
                AVG(p50) AS p50, AVG(p95) AS p95, AVG(p99) AS p99, AVG(rps) AS rps,
                COALESCE(SUM(error_ratio * requests) / NULLIF(SUM(requests), 0), AVG(error_ratio))
                    AS error_ratio,
                SUM(samples) AS samples,
                SUM(latency_mean * samples) / NULLIF(SUM(CASE WHEN latency_mean IS NOT NULL
                    THEN samples END), 0) AS latency_mean,
                MIN(latency_min) AS latency_min, MAX(latency_max) AS latency_max,
                SUM(requests) AS requests
            FROM rollups WHERE endpoint=:endpoint AND minute>=:since
            GROUP BY minute / :step ORDER BY 2
            """,
            {"endpoint": endpoint, "since": int(since // 60), "step": int(step)},
        )
        return [Rollup.from_row(row) for row in rows]

    def prune_history(self, before: float, limit: int = 20_000) -> int:
        """Delete up to `limit` rollups of minutes before `before` (epoch seconds), oldest first, and
        return how many: a large backlog goes in several short transactions, never one long lock."""
        with self.write() as db:
            cursor = db.execute(
                "DELETE FROM rollups WHERE rowid IN "
                "(SELECT rowid FROM rollups WHERE minute < ? ORDER BY minute LIMIT ?)",
                [int(before // 60), int(limit)],
            )
            return cursor.rowcount

    def write_detector_state(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Each endpoint's detector state (`DetectedRules.to_state()`), replacing what was there."""
        if states:
            at = now()
            with self.write() as db:
                db["detector_state"].upsert_all(  # type: ignore[union-attr]
                    [
                        {"endpoint": name, "updated_at": at, "data": dumps(state)}
                        for name, state in states.items()
                    ],
                    pk="endpoint",
                )

    def read_detector_state(
        self, names: Collection[str] | None = None, written_since: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """Endpoint name to the detector state written last, of every endpoint or of `names` alone,
        written at `written_since` (epoch seconds) or later if given (unreadable rows are left out)."""
        out: dict[str, dict[str, Any]] = {}
        sql = "SELECT endpoint, data FROM detector_state WHERE updated_at >= ?"
        since = [-math.inf if written_since is None else written_since]
        if names is None:
            rows = self.query(sql, since)
        else:  # in batches: SQLite limits the parameters of one statement
            wanted, rows = list(names), []
            for first in range(0, len(wanted), 500):
                batch = wanted[first : first + 500]
                marks = ",".join("?" * len(batch))
                rows += self.query(f"{sql} AND endpoint IN ({marks})", since + batch)
        for row in rows:
            try:
                data = json.loads(row["data"])
            except ValueError:
                continue
            if isinstance(data, dict):
                out[str(row["endpoint"])] = data
        return out
