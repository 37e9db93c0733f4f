"""The only benchmark thing CI runs: `python -m bench --quick` still runs end to end.

Benchmarks never fail CI on timing; this checks the suite exits 0 and writes a results JSON with
every scenario present (and no scenario crashed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "engine_scale",
    "render",
    "startup",
    "alert_store",
    "fault_page",
    "memory",
    "quality_score",
    "quality_tail",
    "quality_memory",
    "serve_log",
    "quality_alarms",
    "detection",
}


# A guard against a hang, not a speed check: the quick run takes about a minute and a half on an idle
# 2-core machine (serve_log starts two scoring servers), several minutes on a loaded one.
@pytest.mark.timeout(480)
def test_bench_quick_runs_and_reports_every_scenario(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=450,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(output.read_text())
    assert doc["quick"] is True
    assert set(doc["results"]) >= SCENARIOS, sorted(doc["results"])
    for name in SCENARIOS:
        assert "error" not in doc["results"][name], doc["results"][name].get("error")
    assert doc["machine"]["cpus_logical"]
    assert doc["table"], "no table rows"
    assert "scenario" in proc.stdout and "results:" in proc.stdout
