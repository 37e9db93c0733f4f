"""What a watcher killed with -9 continues from: the detectors' states it stored while it judged.

The period's write (every `DETECTOR_STATE_EVERY`) may be minutes old when the watcher dies; what it
stored at once must be enough for the restarted one to page exactly when the one not killed would."""

from __future__ import annotations

from pathlib import Path

from tests.test_detection_rules import (
    LATENCIES,
    _housekeeping_due,
    _learnt_and_stored,
    _restarted,
    anomaly,
    evaluate,
    reading,
)

SLOW = 0.027


async def test_slow_values_moving_through_the_last_n_are_stored_at_once(tmp_path: Path) -> None:
    """Three slow minutes (the latency rule needs 4 of the last 5), then two ordinary ones: the slow
    ones are still counted, but two places closer to leaving the last 5. A watcher killed then comes
    back with them where they stand: one more slow value pages no one, as for the one not killed."""
    from mlops_console.core.housekeeping import _housekeeping_round

    settings, engine, live = await _learnt_and_stored(tmp_path)
    due = _housekeeping_due()
    for i in range(32, 45):  # ordinary values fill the last 5 (written at the period's turn, not now)
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live)
    for i in range(45, 48):
        (condition,) = anomaly(evaluate(settings, reading(1000.0 + i, SLOW), live))
        await _housekeeping_round(engine, due)
    assert condition.active is False and condition.evidence["anomalous_recent"] == 3
    for i in range(48, 50):
        (condition,) = anomaly(evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live))
        await _housekeeping_round(engine, due)  # within the period: only what is urgent is written
    assert condition.evidence["anomalous_recent"] == 3
    resumed = _restarted(settings)
    evaluate(settings, reading(1100.0, LATENCIES[0]), resumed)  # its first value sets its period
    (restarted,) = anomaly(evaluate(settings, reading(1101.0, SLOW), resumed))
    (not_killed,) = anomaly(evaluate(settings, reading(1050.0, SLOW), live))
    assert not_killed.active is False and not_killed.evidence["anomalous_recent"] == 3
    assert restarted.active is False, restarted.evidence
    assert restarted.evidence["anomalous_recent"] == 3


async def test_ordinary_values_with_nothing_slow_in_the_last_n_wait_for_the_period(tmp_path: Path) -> None:
    """The other side: a fleet's ordinary minutes are not written at once (a tenth of a core at 10,000
    endpoints), only at the period's turn."""
    from mlops_console.core.housekeeping import _housekeeping_round

    settings, engine, live = await _learnt_and_stored(tmp_path)
    stored = engine.store.read_detector_state()
    for i in range(32, 45):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live)
        await _housekeeping_round(engine, _housekeeping_due() | {"detectors": 1e18})
    assert live.changed and not live.urgent
    assert engine.store.read_detector_state() == stored
