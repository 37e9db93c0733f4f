"""A short soak (bench/soak.py): real `watch` processes through a kill -9 restart, a locked store and a
full disk during outages; every incident pages exactly once and resolves exactly once. The longer run
(`python -m bench.soak`) adds SIGINT restarts, kills before the page and lease takeovers."""

from __future__ import annotations

from pathlib import Path

from bench.soak import run


def test_every_incident_pages_once_and_resolves_once_through_restarts_and_store_faults(
    tmp_path: Path,
) -> None:
    plans = ("kill9", "lock", "disk_full")
    report = run(cycles=len(plans), endpoints=len(plans), plans=plans, workdir=tmp_path, store_fault=11.0)
    summary = {k: report[k] for k in ("incidents", "pages", "resolves", "duplicates", "missing", "problems")}
    assert summary == {
        "incidents": 3,
        "pages": 3,
        "resolves": 3,
        "duplicates": 0,
        "missing": 0,
        "problems": [],
    }, report
    assert report["pages_in_order"] and report["flapping_pages"] == 0, report
    assert report["alerts_in_store"] == 3 and report["alerts_not_resolved"] == 0, report
    assert report["kill9"] == 1 and report["clean_exits_nonzero"] == 0, report
    assert report["ok"], report
