"""`mlops-console replay FILE.csv`: real CSV files in, alert episodes out, bad files refused with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.core.detectors.signals import DEFAULT_RULES
from mlops_console.core.replay import SeriesError, read_series, replay

START = datetime(2014, 4, 10)
NORMAL = (0.008, 0.009, 0.010, 0.0095, 0.0085)


def write_csv(path: Path, values: Sequence[float | str], step_min: int = 5, extra: str = "") -> Path:
    """One row every `step_min` minutes from 2014-04-10 00:00:00, timestamps as the NAB corpus has them."""
    rows = ["timestamp,value" + extra]
    for i, v in enumerate(values):
        rows.append(f"{(START + timedelta(minutes=step_min * i)):%Y-%m-%d %H:%M:%S},{v}")
    path.write_text("\n".join(rows) + "\n")
    return path


def latency_values(anomaly: range, level: float = 0.025, n: int = 200) -> list[float]:
    return [level if i in anomaly else NORMAL[i % 5] for i in range(n)]


def replay_json(path: Path, signal: str, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    assert main(["replay", str(path), "--signal", signal, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_replay_latency_that_triples_is_one_episode_from_the_fourth_slow_poll(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "latency.csv", latency_values(range(100, 120)))
    episodes = replay_json(path, "latency", capsys)
    # Rows 100-119 are slow (08:20 to 09:55). Persistence 4 of 5: it fires at the fourth slow row,
    # 08:35, and clears once fewer than 4 of the last 5 are slow: row 121, 10:05.
    assert episodes == [
        {
            "start": "2014-04-10 08:35:00",
            "end": "2014-04-10 10:05:00",
            "rule": "latency_anomaly",
            "severity": "warning",
        }
    ]


def test_replay_an_anomaly_still_running_at_the_end_is_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "latency.csv", latency_values(range(190, 200)))
    episodes = replay_json(path, "latency", capsys)
    assert [(e["start"], e["end"]) for e in episodes] == [("2014-04-10 16:05:00", None)]


def test_replay_normal_jitter_raises_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "latency.csv", latency_values(range(0)))
    assert replay_json(path, "latency", capsys) == []


def test_replay_keeps_timestamps_exactly_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["timestamp,value"]
    for i, v in enumerate(latency_values(range(100, 120))):
        rows.append(f"{(START + timedelta(minutes=i)).isoformat()}Z,{v}")
    path = tmp_path / "iso.csv"
    path.write_text("\n".join(rows) + "\n")
    episodes = replay_json(path, "latency", capsys)
    assert [(e["start"], e["end"]) for e in episodes] == [("2014-04-10T01:43:00Z", "2014-04-10T02:01:00Z")]
    assert read_series(path, "latency").interval == 60.0


def test_replay_static_threshold_fires_beside_the_adaptive_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Above 1 s the static rule pages too, once its 30 s `for` has passed (at the next row)."""
    path = write_csv(tmp_path / "latency.csv", latency_values(range(100, 120), level=2.0))
    episodes = replay_json(path, "latency", capsys)
    assert [(e["rule"], e["start"]) for e in episodes] == [
        ("latency_p95", "2014-04-10 08:25:00"),
        ("latency_anomaly", "2014-04-10 08:35:00"),
    ]


def test_replay_throughput_pages_on_a_surge_and_on_a_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = [10.0 + (i % 5 - 2) * 0.4 for i in range(240)]
    for i in range(100, 110):
        values[i] = 40.0
    for i in range(180, 190):
        values[i] = 2.0
    path = write_csv(tmp_path / "traffic.csv", values, step_min=1)
    episodes = replay_json(path, "throughput", capsys)
    starts = [(e["rule"], e["start"]) for e in episodes]
    # The surge: 3 of 5 at the third row (01:42). The drop: the adaptive rule at 03:02, and the static
    # rule (half its median for 60 s) at 03:01 plus its `for`.
    assert ("throughput_anomaly", "2014-04-10 01:42:00") in starts
    assert ("throughput_anomaly", "2014-04-10 03:02:00") in starts
    assert ("throughput_drop", "2014-04-10 03:01:00") in starts
    assert len(episodes) == 3


def test_replay_error_ratio_uses_the_requests_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["timestamp,value,requests"]
    for i in range(120):
        ratio, requests = (0.03, 1000) if 60 <= i < 70 else (0.001, 1000)
        rows.append(f"{(START + timedelta(minutes=i)):%Y-%m-%d %H:%M:%S},{ratio},{requests}")
    path = tmp_path / "errors.csv"
    path.write_text("\n".join(rows) + "\n")
    episodes = replay_json(path, "error_rate", capsys)
    # 3 % of 1000 requests against a 0.1 % baseline: 2 of 3 polls, so the second bad minute (01:01).
    assert [(e["rule"], e["start"]) for e in episodes] == [("error_ratio_anomaly", "2014-04-10 01:01:00")]
    assert capsys.readouterr().err == ""


def test_replay_error_ratio_without_counts_says_what_it_assumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "errors.csv", [0.0] * 40, step_min=1)
    assert main(["replay", str(path), "--signal", "error_rate"]) == 0
    assert "each row counts as 100 requests" in capsys.readouterr().err


def test_replay_config_overrides_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "latency.csv", latency_values(range(100, 120)))
    config = tmp_path / "c.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "c.db"}"\n\n[[rules]]\nrule = "latency_p95"\nthreshold = 0.02\n'
        'for = "0s"\nseverity = "critical"\n'
    )
    episodes = replay_json(path, "latency", capsys, "--config", str(config))
    assert {(e["rule"], e["severity"], e["start"]) for e in episodes} == {
        ("latency_p95", "critical", "2014-04-10 08:20:00"),
        ("latency_anomaly", "warning", "2014-04-10 08:35:00"),
    }


def test_replay_table_says_why_each_alert_fired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "latency.csv", latency_values(range(100, 120)))
    assert main(["replay", str(path), "--signal", "latency"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        f"{path}: 200 values from 2014-04-10 00:00:00 to 2014-04-10 16:35:00, every 5 min"
    )
    row = next(line for line in out if line.startswith("2014-04-10 08:35:00"))
    assert "2014-04-10 10:05:00" in row and "latency_anomaly" in row and "spike" in row
    assert "25 ms" in row and "expected up to 12 ms" in row and "robust z" in row
    assert out[-1] == "1 alert"


def test_replay_is_the_same_code_the_catalogue_builds(tmp_path: Path) -> None:
    """The library call and the command agree (the benchmark uses the library call)."""
    path = write_csv(tmp_path / "latency.csv", latency_values(range(100, 120)))
    series = read_series(path, "latency")
    episodes = replay(series.points, DEFAULT_RULES["latency"], interval=series.interval)
    assert [(e.rule, e.start.label, e.end.label if e.end else None, e.kind) for e in episodes] == [
        ("latency_anomaly", "2014-04-10 08:35:00", "2014-04-10 10:05:00", "spike")
    ]
    assert episodes[0].peak is not None and episodes[0].peak > 10


BAD_FILES = [
    (
        "timestamp,value\n2014-04-10 00:00:00,0.1\n2014-04-10 00:05:00,abc\n",
        ":3: value 'abc' is not a number",
    ),
    (
        "time,latency\n2014-04-10 00:00:00,0.1\n",
        ":1: expected the header `timestamp,value`, got `time,latency`",
    ),
    ("timestamp,value\n10/04/2014 00:00,0.1\n", ":2: bad timestamp '10/04/2014 00:00'"),
    (
        "timestamp,value\n2014-04-10 00:05:00,0.1\n2014-04-10 00:00:00,0.1\n",
        ":3: timestamp 2014-04-10 00:00:00 is not after the previous one (2014-04-10 00:05:00)",
    ),
    ("timestamp,value\n2014-04-10 00:00:00,0.1,7\n", ":2: expected 2 columns, got 3"),
    ("timestamp,value\n2014-04-10 00:00:00,-1\n", ":2: value -1 out of range: expected 0 or more"),
    ("timestamp,value\n2014-04-10 00:00:00,nan\n", ":2: value 'nan' is not a finite number"),
    ("timestamp,value\n", ": no data rows after the header"),
    ("", ": empty file"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_replay_bad_file_exits_2_naming_file_line_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["replay", str(path), "--signal", "latency", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"mlops-console: {path}")
    assert message in captured.err


def test_replay_error_ratio_above_one_and_counts_with_another_signal_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "e.csv", [0.5, 1.5], step_min=1)
    assert main(["replay", str(path), "--signal", "error_rate"]) == 2
    assert ":3: value 1.5 out of range: expected between 0 and 1 (a share)" in capsys.readouterr().err
    path = tmp_path / "c.csv"
    path.write_text("timestamp,value,requests\n2014-04-10 00:00:00,0.1,10\n")
    assert main(["replay", str(path), "--signal", "latency"]) == 2
    assert ":1: a `requests` column only goes with --signal error_rate" in capsys.readouterr().err


def test_replay_as_a_process_missing_and_binary_files_exit_2_without_traceback(tmp_path: Path) -> None:
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"timestamp,value\n\xff\xfe\x00garbage\n")
    for path, message in (
        (tmp_path / "missing.csv", "cannot read: No such file or directory"),
        (binary, "not a UTF-8 text file"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "mlops_console.cli", "replay", str(path), "--signal", "latency"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"mlops-console: {path}: {message}"
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_replay_escapes_control_characters_in_what_it_echoes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "esc.csv"
    path.write_text("timestamp,value\n\x1b]0;owned\x07,0.1\n")
    assert main(["replay", str(path), "--signal", "latency"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;owned" in err


def test_series_error_names_the_file_and_line() -> None:
    assert str(SeriesError(Path("x.csv"), 4, "bad")) == "x.csv:4: bad"
    assert str(SeriesError(Path("x.csv"), None, "bad")) == "x.csv: bad"
