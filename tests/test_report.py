"""`mlops-console report`: the shift report over a real SQLite store filled at known times.

The expected figures are worked out by hand from the rows `shift_store` writes (see its comments).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.core.store import NewAlert, Store

DAY = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def at(hh: int, mm: int = 0, ss: int = 0) -> float:
    return DAY + hh * 3600 + mm * 60 + ss


FROM, TO = "2026-11-01T06:00", "2026-11-01T18:00"


def fire(
    store: Store, rule: str, endpoint: str, severity: str, started: float, fingerprint: str | None = None
) -> int:
    alert = NewAlert(
        fingerprint=fingerprint or f"{rule}:{endpoint}",
        rule=rule,
        endpoint=endpoint,
        severity=severity,
        summary=f"{endpoint} {rule}",
        started_at=started,
    )
    return store.open_alert(alert, [])


def notified(store: Store, alert_id: int, when: float, kind: str = "firing") -> None:
    store.add_event(alert_id, "notified", actor="json://127.0.0.1/hook", data={"kind": kind}, at=when)


def acked(store: Store, alert_id: int, by: str, when: float) -> None:
    store.add_event(alert_id, "acknowledged", actor=by, at=when)


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n')
    return path


@pytest.fixture
def shift(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """A shift from 06:00 to 18:00 on 2026-11-01 with known alerts, pages, acks, resolves and changes."""
    store = Store(tmp_path / "c.db")
    ids: dict[str, int] = {}
    # Resolved before the shift: not part of it at all.
    ids["gone"] = fire(store, "down", "old-ep", "critical", at(3))
    store.resolve_alert(ids["gone"], [], at=at(4))
    # Fired before the shift, still open, held by erin: still open, but not counted as fired.
    ids["old"] = fire(store, "down", "legacy", "critical", at(5))
    notified(store, ids["old"], at(5, 0, 1))  # a page of the shift before
    acked(store, ids["old"], "erin", at(5, 30))
    # a1: TTA 120 s, TTR 1800 s, paged twice (firing and resolve).
    ids["a1"] = fire(store, "down", "iris-prod", "critical", at(6, 10))
    notified(store, ids["a1"], at(6, 10, 2))
    acked(store, ids["a1"], "alice", at(6, 12))
    store.resolve_alert(ids["a1"], [], at=at(6, 40))
    notified(store, ids["a1"], at(6, 40, 1), kind="resolved")
    # a2: TTA 330 s, TTR 3600 s.
    ids["a2"] = fire(store, "latency_p95", "iris-prod", "warning", at(7))
    notified(store, ids["a2"], at(7, 0, 1))
    acked(store, ids["a2"], "bob", at(7, 5, 30))
    store.resolve_alert(ids["a2"], [], at=at(8))
    # a3: never acknowledged, TTR 600 s.
    ids["a3"] = fire(store, "latency_p95", "fraud-api", "warning", at(9))
    notified(store, ids["a3"], at(9, 0, 1))
    store.resolve_alert(ids["a3"], [], at=at(9, 10))
    # a4: TTA 60 s (the first ack counts), then dave takes it over; still open, held by dave.
    ids["a4"] = fire(store, "error_ratio", "iris-prod", "warning", at(10))
    notified(store, ids["a4"], at(10, 0, 1))
    acked(store, ids["a4"], "carol", at(10, 1))
    acked(store, ids["a4"], "dave", at(10, 30))
    # a5: paged, nobody acknowledged, silenced (a real silence: it runs past the shift's end).
    ids["a5"] = fire(store, "down", "fraud-api", "critical", at(11))
    notified(store, ids["a5"], at(11, 0, 1))
    store.silence(ids["a5"], 3600, "frank", "known outage")
    # Three fires of one fingerprint within 10 minutes: the rule flapped. TTR 60 s each; only the first paged.
    for n, minute in enumerate((0, 3, 6)):
        ids[f"f{n}"] = fire(store, "throughput_drop", "iris-prod", "warning", at(12, minute), "fp-tp")
        store.resolve_alert(ids[f"f{n}"], [], at=at(12, minute + 1))
    notified(store, ids["f0"], at(12, 0, 1))
    # After the shift: not part of it.
    ids["late"] = fire(store, "down", "iris-prod", "critical", at(18, 0, 1))
    notified(store, ids["late"], at(18, 0, 2))

    store.add_audit(actor="alice", action="promote", result="ok", model="iris", alias="production",
                    from_version="3", to_version="4", reason="better f1", at=at(4))  # fmt: skip
    store.add_audit(actor="alice", action="promote", result="ok", model="iris", alias="production",
                    from_version="3", to_version="4", reason="better f1", at=at(8, 30))  # fmt: skip
    store.add_audit(actor="alice", action="deploy", result="ok", model="iris", alias="production",
                    from_version="3", to_version="4", endpoint="iris-prod", at=at(8, 31))  # fmt: skip
    store.add_audit(actor="bob", action="rollback", result="failed", model="iris", alias="production",
                    from_version="4", to_version="3", reason="latency", at=at(13))  # fmt: skip
    store.add_audit(actor="bob", action="ack", result="ok", alert_id=ids["a2"], at=at(13, 5))
    return write_config(tmp_path), ids


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), "report", *args])


def test_report_json_gives_exact_mtta_mttr_counts_and_orderings(
    shift: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = shift
    assert run(config, "--from", FROM, "--to", TO, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["start"] == "2026-11-01T06:00:00Z" and data["end"] == "2026-11-01T18:00:00Z"
    assert (data["fired"], data["paged"], data["pages_sent"]) == (8, 6, 7)
    # acks 60, 120, 330 s; resolves 60, 60, 60, 600, 1800, 3600 s.
    assert data["acknowledge"] == {"count": 3, "median": 120, "worst": 330}
    assert data["resolve"] == {"count": 6, "median": 330, "worst": 3600}
    assert data["by_severity"] == [
        {"name": "critical", "alerts": 2, "paged": 2, "flapped": False},
        {"name": "warning", "alerts": 6, "paged": 4, "flapped": False},
    ]
    assert [(t["name"], t["alerts"], t["paged"], t["flapped"]) for t in data["by_rule"]] == [
        ("throughput_drop", 3, 1, True),
        ("down", 2, 2, False),
        ("latency_p95", 2, 2, False),
        ("error_ratio", 1, 1, False),
    ]
    assert [(t["name"], t["alerts"], t["paged"]) for t in data["by_endpoint"]] == [
        ("iris-prod", 6, 4),
        ("fraud-api", 2, 2),
    ]
    assert [(a["id"], a["state"], a["held_by"]) for a in data["open_alerts"]] == [
        (ids["old"], "acknowledged", "erin"),
        (ids["a4"], "acknowledged", "dave"),
        (ids["a5"], "silenced", None),
    ]
    assert [(c["at"], c["action"], c["result"], c["to_version"]) for c in data["changes"]] == [
        ("2026-11-01T08:30:00Z", "promote", "ok", "4"),
        ("2026-11-01T08:31:00Z", "deploy", "ok", "4"),
        ("2026-11-01T13:00:00Z", "rollback", "failed", "3"),
    ]
    assert [(s["alert_id"], s["by"]) for s in data["silences"]] == [(ids["a5"], "frank")]
    # An hour's silence is over by then, and a5 is no longer silenced but firing.
    assert run(config, "--from", FROM, "--to", "2099-01-01", "--format", "json") == 0
    later = json.loads(capsys.readouterr().out)
    assert later["silences"] == [] and [a["state"] for a in later["open_alerts"]][-2:] == ["firing", "firing"]


def test_report_text_and_markdown_say_the_same(
    shift: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = shift
    assert run(config, "--from", FROM, "--to", TO) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "Shift report 2026-11-01 06:00:00Z to 2026-11-01 18:00:00Z"
    assert lines[1] == "8 alerts fired, 6 paged (7 notifications sent)"
    assert lines[2] == "time to acknowledge: median 2m 00s, worst 5m 30s (3 acknowledged)"
    assert lines[3] == "time to resolve: median 5m 30s, worst 1h 00m (6 resolved)"
    rules = text.split("Noisiest rules:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split() for line in rules] == [
        ["RULE", "ALERTS", "PAGED", "HINT"],
        ["throughput_drop", "3", "1", "flapped"],
        ["down", "2", "2"],
        ["latency_p95", "2", "2"],
        ["error_ratio", "1", "1"],
    ]
    still_open = text.split("Still open:\n")[1].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[0] for line in still_open] == [f"#{ids['old']}", f"#{ids['a4']}", f"#{ids['a5']}"]
    assert still_open[1].split()[-1] == "dave" and still_open[2].split()[-1] == "nobody"
    changes = text.split("Promotes, rollbacks and deploys:\n")[1].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[2] for line in changes] == ["promote", "deploy", "rollback"]
    assert "v4 -> v3" in changes[2] and "failed" in changes[2]

    assert run(config, "--from", FROM, "--to", TO, "--format", "md") == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("## Shift report 2026-11-01 06:00:00Z to 2026-11-01 18:00:00Z\n\n")
    assert "- time to acknowledge: median 2m 00s, worst 5m 30s (3 acknowledged)\n" in markdown
    assert "- time to resolve: median 5m 30s, worst 1h 00m (6 resolved)\n" in markdown
    assert (
        "### Noisiest rules\n\n| rule | alerts | paged | hint |\n|---|---|---|---|\n"
        "| throughput\\_drop | 3 | 1 | flapped |\n| down | 2 | 2 |  |\n"
    ) in markdown
    assert "| iris-prod | 6 | 4 |" in markdown
    assert f"| #{ids['a4']} | acknowledged | warning | iris-prod | error\\_ratio |" in markdown
    rollback = (
        "| 2026-11-01 13:00:00Z | rollback | iris | production | v4 -> v3 |  | failed | bob | latency |"
    )
    assert rollback in markdown


def test_report_since_counts_only_the_recent_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path / "c.db")
    recent = fire(store, "down", "iris-prod", "critical", time.time() - 2 * 3600)
    fire(store, "down", "iris-prod", "critical", time.time() - 20 * 3600, fingerprint="older")
    config = write_config(tmp_path)
    assert run(config, "--since", "12h", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fired"] == 1
    # The older one is still open, so it shows there, but only the recent one fired in the shift.
    assert [a["id"] for a in data["open_alerts"]][-1] == recent
    assert run(config, "--since", "1d", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["fired"] == 2


def test_report_escapes_untrusted_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "c.db")
    evil = "ep\x1b]0;pwned\x07|*bold*<b>"
    alert = fire(store, "down", evil, "critical", at(7))
    acked(store, alert, "m\u202eallory", at(7, 1))
    store.add_audit(actor="ci", action="promote", result="ok", model="iris", alias="production",
                    to_version="2", reason="fix\n| forged | row |", at=at(8))  # fmt: skip
    config = write_config(tmp_path)
    assert run(config, "--from", FROM, "--to", TO) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "ep\\x1b]0;pwned\\x07|*bold*<b>" in text and "m\\u202eallory" in text
    assert "fix\\n| forged | row |" in text
    assert run(config, "--from", FROM, "--to", TO, "--format", "md") == 0
    markdown = capsys.readouterr().out
    assert "\x1b" not in markdown and "\u202e" not in markdown
    assert "ep\\\\x1b\\]0;pwned\\\\x07\\|\\*bold\\*\\<b>" in markdown
    assert "fix\\\\n\\| forged \\| row \\|" in markdown
    assert not any(line.startswith("| forged") for line in markdown.splitlines())
    assert run(config, "--from", FROM, "--to", TO, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by_endpoint"][0]["name"] == evil and data["changes"][0]["reason"] == "fix\n| forged | row |"


def test_report_counts_as_of_its_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "c.db")
    alert = fire(store, "down", "iris-prod", "critical", at(7))
    acked(store, alert, "alice", at(7, 10))
    store.add_event(alert, "flapping", at=at(7, 20))
    store.resolve_alert(alert, [], at=at(19))
    config = write_config(tmp_path)
    assert run(config, "--from", FROM, "--to", TO, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    # Resolved after the shift ended: open, held by alice, at its end; no time to resolve yet.
    assert [(a["id"], a["state"], a["held_by"]) for a in data["open_alerts"]] == [
        (alert, "acknowledged", "alice")
    ]
    assert data["resolve"] == {"count": 0, "median": None, "worst": None}
    assert data["acknowledge"] == {"count": 1, "median": 600, "worst": 600}
    assert data["by_rule"] == [{"name": "down", "alerts": 1, "paged": 0, "flapped": True}]
    assert run(config, "--from", FROM, "--to", "2026-11-01T20:00", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["open_alerts"] == [] and data["resolve"] == {"count": 1, "median": 43200, "worst": 43200}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--since", "soon"], "argument --since"),
        (["--since", "0"], "above 0"),
        (["--from", "yesterday"], "ISO 8601"),
        (["--from", FROM, "--to", "tomorrow"], "ISO 8601"),
        (["--since", "1h", "--from", FROM], "not both"),
        (["--to", TO], "--to needs --from"),
        (["--from", TO, "--to", FROM], "--from must be before --to"),
    ],
)
def test_report_refuses_a_bad_span_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    Store(tmp_path / "c.db")
    config = write_config(tmp_path)
    try:
        code = run(config, *args)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    assert code == 2
    assert reason in capsys.readouterr().err


def test_report_on_a_missing_store_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run(config, "--since", "1h") == 3
    err = capsys.readouterr().err
    assert "it does not exist" in err and str(tmp_path / "c.db") in err
    assert not (tmp_path / "c.db").exists()
