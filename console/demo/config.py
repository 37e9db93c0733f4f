"""The console's TOML config for a running demo (schema owned by the settings module)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from mlops_console.demo.datasets import DIABETES, IRIS
from mlops_console.demo.state import BATCH_PIPELINE, EndpointState, inference_log_path

PROBE_INTERVAL_S = 1.0
DRIFT_WINDOW = "2m"
"""Short enough that the "shifted inputs" chaos shows as drift within minutes (production: 15m)."""
DRIFT_EVERY = "5s"
PROBE_TIMEOUT_S = 2.0
DEPLOY_TIMEOUT_S = 60


def _toml_str(value: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(value)


def deploy_command(root: Path, endpoint: str) -> str:
    """Shell command the console runs after substituting {model}, {alias} and {version}."""
    return " ".join(
        [
            shlex.quote(sys.executable),
            "-m mlops_console.demo.redeploy",
            f"--root {shlex.quote(str(root))}",
            f"--endpoint {shlex.quote(endpoint)}",
            "--model {model} --version {version}",
        ]
    )


def render_config(
    root: Path,
    tracking_uri: str,
    endpoints: list[EndpointState],
    pager_url: str | None = None,
    *,
    pipeline: bool = False,
) -> str:
    lines = [
        "# Written by `mlops-console demo`; regenerated on every demo start.",
        "[registry]",
        f"tracking_uri = {_toml_str(tracking_uri)}",
        "",
        "[store]",
        f"path = {_toml_str(str(root / 'console.db'))}",
    ]
    for ep in endpoints:
        deploy = f"{{ command = {_toml_str(deploy_command(root, ep.name))}, timeout = {DEPLOY_TIMEOUT_S} }}"
        lines += [
            "",
            "[[endpoints]]",
            f"name = {_toml_str(ep.name)}",
            f"url = {_toml_str(ep.url)}",
            'adapter = "mlflow"',
            f"model = {_toml_str(ep.model)}",
            f"alias = {_toml_str(ep.alias)}",
            f"interval = {PROBE_INTERVAL_S}",
            f"timeout = {PROBE_TIMEOUT_S}",
            f"metrics_url = {_toml_str(ep.url + '/metrics')}",
            f"deploy = {deploy}",
            "",
            "[endpoints.inference_log]",
            f"path = {_toml_str(str(inference_log_path(root, ep.name)))}",
            "",
            "[endpoints.drift]",
            "# No reference given: each version's first 1500 scored rows after its deploy are its reference.",
            f"window = {_toml_str(DRIFT_WINDOW)}",
            f"evaluate_every = {_toml_str(DRIFT_EVERY)}",
        ]
    for ep in endpoints:
        if ep.model == DIABETES:
            # Three of diabetes' ten features shift in the chaos: page when a quarter of them drift.
            rule = ['rule = "feature_drift"', f"endpoint = {_toml_str(ep.name)}", "threshold = 0.25"]
            lines += ["", "[[rules]]", *rule]
    if pipeline:
        # The batch-scoring job (`demo/batch.py`) logs a run every few seconds: the same rules as for a
        # nightly job, on a demo's time scale.
        lines += [
            "",
            "[[pipelines]]",
            f"name = {_toml_str(BATCH_PIPELINE)}",
            f"experiment = {_toml_str(BATCH_PIPELINE)}",
            "filter = \"tags.pipeline = 'batch-scoring'\"",
            'every = "10s"',
            'grace = "10s"',
            'max_duration = "20s"',
            'metrics = { rows_processed = "drop" }',
            'poll = "3s"',
        ]
    if any(ep.model == IRIS and ep.alias == "production" for ep in endpoints):
        # A bad release of iris (palette: "chaos: bad_release iris-prod", then promote) rolls back by itself.
        lines += [
            "",
            "[[auto_rollback]]",
            f"model = {_toml_str(IRIS)}",
            'alias = "production"',
            'watch = "10m"',
        ]
    if pager_url:
        # The demo's own pager (served by its traffic process), so notification delivery is visible.
        lines += ["", "[[notifications]]", f"url = {_toml_str(pager_url)}", 'min_severity = "warning"']
    return "\n".join(lines) + "\n"


def write_config(
    path: Path,
    root: Path,
    tracking_uri: str,
    endpoints: list[EndpointState],
    pager_url: str | None = None,
    *,
    pipeline: bool = False,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_config(root, tracking_uri, endpoints, pager_url, pipeline=pipeline))
    return path
