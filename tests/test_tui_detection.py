"""The console's alert detail says why a detector fired: the value against the band it expected."""

from __future__ import annotations

from pathlib import Path

from mlops_console.core.alerts import fingerprint
from mlops_console.core.store import NewAlert
from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen
from tests import sample
from tests.test_tui_app import rows, settle

EVIDENCE = {
    "detector": "robust",
    "signal": "latency",
    "observed": 0.027,
    "expected": [0.0, 0.0154],
    "score": 7.3,
    "kind": "spike",
    "anomalous_recent": 4,
    "baseline": {"median": 0.009, "spread": 0.14, "z": 7.3, "baseline_n": 30, "seasonal": False},
}


async def test_alert_detail_shows_the_detectors_evidence(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    store = app.backend.store
    alert_id = store.open_alert(
        NewAlert(
            fingerprint=fingerprint("latency_anomaly", "fraud-scorer", None),
            rule="latency_anomaly",
            endpoint="fraud-scorer",
            severity="warning",
            summary="fraud-scorer latency p95 27 ms, spike, expected up to 15 ms (robust detector)",
            started_at=sample.clock() - 60,
            value=0.027,
            threshold=0.0154,
            evidence={**EVIDENCE, "detector": "[b]robust\x1b[31m"},
        ),
        [],
    )
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(AlertTimelineScreen(alert_id))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertTimelineScreen)
        head = screen.summary.render().plain  # type: ignore[union-attr]
        # Untrusted text stays text: the markup shows as written, the escape code goes.
        assert "why: [b]robust detector: observed 27 ms, expected up to 15 ms, usual 9 ms, score 7.3" in head
        assert "\x1b" not in head and "threshold" not in head
        (fired,) = [r for r in rows(screen.table) if r[1] == "▲ fired"]
        assert fired[3].startswith("[b]robust detector: observed 27 ms, expected up to 15 ms")
