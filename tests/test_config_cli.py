"""Config errors exit 2 with file, key and problem (no traceback); the alert CLI acts on the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import ConfigError, load_settings, parse_settings
from mlops_console.core.alerts import open_external_alert
from mlops_console.core.store import Store

GOOD = """
[[endpoints]]
name = "iris-prod"
url = "http://127.0.0.1:5001"

[[notifications]]
url = "json://127.0.0.1:8999/hook"
"""

BAD = {
    "missing key": ("[[endpoints]]\nname = 'a'\n", "endpoints[0].url: required key is missing"),
    "wrong type": (
        GOOD.replace('url = "http://127.0.0.1:5001"', 'url = "http://127.0.0.1:5001"\ninterval = "fast"'),
        "endpoints[0].interval: expected a duration",
    ),
    "unknown adapter": (
        GOOD.replace('url = "http://127.0.0.1:5001"', 'url = "http://127.0.0.1:5001"\nadapter = "k8s"'),
        "endpoints[0].adapter: unknown adapter 'k8s' (installed: bentoml, generic, mlflow, oip, torchserve)",
    ),
    "duplicate names": (
        GOOD + '[[endpoints]]\nname = "iris-prod"\nurl = "http://127.0.0.1:5002"\n',
        "endpoints[1].name: duplicate endpoint name 'iris-prod'",
    ),
    "invalid url": (
        GOOD.replace("http://127.0.0.1:5001", "127.0.0.1:5001"),
        "endpoints[0].url: expected an http:// or https:// URL",
    ),
    "unknown key": (
        GOOD.replace('name = "iris-prod"', 'name = "iris-prod"\nintervall = 3'),
        "endpoints[0].intervall: unknown key",
    ),
    "bad toml": ("[[endpoints]\n", "not valid TOML"),
    "unknown rule": (GOOD + '[[rules]]\nrule = "cpu"\n', "rules[0].rule: Input should be"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_exits_2_naming_file_key_and_problem(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "mlops_console", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}: {expected}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_reports_bad_config_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD["invalid url"][0])
    for argv in (["status"], ["alerts", "list"], ["watch"], ["models"]):
        assert main(["--config", str(path), *argv]) == 2
        assert f"{path}: endpoints[0].url" in capsys.readouterr().err


def test_missing_config_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "status"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_env_vars_are_expanded_and_missing_ones_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD.replace("json://127.0.0.1:8999/hook", "json://127.0.0.1:8999/${HOOK_TOKEN}"))
    monkeypatch.setenv("HOOK_TOKEN", "t0k3n")
    assert load_settings(path).notifications[0].url == "json://127.0.0.1:8999/t0k3n"
    monkeypatch.delenv("HOOK_TOKEN")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "notifications[0].url: environment variable ${HOOK_TOKEN} is not set" in str(err.value)


def test_config_found_through_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("MLOPS_CONSOLE_CONFIG", str(path))
    assert main(["config", "check"]) == 0
    assert "ok (1 endpoints" in capsys.readouterr().out


def test_rules_override_defaults_per_endpoint() -> None:
    from mlops_console.core.conditions import params_for

    settings = parse_settings(
        {
            "endpoints": [
                {"name": "a", "url": "http://127.0.0.1:1"},
                {"name": "b", "url": "http://127.0.0.1:2"},
            ],
            "rules": [
                {"rule": "latency_p95", "threshold": 0.25, "for": "2m"},
                {"rule": "latency_p95", "endpoint": "b", "threshold": 2.0, "severity": "critical"},
            ],
        }
    )
    a, b = params_for(settings, "latency_p95", "a"), params_for(settings, "latency_p95", "b")
    assert (a.threshold, a.for_, a.severity) == (0.25, 120.0, "warning")
    assert (b.threshold, b.for_, b.severity) == (2.0, 120.0, "critical")


def test_alerts_cli_list_ack_silence_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n' + GOOD)
    settings = load_settings(config)
    store = Store(settings.store.path)
    first = open_external_alert(
        store,
        settings,
        rule="down",
        endpoint="iris-prod",
        model="iris",
        version="2",
        severity="critical",
        summary="iris-prod failed 2 consecutive probes",
    )
    second = open_external_alert(
        store,
        settings,
        rule="latency_p95",
        endpoint="iris-prod",
        model="iris",
        version="2",
        severity="warning",
        summary="p95 high",
    )
    run = lambda *a: main(["--config", str(config), *a])  # noqa: E731

    assert run("alerts", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in listed] == [second, first]
    assert {"id", "endpoint", "rule", "severity", "state", "started_at", "resolved_at", "acked_by"} <= set(
        listed[0]
    )

    assert run("alerts", "ack", str(first), "--by", "alice", "--note", "on it") == 0
    assert "acknowledged by alice" in capsys.readouterr().out
    assert run("alerts", "silence", str(second), "--for", "1h", "--by", "bob") == 0
    capsys.readouterr()
    assert run("alerts", "list", "--state", "acknowledged", "--json") == 0
    assert [a["acked_by"] for a in json.loads(capsys.readouterr().out)] == ["alice"]
    assert run("alerts", "list", "--state", "silenced", "--json") == 0
    assert [a["id"] for a in json.loads(capsys.readouterr().out)] == [second]

    assert run("alerts", "show", str(first)) == 0
    timeline = capsys.readouterr().out
    assert "fired" in timeline and "acknowledged by alice: on it" in timeline
    assert run("alerts", "ack", "999") == 1
    assert "no alert with id 999" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # a duration that does not parse is a usage error
        run("alerts", "silence", str(first), "--for", "soon")
    assert usage.value.code == 2
    assert [r.action for r in store.list_audit()] == ["silence", "ack"]
