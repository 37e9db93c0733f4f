"""End to end with real parts: a model in a sqlite-backed MLflow registry, served by a real
`mlflow models serve` process, watched by a real `mlops-console watch` process that pages a local HTTP
sink through apprise's `json://`. Kill the server: the down alert fires, is stored, is delivered.
Restart it: the resolve is delivered. Both show in `mlops-console alerts list`. An alert left open by
an endpoint the configuration no longer has resolves once when the watcher starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.alerts.external import open_external_alert
from mlops_console.core.store import Store
from tests._loopback import Sink, free_port, wait_for
from tests.fixtures_mlflow import MlflowRegistry, start_model_server

CLI = [sys.executable, "-m", "mlops_console"]


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--config", str(config), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_watch_pages_on_real_mlflow_endpoint_down_and_recovery(
    mlflow_registry: MlflowRegistry, tmp_path: Path
) -> None:
    port = free_port()
    sink = Sink().start()
    server = start_model_server(
        mlflow_registry.tracking_uri, "models:/iris@production", port, tmp_path / "s1.log"
    )
    config = tmp_path / "console.toml"
    config.write_text(
        f"""
[registry]
tracking_uri = "{mlflow_registry.tracking_uri}"

[store]
path = "{tmp_path / "console.db"}"

[[endpoints]]
name = "iris-prod"
url = "http://127.0.0.1:{port}"
adapter = "mlflow"
model = "iris"
alias = "production"
interval = 1.0
timeout = 2.0

[[notifications]]
url = "{sink.url}"
min_severity = "warning"
"""
    )
    # Left open by an endpoint since taken out of [[endpoints]] (paged, then, through a channel since gone).
    before = parse_settings({"store": {"path": str(tmp_path / "console.db")}})
    retired = {"rule": "down", "endpoint": "retired", "model": None, "version": None, "summary": "down"}
    retired_id = open_external_alert(Store(before.store.path), before, severity="critical", **retired)
    watch = subprocess.Popen(
        [*CLI, "--config", str(config), "watch", "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The probe must use the registry's serving example: a real /invocations answer, not just /ping.
        def probing_invocations() -> bool:
            status = json.loads(cli("status", "--json", config=config).stdout or "[]")
            return bool(status) and status[0]["health"] == "up" and status[0]["expected_version"] == "2"

        wait_for(probing_invocations, timeout=60, interval=0.5, what="iris-prod up with registry version")
        wait_for(lambda: "[RESOLVED] retired: endpoint down" in sink.titles(), timeout=20, what="retired")
        assert Store(before.store.path).get_alert(retired_id).state == "resolved"

        killed_at = time.time()
        server.stop()
        wait_for(
            lambda: any("[FIRING] iris-prod: endpoint down" in t for t in sink.titles()),
            timeout=20,
            what="down notification",
        )
        fired = next(m for m in sink.received if "[FIRING] iris-prod" in m["title"])
        fire_delay = fired["_at"] - killed_at
        assert "iris" in fired["message"] and "v2" in fired["message"]
        # In time, counted in probes, not seconds (a loaded machine stalls any process for seconds; the
        # time it takes is bench/fault_page.py's): fired by the very probe that reached the threshold.
        assert "iris-prod failed 2 consecutive probes (threshold 2)" in fired["message"], fired["message"]

        listed = json.loads(cli("alerts", "list", "--json", config=config).stdout)
        assert [(a["endpoint"], a["rule"], a["state"]) for a in listed] == [("iris-prod", "down", "firing")]

        server = start_model_server(
            mlflow_registry.tracking_uri, "models:/iris@production", port, tmp_path / "s2.log"
        )
        back_at = time.time()
        wait_for(lambda: any("[RESOLVED] iris-prod" in t for t in sink.titles()), timeout=30, what="resolve")
        resolved = next(m for m in sink.received if "[RESOLVED] iris-prod" in m["title"])
        resolve_delay = resolved["_at"] - back_at
        assert "The condition has cleared." in resolved["message"], resolved["message"]
        everything = json.loads(cli("alerts", "list", "--state", "all", "--json", config=config).stdout)
        (iris,) = [a for a in everything if a["endpoint"] == "iris-prod"]
        assert iris["state"] == "resolved" and iris["resolved_at"]
        assert [t for t in sink.titles() if "retired" in t] == ["[RESOLVED] retired: endpoint down"]
        print(f"fire-to-notify {fire_delay:.2f}s, recover-to-resolve {resolve_delay:.2f}s")
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=20)
        server.stop()
        sink.stop()
    assert watch.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "health" and e.get("health") == "down" for e in events)
    # Leading, every endpoint read once: what the watcher holds is left out of full collections.
    assert [e.get("event") for e in events].count("gc_frozen") == 1, err[-2000:]
    assert os.stat(tmp_path / "console.db").st_mode & 0o077 == 0
