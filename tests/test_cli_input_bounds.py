"""Out-of-range ids, durations and texts are usage errors (exit 2) that change nothing; rows written
before these bounds existed (a silence ending in the year 2.7 billion, or never) still read fine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import load_settings
from mlops_console.core.alerts import open_external_alert
from mlops_console.core.limits import MAX_ID, MAX_TEXT
from mlops_console.core.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "c.db"}"\n[[endpoints]]\nname = "iris-prod"\nurl = "http://127.0.0.1:9"\n'
    )
    settings = load_settings(path)
    open_external_alert(
        Store(settings.store.path),
        settings,
        rule="down",
        endpoint="iris-prod",
        model="iris",
        version="2",
        severity="critical",
        summary="iris-prod failed 2 consecutive probes",
    )
    return path


def run(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["--config", str(config), *args])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def unchanged(config: Path) -> bool:
    store = Store(config.parent / "c.db")
    alert = store.get_alert(1)
    return (
        alert.state == "firing"
        and alert.silenced_until is None
        and store.list_audit() == []
        and [e.kind for e in store.events(1)] == ["fired"]
    )


@pytest.mark.parametrize(
    "args",
    [
        ("alerts", "ack", "99999999999999999999999"),
        ("alerts", "silence", "99999999999999999999999", "--for", "1h"),
        ("alerts", "show", "99999999999999999999999"),
        ("alerts", "ack", str(MAX_ID + 1)),
        ("alerts", "ack", "0"),
        ("alerts", "ack", "-1"),
    ],
)
def test_alert_ids_outside_sqlites_range_are_usage_errors(
    config: Path, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(config, *args, capsys=capsys)
    assert code == 2
    assert f"argument id: alert id must be between 1 and {MAX_ID}, got " in err
    assert unchanged(config)


def test_ids_and_limits_at_the_bounds(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(config, "alerts", "ack", str(MAX_ID), capsys=capsys)
    assert code == 1 and f"no alert with id {MAX_ID}" in err
    code, _, err = run(config, "alerts", "ack", "x" * 5000, capsys=capsys)
    assert code == 2 and "argument id: expected a positive integer, got 'xxxx" in err and len(err) < 500
    for args in (("alerts", "list", "--limit", "99999999999999999999"), ("audit", "--limit", "0")):
        code, _, err = run(config, *args, capsys=capsys)
        assert code == 2 and "argument --limit: --limit must be between 1 and" in err, args
    code, out, _ = run(config, "alerts", "list", "--json", "--limit", str(MAX_ID), capsys=capsys)
    assert code == 0 and [a["id"] for a in json.loads(out)] == [1]


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("999999999999d", "argument --for: a silence lasts at most 30d, got '999999999999d'"),
        ("31d", "argument --for: a silence lasts at most 30d, got '31d'"),
        ("9" * 400, "argument --for: a silence lasts at most 30d"),  # parses to infinity
        ("0", "argument --for: a silence must last a positive time, got '0'"),
        ("garbage", 'argument --for: expected a duration such as 30, "30s", "15m" or "1h", got \'garbage\''),
    ],
    ids=["huge", "31d", "infinite", "zero", "garbage"],
)
def test_silence_durations_must_parse_and_stay_within_30_days(
    config: Path, duration: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(config, "alerts", "silence", "1", "--for", duration, capsys=capsys)
    assert code == 2 and message in err
    assert unchanged(config)


def test_a_30_day_silence_is_accepted(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(config, "alerts", "silence", "1", "--for", "30d", capsys=capsys)
    assert code == 0, err
    alert = Store(config.parent / "c.db").get_alert(1)
    assert alert.display_state == "silenced"
    assert alert.silenced_until - alert.updated_at == 30 * 86400


@pytest.mark.parametrize(
    "args",
    [
        ("alerts", "ack", "1", "--note", "x" * 131_072),
        ("alerts", "ack", "1", "--by", "b" * (MAX_TEXT + 1)),
        ("alerts", "silence", "1", "--for", "1h", "--note", "x" * (MAX_TEXT + 1)),
        ("alerts", "silence", "1", "--for", "1h", "--by", "b" * (MAX_TEXT + 1)),
    ],
)
def test_notes_and_names_are_bounded(
    config: Path, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(config, *args, capsys=capsys)
    assert code == 2
    assert f"characters; at most {MAX_TEXT})" in err
    assert unchanged(config)


def test_promote_and_rollback_bound_reason_and_actor(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        ("promote", "iris", "3", "--reason", "r" * (MAX_TEXT + 1)),
        ("rollback", "iris", "--by", "b" * (MAX_TEXT + 1)),
    ):
        code, _, err = run(config, *args, capsys=capsys)
        assert code == 2 and f"characters; at most {MAX_TEXT})" in err, args


def test_a_note_of_the_maximum_length_is_kept_whole(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = "n" * MAX_TEXT
    assert run(config, "alerts", "ack", "1", "--note", note, capsys=capsys)[0] == 0
    assert Store(config.parent / "c.db").get_alert(1).ack_note == note


def test_the_store_itself_refuses_out_of_range_silences_and_texts(config: Path) -> None:
    store = Store(config.parent / "c.db")
    for seconds in (float("inf"), float("nan"), 30 * 86400 + 1, 0, -5):
        with pytest.raises(ValueError, match="silence"):
            store.silence(1, seconds, by="bob")
    with pytest.raises(ValueError, match="too long"):
        store.acknowledge(1, by="bob", note="x" * (MAX_TEXT + 1))
    assert unchanged(config)


def strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("until", [1.0e17, float("inf")])
def test_readers_survive_silences_written_before_the_bound(
    config: Path, until: float, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(config.parent / "c.db")
    # What `silence --for 999999999999d` (or a duration that parsed to infinity) used to write.
    with store.write() as db:
        db.execute("UPDATE alerts SET silenced_until=?, silenced_by='bob' WHERE id=1", [until])
    store.add_event(1, "silenced", actor="bob", data={"until": until})
    store.add_audit(actor="bob", action="silence", result="ok", alert_id=1, detail={"until": until})

    code, out, err = run(config, "alerts", "list", "--json", capsys=capsys)
    assert code == 0, err
    [alert] = strict_json(out)
    assert alert["display_state"] == "silenced" and alert["silenced_until"] == "9999-12-30T23:59:59Z"
    code, out, err = run(config, "alerts", "list", "--state", "silenced", capsys=capsys)
    assert code == 0 and "silenced" in out, err
    code, out, err = run(config, "alerts", "show", "1", "--json", capsys=capsys)
    assert code == 0, err
    shown = strict_json(out)
    assert shown["silenced_until"] == "9999-12-30T23:59:59Z"
    assert [e["kind"] for e in shown["events"]] == ["fired", "silenced"]
    code, out, err = run(config, "alerts", "show", "1", capsys=capsys)
    assert code == 0 and "silenced by bob" in out, err
    code, out, err = run(config, "audit", capsys=capsys)
    assert code == 0 and "silence" in out, err
    code, out, err = run(config, "audit", "--json", capsys=capsys)
    assert code == 0, err
    [silence] = strict_json(out)
    assert silence["action"] == "silence" and silence["detail"] == {
        "until": None if until == float("inf") else until
    }
