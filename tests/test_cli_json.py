"""`--json` on the commands that change something (`promote`, `rollback`, `alerts ack`, `alerts silence`):
the fields a pipeline reads, the same exit codes as the text output, and a JSON document on stdout even
when the command fails, against a real sqlite-backed MLflow registry and a real store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_console.cli import main
from mlops_console.core.store import NewAlert, Store


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_promote_and_rollback_print_their_result_as_json(registry_config: Path, capsys) -> None:
    code, doc, _ = run(
        [
            "--config",
            str(registry_config),
            "promote",
            "iris",
            "3",
            "--yes",
            "--json",
            "--reason",
            "ci#7",
            "--by",
            "ci",
        ],
        capsys,
    )
    assert code == 0
    assert {k: doc[k] for k in ("ok", "action", "model", "alias", "stage", "from_version", "to_version")} == {
        "ok": True,
        "action": "promote",
        "model": "iris",
        "alias": "production",
        "stage": None,
        "from_version": "2",
        "to_version": "3",
    }
    assert doc["changed"] is True and doc["refused"] is False
    # No endpoint serves iris here: nothing was redeployed, so nothing was verified either way.
    assert doc["verified"] is None and doc["deploys"] == []
    assert doc["actor"] == "ci" and doc["reason"] == "ci#7" and doc["message"].endswith("v2 -> v3")
    promote_audit = doc["audit_id"]

    code, doc, _ = run(["--config", str(registry_config), "rollback", "iris", "--yes", "--json"], capsys)
    assert code == 0
    assert (doc["action"], doc["from_version"], doc["to_version"], doc["changed"]) == (
        "rollback",
        "3",
        "2",
        True,
    )
    assert isinstance(doc["audit_id"], int) and doc["audit_id"] > promote_audit

    # The same version again changes nothing: ok, but not `changed`, and no audit row.
    code, doc, _ = run(["--config", str(registry_config), "promote", "iris", "2", "--yes", "--json"], capsys)
    assert code == 0 and doc["ok"] is True and doc["changed"] is False and doc["audit_id"] is None


def test_a_refused_promote_and_rollback_exit_1_with_the_reason_in_json(registry_config: Path, capsys) -> None:
    code, doc, err = run(
        [
            "--config",
            str(registry_config),
            "promote",
            "iris",
            "1",
            "--yes",
            "--json",
            "--expect-current",
            "3",
        ],
        capsys,
    )
    assert code == 1
    assert doc["ok"] is False and doc["refused"] is True and doc["changed"] is False
    assert "changed since you looked" in doc["message"] and "promote refused" in err
    assert isinstance(doc["audit_id"], int)  # the refusal is in the audit trail, with its id

    code, doc, err = run(
        ["--config", str(registry_config), "rollback", "iris", "--yes", "--json", "--expect-current", "3"],
        capsys,
    )
    assert code == 1 and doc["ok"] is False and doc["refused"] is True and doc["action"] == "rollback"
    assert "rollback refused" in err


def test_json_without_yes_is_refused_before_anything_changes(
    registry_config: Path, capsys, monkeypatch
) -> None:
    # Even at a terminal: the prompt would land in the middle of the JSON document.
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    code, doc, err = run(["--config", str(registry_config), "promote", "iris", "3", "--json"], capsys)
    assert code == 2 and doc == {"ok": False, "error": doc["error"], "exit_code": 2}
    assert "--yes" in doc["error"] and "--yes" in err
    code, doc, _ = run(["--config", str(registry_config), "models", "--json"], capsys)
    assert next(m for m in doc if m["name"] == "iris")["aliases"]["production"] == "2"


def test_unreachable_registry_is_a_failed_result_in_json(tmp_path: Path, capsys) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[registry]\ntracking_uri = "http://127.0.0.1:9"\ntimeout = 1\n'
        f'[store]\npath = "{tmp_path / "c.db"}"\n'
    )
    code, doc, err = run(["--config", str(path), "rollback", "iris", "--yes", "--json"], capsys)
    assert code == 1 and doc["ok"] is False and doc["refused"] is False and doc["changed"] is False
    assert doc["message"] and doc["message"] in err
    assert isinstance(doc["audit_id"], int)


def _alert(store: Store) -> int:
    return store.open_alert(
        NewAlert(
            fingerprint="down/iris-prod",
            rule="down",
            endpoint="iris-prod",
            model="iris",
            version="2",
            severity="critical",
            summary="iris-prod is down",
            started_at=time.time(),
        ),
        [],
    )


def test_ack_and_silence_print_the_alert_as_json(registry_config: Path, tmp_path: Path, capsys) -> None:
    alert_id = _alert(Store(tmp_path / "console.db"))
    code, doc, _ = run(
        [
            "--config",
            str(registry_config),
            "alerts",
            "ack",
            str(alert_id),
            "--by",
            "dana",
            "--note",
            "on it",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and doc["ok"] is True and doc["action"] == "ack"
    assert doc["alert"]["id"] == alert_id and doc["alert"]["acked_by"] == "dana"
    assert doc["alert"]["state"] == "acknowledged" and doc["alert"]["acked_at"].endswith("Z")

    code, doc, _ = run(
        ["--config", str(registry_config), "alerts", "silence", str(alert_id), "--for", "1h", "--json"],
        capsys,
    )
    assert code == 0 and doc["action"] == "silence" and doc["alert"]["id"] == alert_id
    assert doc["alert"]["silenced_until"].endswith("Z")


@pytest.mark.parametrize("action", [["ack"], ["silence", "--for", "1h"]])
def test_ack_and_silence_failures_are_json_too(registry_config: Path, tmp_path: Path, capsys, action) -> None:
    # A missing store is exit 3; an alert that does not exist is exit 1: both as JSON on stdout.
    code, doc, _ = run(
        ["--config", str(registry_config), "alerts", action[0], "7", *action[1:], "--json"], capsys
    )
    assert code == 3 and doc["ok"] is False and doc["exit_code"] == 3 and "console.db" in doc["error"]
    Store(tmp_path / "console.db")
    code, doc, err = run(
        ["--config", str(registry_config), "alerts", action[0], "7", *action[1:], "--json"], capsys
    )
    assert code == 1 and doc == {"ok": False, "error": "no alert with id 7", "exit_code": 1}
    assert "no alert with id 7" in err
