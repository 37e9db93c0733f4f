"""Backtest: `replay --endpoint NAME --since 7d` runs the configured rules over stored history."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.core.store import Rollup, Store


def label(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(tmp_path: Path, rules: str = "") -> tuple[Path, int]:
    """Two days of one endpoint's minutes at ~10 ms, with latency tripled for 20 minutes; returns the
    config and the first slow minute."""
    db = tmp_path / "c.db"
    config = tmp_path / "c.toml"
    config.write_text(
        f'[store]\npath = "{db}"\n'
        '[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n'
        '[[endpoints]]\nname = "quiet"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n' + rules
    )
    start = int(time.time() // 60) - 2 * 1440
    slow = start + 1440
    rows = []
    for minute in range(start, start + 2 * 1440 - 10):
        p95 = 0.010 + 0.001 * (minute % 3)
        if slow <= minute < slow + 20:
            p95 *= 3
        rows.append(
            Rollup("api", minute, 12, 0, p95 / 2, p95, p95 * 1.2, None, 0.0, 12, p95 / 2, p95 / 3, p95, 12)
        )
    Store(db).write_rollups(rows)
    return config, slow


def test_backtest_finds_the_known_anomaly_in_stored_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, slow = history(tmp_path)
    assert main(["--config", str(config), "replay", "--endpoint", "api", "--since", "7d", "--json"]) == 0
    episodes = json.loads(capsys.readouterr().out)
    # The robust latency rule holds on the fourth slow minute of five, and lets go on the second
    # normal one (three of the last five slow). The static 1 s limit and the other signals stay quiet.
    assert episodes == [
        {"start": label(slow + 3), "end": label(slow + 21), "rule": "latency_anomaly", "severity": "warning"}
    ]
    assert main(["--config", str(config), "replay", "--endpoint", "api"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("api: 2870 stored minutes over ")
    assert "latency 2870 values: latency_p95 (threshold), latency_anomaly (robust)" in out
    assert "throughput 0 values" in out and "1 alert" in out and "expected up to" in out


def test_backtest_runs_an_edited_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same history under a rule that needs all five of the last five: one minute later.
    config, slow = history(tmp_path, '[[rules]]\nrule = "latency_anomaly"\npersistence = [5, 5]\n')
    assert main(["--config", str(config), "replay", "--endpoint", "api", "--json"]) == 0
    assert [e["start"] for e in json.loads(capsys.readouterr().out)] == [label(slow + 4)]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--endpoint", "nope"], "--endpoint: 'nope' is not in the config (endpoints: api, quiet)"),
        (["--endpoint", "quiet"], "no history for 'quiet' in the last 7 d in "),
        (["--endpoint", "api", "--since", "a week"], "argument --since: expected a duration"),
        (["--endpoint", "api", "--since", "0"], "argument --since: expected a duration above 0"),
        ([], "give FILE.csv or --endpoint NAME (one of them)"),
    ],
)
def test_backtest_refuses_what_it_cannot_run_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    config, _ = history(tmp_path)
    try:
        code = main(["--config", str(config), "replay", *args])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert problem in err, err
    assert "Traceback" not in err
