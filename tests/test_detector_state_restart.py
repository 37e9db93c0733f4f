"""What a watcher killed with -9 continues from: the detectors' states it stored while it judged.

The period's write (every `DETECTOR_STATE_EVERY`) may be minutes old when the watcher dies; what it
stored at once must be enough for the restarted one to page exactly when the one not killed would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlops_console.core.conditions import DetectedRules
from tests._loopback import async_wait_for
from tests.test_detection_rules import (
    LATENCIES,
    _housekeeping_due,
    _learnt_and_stored,
    _restarted,
    anomaly,
    evaluate,
    reading,
)

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine

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


async def test_a_burn_rate_building_up_toward_its_page_is_stored_at_once(tmp_path: Path) -> None:
    """An availability SLO's hour fills with failed minutes long before its burn rate pages (30 % failed
    against a 1 % budget pages at the 29th, `test_slo`). Each such minute is stored at once: a
    watcher killed after the 28th comes back with all 28 and pages at its first judged minute, not
    minutes after the one not killed would have."""
    import tomllib

    from mlops_console.config import parse_settings
    from mlops_console.core.engine import Engine
    from mlops_console.core.housekeeping import _housekeeping_round, write_detector_states
    from mlops_console.core.store import Store
    from tests.test_slo import errors, slo_of
    from tests.test_slo import reading as minute_reading

    text = f'[store]\npath = "{tmp_path / "c.db"}"\n[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\n'
    settings = parse_settings(tomllib.loads(text + 'adapter = "generic"\nslo = { availability = 0.99 }\n'))
    engine = Engine(settings, Store(settings.store.path))
    live = engine.endpoints["api"].detected

    def judged(detected: DetectedRules, minute: int, ratio: float) -> bool | None:
        condition = slo_of(
            evaluate(settings, minute_reading(minute, errors(ratio)), detected), "slo_availability"
        )
        return condition.active if condition else None

    def stored() -> DetectedRules:  # what a watcher killed now continues from
        resumed = DetectedRules()
        resumed.load(engine.store.read_detector_state()["api"])
        return resumed

    due = _housekeeping_due() | {"detectors": float("inf")}  # the period's writes are made here
    for minute in range(240 + 28):  # four clean hours, then 28 minutes with 30 % failed
        active = judged(live, minute, 0.3 if minute >= 240 else 0.0)
        assert active is not True, minute
        await _housekeeping_round(engine, due)
        if minute % 5 == 3:
            await write_detector_states(engine)  # every DETECTOR_STATE_EVERY: each fifth minute
    resumed = stored()
    assert judged(live, 268, 0.3) is True  # the 29th pages the watcher not killed
    assert judged(resumed, 268, 0.3) is None  # the restarted one's first minute sets its clock
    assert judged(resumed, 269, 0.3) is True


async def _lease_lost(engine: Engine) -> None:
    """The engine stops leading (another watcher took the lease, or the store refused its renewal)."""
    from mlops_console.core.engine_lease import _stop_leading

    await _stop_leading(engine, [asyncio.create_task(asyncio.Event().wait())])


async def test_a_lease_lost_and_taken_again_keeps_what_the_detectors_judged_since_the_last_write(
    tmp_path: Path,
) -> None:
    """Three slow minutes judged after the period's write, then the lease lost for a moment with nobody
    else storing anything: taken again, the detectors continue from what they judged (a fourth slow
    minute pages), not from the older stored state (which would wait for four more)."""
    from mlops_console.core.engine_lease import _continue_detectors

    settings, engine, live = await _learnt_and_stored(tmp_path)
    for i in range(32, 45):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live)
    for i in range(45, 48):
        evaluate(settings, reading(1000.0 + i, SLOW), live)
    await _lease_lost(engine)
    await _continue_detectors(engine)
    (condition,) = anomaly(evaluate(settings, reading(1048.0, SLOW), engine.endpoints["api"].detected))
    assert condition.active is True, condition.evidence


async def test_a_lease_taken_again_continues_from_what_the_holder_meanwhile_stored(tmp_path: Path) -> None:
    """The sibling: another watcher led meanwhile and stored what its detectors judged (ordinary
    minutes): that is newer than this engine's, and the engine continues from it."""
    from mlops_console.core.engine_lease import _continue_detectors

    settings, engine, live = await _learnt_and_stored(tmp_path)
    for i in range(45, 48):
        evaluate(settings, reading(1000.0 + i, SLOW), live)
    await _lease_lost(engine)
    other = _restarted(settings)
    for i in range(45, 48):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), other)
    engine.store.write_detector_state({"api": other.to_state()})
    await _continue_detectors(engine)
    detected = engine.endpoints["api"].detected
    assert detected.to_state() == other.to_state()
    evaluate(settings, reading(1048.0, LATENCIES[0]), detected)  # a restored state: this sets its period
    (condition,) = anomaly(evaluate(settings, reading(1049.0, SLOW), detected))
    assert condition.active is False and condition.evidence["anomalous_recent"] == 1


async def test_an_engine_that_failed_to_take_its_first_lease_still_continues_from_the_stored_state(
    tmp_path: Path,
) -> None:
    """A watcher's first attempt to lead fails before it leads (the store locked while it takes over:
    the lease loop stops with no leader tasks and is restarted): it never judged anything, so its next
    attempt continues from the stored state, not from scratch (a baseline learnt again, pages late)."""
    from mlops_console.core.engine import Engine
    from mlops_console.core.engine_lease import _continue_detectors, _stop_leading
    from mlops_console.core.store import Store

    settings, _, live = await _learnt_and_stored(tmp_path)
    fresh = Engine(settings, Store(settings.store.path))
    await _stop_leading(fresh, [])  # what the lease loop's `finally` does after the failed attempt
    await _continue_detectors(fresh)
    assert fresh.endpoints["api"].detected.to_state() == live.to_state()


async def test_a_holder_that_stored_before_this_engine_noticed_its_lease_gone_is_continued_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This engine paused past its lease (a machine suspended a moment); another watcher took the
    lease, judged three slow minutes and stored them at once (urgent), before this engine noticed,
    then died. Taken again, the engine continues from that state (one more slow minute pages), not
    from its own older one (which had not seen them: it would page four minutes late)."""
    from mlops_console.core import engine_lease
    from mlops_console.core.engine_lease import _continue_detectors, renew_lease
    from mlops_console.core.store import Store

    monkeypatch.setattr(engine_lease, "LEASE_TTL", 0.05)
    settings, engine, live = await _learnt_and_stored(tmp_path)
    assert await renew_lease(engine)
    other_store = Store(settings.store.path)
    await async_wait_for(lambda: other_store.acquire_lease("other", 10.0), what="the lease passed")
    other = _restarted(settings)
    evaluate(settings, reading(1044.0, LATENCIES[0]), other)  # a restored state: this sets its period
    for i in range(45, 48):
        evaluate(settings, reading(1000.0 + i, SLOW), other)
    other_store.write_detector_state({"api": other.to_state()})
    for i in range(45, 48):  # this engine's own last minutes, ordinary ones, judged before its pause
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live)
    await _lease_lost(engine)  # noticed only now
    await _continue_detectors(engine)
    detected = engine.endpoints["api"].detected
    assert detected.to_state() == other.to_state()
    evaluate(settings, reading(1048.0, LATENCIES[0]), detected)  # a restored state: this sets its period
    (condition,) = anomaly(evaluate(settings, reading(1049.0, SLOW), detected))
    assert condition.active is True, condition.evidence


async def test_a_condition_that_turns_while_an_urgent_write_waits_on_the_store_is_written_next_round(
    tmp_path: Path,
) -> None:
    """Housekeeping looks for urgent states only when one turned urgent since it last looked. One that
    turns while the round's own urgent write waits on a busy store (the loop goes on judging meanwhile)
    was not looked for by that round: the next round writes it, not the period's write minutes later."""
    import json
    import sqlite3
    from dataclasses import replace

    from mlops_console.core.engine import Engine
    from mlops_console.core.housekeeping import _housekeeping_round
    from mlops_console.core.store import Store
    from tests.test_detection_rules import FAST, settings_with

    web = '[[endpoints]]\nname = "web"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n'
    settings = settings_with(web + FAST, tmp_path)
    store = Store(settings.store.path, lock_timeout=30.0)
    engine = Engine(settings, store)
    api, web_rules = engine.endpoints["api"].detected, engine.endpoints["web"].detected

    def judge(detected: DetectedRules, name: str, minute: int, p95: float) -> None:
        evaluate(settings, replace(reading(1000.0 + minute, p95), endpoint=name), detected)

    for i in range(32):
        judge(api, "api", i, LATENCIES[i % 3])
        judge(web_rules, "web", i, LATENCIES[i % 3])
    due = _housekeeping_due()
    await _housekeeping_round(engine, due)  # the period's write
    for i in range(32, 36):
        judge(api, "api", i, SLOW)
    assert api.urgent
    other = sqlite3.connect(settings.store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process's write holds the lock for a moment
    try:
        writing = asyncio.create_task(_housekeeping_round(engine, due))
        # `api`'s state taken: the round waits on the store, and the loop judges on meanwhile.
        await async_wait_for(lambda: not api.urgent, what="the urgent write waiting on the store")
        for i in range(32, 36):
            judge(web_rules, "web", i, SLOW)
        assert web_rules.urgent
    finally:
        other.execute("COMMIT")
        other.close()
    await writing
    await _housekeeping_round(engine, due)  # the next round, still within the period
    stored = store.read_detector_state()
    assert stored["api"] == json.loads(json.dumps(api.to_state()))
    assert stored["web"] == json.loads(json.dumps(web_rules.to_state())), (
        "a turned state waits for the period"
    )
