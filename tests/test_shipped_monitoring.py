"""The shipped Grafana dashboard and Prometheus files: they name only series the watcher exports, and
Prometheus' own `promtool` accepts them. (Their queries run against a real Prometheus in
`test_prometheus_real`.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from mlops_console.core.selfmetrics import series_names

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "config" / "grafana" / "mlops-console.json"
PROMETHEUS = ROOT / "config" / "prometheus"
SERIES = re.compile(r"\bmlops_console_\w+")


def dashboard_queries() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in document["panels"] for t in p.get("targets", ())]
    queries += [v["definition"] for v in document["templating"]["list"] if "definition" in v]
    return queries


def test_dashboard_queries_name_only_exported_series() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    named = set()
    for query in queries:
        found = set(SERIES.findall(query))
        assert found, f"names no console series: {query}"
        assert found <= series_names(), f"{query}: {sorted(found - series_names())} are not exported"
        named |= found
    # What the dashboard is for: fleet health, latency, throughput, alerts, notification failures.
    for family in ("endpoint_up", "endpoint_latency_seconds", "endpoint_requests_per_second",
                   "alerts_firing", "notifications_total", "engine_state"):  # fmt: skip
        assert f"mlops_console_{family}" in named, family


def test_rules_name_only_exported_series() -> None:
    text = (PROMETHEUS / "mlops-console.rules.yml").read_text()
    found = set(SERIES.findall(text))
    assert "mlops_console_watchdog" in found
    assert found <= series_names(), sorted(found - series_names())


def test_promtool_accepts_the_shipped_config_and_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool comes with Debian's prometheus package"
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "mlops-console.rules.yml"]):
        checked = subprocess.run(
            [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
