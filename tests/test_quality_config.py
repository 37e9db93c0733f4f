"""`[endpoints.inference_log]` and `[endpoints.drift]`: the issue's key names, defaults, and exit 2 with
the file, the key and the problem for anything wrong (checked through `config check`, as a user runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import parse_settings
from mlops_console.core.conditions import params_for
from mlops_console.core.sources.quality.options import quality_options

ENDPOINT = """
[registry]
tracking_uri = "sqlite:////tmp/mlflow.db"

[[endpoints]]
name = "iris-prod"
url = "http://127.0.0.1:5001"
model = "iris"
"""


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "c.toml"
    path.write_text(text)
    code = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err.replace(str(path), "FILE")


def test_the_issue_example_is_accepted_with_its_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        ENDPOINT
        + """
[endpoints.inference_log]
path = "/var/log/iris/inferences.jsonl"
format = "jsonl"

[endpoints.drift]
reference = "artifact:reference.csv"
window = "15m"
"""
    )
    code, err = check(tmp_path, text, capsys)
    assert (code, err) == (0, "")
    settings = parse_settings(__import__("tomllib").loads(text))
    endpoint = settings.endpoints[0]
    assert endpoint.inference_log is not None and endpoint.inference_log.path.endswith("inferences.jsonl")
    drift = endpoint.quality
    assert drift is not None and drift.window == 900.0 and drift.reference == "artifact:reference.csv"
    assert (drift.min_reference, drift.min_current, drift.evaluate_every) == (1000, 500, 30.0)
    # The rules' thresholds shape the evaluation: half the features, 50 rows of one answer.
    options = quality_options(settings, endpoint, drift)
    assert options.drift.dataset_share == 0.5 and options.stuck_rows == 50


def test_only_an_inference_log_gets_default_drift_settings_and_rules_override_the_share() -> None:
    settings = parse_settings(
        {
            "endpoints": [
                {
                    "name": "a",
                    "url": "http://127.0.0.1:1",
                    "inference_log": {"path": "/tmp/a.csv", "format": "csv"},
                }
            ],
            "rules": [
                {"rule": "feature_drift", "threshold": 0.25},
                {"rule": "stuck_prediction", "threshold": 200},
            ],
        }
    )
    endpoint = settings.endpoints[0]
    assert endpoint.quality is not None and endpoint.quality.reference is None
    options = quality_options(settings, endpoint, endpoint.quality)
    assert options.drift.dataset_share == 0.25 and options.stuck_rows == 200
    assert params_for(settings, "input_schema", "a").threshold == 0.05


LOG = '[endpoints.inference_log]\npath = "x"\n'
DRIFT = LOG + "[endpoints.drift]\n"
KEY_LOG, KEY_DRIFT = "endpoints[0].inference_log", "endpoints[0].drift"


@pytest.mark.parametrize(
    ("tables", "key", "problem"),
    [
        ('[endpoints.inference_log]\nformat = "jsonl"', f"{KEY_LOG}.path", "required key is missing"),
        (LOG + 'format = "parquet"', f"{KEY_LOG}.format", "'jsonl', 'csv' or 'sqlite'"),
        (LOG + 'format = "sqlite"', KEY_LOG, "needs `table`"),
        (LOG + 'table = "t"', KEY_LOG, "`table` is for"),
        (LOG + "size = 3", f"{KEY_LOG}.size", "unknown key"),
        (
            LOG + '[endpoints.inference_log.actuals]\nformat = "csv"',
            f"{KEY_LOG}.actuals.path",
            "required key",
        ),
        (
            LOG + '[endpoints.inference_log.actuals]\npath = "a"\nformat = "sqlite"',
            f"{KEY_LOG}.actuals",
            "needs `table`",
        ),
        (
            LOG + '[endpoints.inference_log.actuals]\npath = "a"\ndelay = 3',
            f"{KEY_LOG}.actuals.delay",
            "unknown key",
        ),
        ('[endpoints.drift]\nwindow = "15m"', "endpoints[0]", "`drift` needs `inference_log`"),
        (DRIFT + 'window = "soon"', f"{KEY_DRIFT}.window", "expected a duration"),
        (DRIFT + "window = 0", f"{KEY_DRIFT}.window", "greater than 0"),
        (DRIFT + 'reference = "ref.xlsx"', f"{KEY_DRIFT}.reference", "expected a file ending in .csv"),
        (DRIFT + 'reference = "artifact:"', f"{KEY_DRIFT}.reference", "expected an artifact path"),
        (DRIFT + 'reference = "artifact:../x.csv"', f"{KEY_DRIFT}.reference", "without '..'"),
        (DRIFT + "first_rows = 100", KEY_DRIFT, "below `min_reference`"),
        (DRIFT + 'windows = "1m"', f"{KEY_DRIFT}.windows", "unknown key"),
        (DRIFT + "min_current = 0", f"{KEY_DRIFT}.min_current", "greater than or equal to 1"),
    ],
)
def test_a_wrong_key_exits_2_naming_the_file_the_key_and_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tables: str, key: str, problem: str
) -> None:
    code, err = check(tmp_path, ENDPOINT + tables + "\n", capsys)
    assert code == 2
    line = next((line for line in err.splitlines() if line.startswith(f"FILE: {key}:")), None)
    assert line is not None, err
    assert problem in line
    assert "Traceback" not in err


def test_an_artifact_reference_needs_the_model_and_a_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drift = DRIFT + 'reference = "artifact:reference.csv"\n'
    no_model = '[[endpoints]]\nname = "a"\nurl = "http://127.0.0.1:1"\n' + drift
    code, err = check(tmp_path, no_model, capsys)
    assert (
        code == 2
        and "FILE: endpoints[0].drift.reference: an artifact of the served version's run needs" in err
    )
    no_registry = ENDPOINT.split("[[endpoints]]")[1]
    code, err = check(tmp_path, "[[endpoints]]" + no_registry + drift, capsys)
    assert (
        code == 2 and "FILE: endpoints[0].drift.reference: an artifact is found through the registry" in err
    )


def test_drift_by_endpoint_name_needs_a_configured_inference_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(ENDPOINT)
    assert main(["--config", str(path), "drift", "nope"]) == 2
    assert "no endpoint named 'nope' in the config (configured: iris-prod)" in capsys.readouterr().err
    assert main(["--config", str(path), "drift", "iris-prod"]) == 2
    assert "endpoints[0] (iris-prod) has no [endpoints.inference_log]" in capsys.readouterr().err
    assert main(["--config", str(path), "drift"]) == 2
    assert "give either ENDPOINT (from the config) or --log PATH" in capsys.readouterr().err
