"""Detector-judged rules as the engine evaluates them, and their `[[rules]]` keys in the config.

`conditions.evaluate(settings, reading, detected)` is the engine's one step per probe; readings are
built here as the engine builds them, so cadence, inhibition and evidence can be checked exactly.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlops_console.cli import main
from mlops_console.config import parse_settings
from mlops_console.config.settings import Settings
from mlops_console.core.alerts import AlertBook
from mlops_console.core.conditions import DetectedRules, Reading, evaluate, quiet
from mlops_console.core.conditions.detected import phase
from mlops_console.core.detectors.signals import DEFAULT_RULES
from mlops_console.core.replay import rules_for
from mlops_console.core.series import WindowStats
from mlops_console.core.store import Store

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine

LATENCIES = (0.008, 0.009, 0.010)


def settings_with(rules: str = "", tmp_path: Path | None = None) -> Settings:
    import tomllib

    store = f'[store]\npath = "{tmp_path / "c.db"}"\n' if tmp_path else ""
    text = store + '[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n' + rules
    return parse_settings(tomllib.loads(text))


def reading(now: float, p95: float | None, *, failures: int = 0, samples: int = 60) -> Reading:
    return Reading(
        endpoint="api",
        model=None,
        now=now,
        interval=1.0,
        health="down" if failures else "up",
        probes=100,
        consecutive_failures=failures,
        consecutive_invalid=0,
        last_error=None,
        served_version=None,
        expected_version=None,
        alias=None,
        window=WindowStats(p50=p95, p95=p95, p99=p95, samples=samples, requests=samples),
        window_source="probe",
        traffic_measured=False,
        rps=None,
        throughput_baseline=None,
    )


def anomaly(conditions: list) -> list:
    return [c for c in conditions if c.rule == "latency_anomaly"]


FAST = '[[rules]]\nrule = "latency_anomaly"\nevery = "1s"\n'


def test_default_specs_are_the_catalogue_and_replay_uses_them() -> None:
    settings = Settings()
    for signal, specs in DEFAULT_RULES.items():
        assert rules_for(signal, settings, "api") == list(specs)


def test_detector_judges_one_value_per_period_and_learns_30_before_judging() -> None:
    settings, detected = settings_with(FAST), DetectedRules()
    # Probes every 0.25 s: four readings per judged value. The first period only sets the clock.
    # The endpoint's periods start at its phase of the period past the second's turn.
    start = 1000.0 + phase("api") * 1.0
    judged = []
    for i in range(4 * 40):
        now = start + i * 0.25
        out = anomaly(evaluate(settings, reading(now, LATENCIES[(i // 4) % 3]), detected))
        judged.append(out[0].active if out else "none")
    assert judged[:4] == ["none"] * 4  # nothing judged in the first (partial) second
    assert judged[4 : 4 * 31] == [None] * (4 * 30)  # 30 values learnt: unknown, never a page
    assert set(judged[4 * 31 :]) == {False}
    # (the default minute-long rules have had no whole period of their own yet)
    assert detected.describe()[0] == "latency_anomaly: 8 ms, expected up to 15 ms, usual 9 ms, robust z -0.7"


def test_a_fleet_is_judged_once_per_period_each_endpoint_and_not_all_in_the_same_second() -> None:
    names = [f"model-{i}" for i in range(60)]
    settings = parse_settings(
        {
            "endpoints": [{"name": n, "url": "http://127.0.0.1:9", "adapter": "generic"} for n in names],
            "rules": [{"rule": "latency_anomaly", "every": "60s"}],
        }
    )
    detected = {n: DetectedRules() for n in names}
    judged_at: dict[str, list[float]] = {n: [] for n in names}
    evaluated = collections.Counter[str]()
    for second in range(240):  # one probe a second each, as the engine does: skipped where quiet
        for n in names:
            now = 6_000_000.0 + second + 0.5
            read = dataclasses.replace(reading(now, LATENCIES[second % 3]), endpoint=n)
            if not quiet(settings, read, detected[n]):
                evaluated[n] += 1
                evaluate(settings, read, detected[n])
            if detected[n].take_state() is not None:
                judged_at[n].append(now)
    for n, times in judged_at.items():
        assert len(times) in (3, 4), n  # every whole period seen once (the first only sets the clock)
        assert all(b - a == 60.0 for a, b in itertools.pairwise(times)), n
        assert evaluated[n] == len(times) + 1, n  # the skip sees each value due: first reading, judged ones
    per_second = collections.Counter(t % 60 for times in judged_at.values() for t in times)
    assert max(per_second.values()) <= 4 * 4  # 60 endpoints spread over the minute, not 60 at once
    assert len(per_second) >= 30


def test_latency_tripling_holds_at_the_fourth_slow_value_with_its_evidence() -> None:
    settings, detected = settings_with(FAST), DetectedRules()
    for i in range(32):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), detected)
    states = []
    for i in range(32, 37):
        (condition,) = anomaly(evaluate(settings, reading(1000.0 + i, 0.027), detected))
        states.append(condition.active)
    assert states == [False, False, False, True, True]  # 4 of the last 5 (the latency default)
    assert condition.interval == 1.0 and condition.for_ == 0.0
    assert condition.value == 0.027 and condition.threshold == pytest.approx(0.0154, abs=1e-4)
    assert condition.detail.startswith("api latency p95 27 ms, spike, expected up to 15 ms, usual 9 ms")
    assert condition.detail.endswith("(robust detector)")
    evidence = condition.evidence
    assert evidence is not None and evidence["detector"] == "robust" and evidence["kind"] == "spike"
    assert evidence["expected"] == [0.0, pytest.approx(0.0154, abs=1e-4)]
    assert evidence["baseline"]["median"] == pytest.approx(0.009) and evidence["anomalous_recent"] == 5
    json.dumps(evidence, allow_nan=False)  # stored as JSON: no infinities


def test_a_down_endpoint_feeds_and_judges_nothing() -> None:
    settings, detected = settings_with(FAST), DetectedRules()
    for i in range(32):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), detected)
    assert anomaly(evaluate(settings, reading(1040.0, 5.0, failures=3), detected)) == []
    # Nothing was learnt from the outage either: the next normal value is judged against 9 ms.
    (after,) = anomaly(evaluate(settings, reading(1041.0, 0.009), detected))
    assert after.active is False and after.evidence["baseline"]["median"] == pytest.approx(0.009)


def test_a_static_rule_given_a_detector_leaves_the_traffic_family(tmp_path: Path) -> None:
    settings = settings_with('[[rules]]\nrule = "latency_p95"\ndetector = "robust"\nevery = "1s"\n')
    detected = DetectedRules()
    rules = [c.rule for c in evaluate(settings, reading(1000.0, 5.0), detected)]
    assert "latency_p95" not in rules  # not the 1 s limit any more, and not judged before a period
    rules = [c.rule for c in evaluate(settings, reading(1001.5, 5.0), detected)]
    assert rules.count("latency_p95") == 1  # judged by its robust detector (learning: unknown)
    static = [c.rule for c in evaluate(settings_with(), reading(1000.0, 5.0), DetectedRules())]
    assert "latency_p95" in static


def test_disabled_adaptive_rule_is_not_evaluated() -> None:
    settings = settings_with('[[rules]]\nrule = "latency_anomaly"\nenabled = false\nevery = "1s"\n')
    detected = DetectedRules()
    for i in range(5):
        assert anomaly(evaluate(settings, reading(1000.0 + i, 0.01), detected)) == []


def test_evidence_reaches_the_fired_event_and_alerts_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_with(FAST, tmp_path)
    store, book, detected = Store(settings.store.path), AlertBook(settings), DetectedRules()
    writes = []
    for i in range(36):
        value = LATENCIES[i % 3] if i < 32 else 0.027
        for condition in evaluate(settings, reading(1000.0 + i, value), detected):
            writes.extend(book.evaluate(condition))
    (fired,) = [w for w in writes if w.kind == "firing"]
    fired(store)
    (alert,) = store.open_alerts()
    assert alert.rule == "latency_anomaly" and "expected up to 15 ms" in alert.summary
    event = next(e for e in store.events(alert.id) if e.kind == "fired")
    assert event.data is not None and event.data["evidence"]["detector"] == "robust"
    assert event.data["evidence"]["observed"] == 0.027
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\npath = "{settings.store.path}"\n')
    assert main(["--config", str(config), "alerts", "show", str(alert.id)]) == 0
    shown = capsys.readouterr().out
    assert "    why: robust detector: observed 27 ms, expected up to 15 ms, usual 9 ms, score 7.3" in shown


BAD_RULES = [
    ('rule = "latency_p95"\ndetector = "binomial"', "rules[0].detector: 'binomial' cannot judge latency_p95"),
    ('rule = "latency_anomaly"\ndetector = "threshold"', "rules[0].detector: 'threshold' cannot judge"),
    ('rule = "latency_anomaly"\nthreshold = 2', "rules[0].threshold: only a static limit has one"),
    ('rule = "latency_anomaly"\nparams = { zz = 1 }', "rules[0].params: unknown detector parameter(s): zz"),
    ('rule = "latency_anomaly"\nparams = { z = "high" }', "rules[0].params: z must be a finite number"),
    ('rule = "latency_anomaly"\nparams = { z = inf }', "rules[0].params: z must be a finite number"),
    ('rule = "latency_anomaly"\npersistence = [4, 3]', "rules[0].persistence: expected [k, n]"),
    ('rule = "down"\ndetector = "robust"', "rules[0].detector: rule 'down' is not judged by a detector"),
    ('rule = "latency_anomaly"\nevery = "0s"', "rules[0].every: must be more than 0 seconds"),
    (
        'rule = "error_ratio_anomaly"\ndetector = "burn_rate"\nparams = { objective = 99.9 }',
        "rules[0].params: objective must be between 0 and 1",
    ),
    # Out of range, each of these failed the detector at its first poll (or at its first level shift)
    # on every endpoint the rule covers, or held the engine's loop.
    *(
        (f'rule = "{rule}"\nparams = {{ {params} }}', f"rules[0].params: {message}")
        for rule, params, message in [
            ("latency_anomaly", "accept_after = 1", "accept_after must be 0 (never) or at least 2, got 1"),
            ("latency_anomaly", "long_step = 0", "long_step must be at least 1, got 0"),
            ("latency_anomaly", "rel_floor = -1.0", "rel_floor must be at least 0, got -1.0"),
            ("latency_anomaly", "z = 0.0", "z must be more than 0, got 0.0"),
            ("error_ratio_anomaly", "window = 0", "window must be at least 1, got 0"),
            ("error_ratio_anomaly", "alpha = 0.0", "alpha must be between 0 and 1 (e.g. 0.001), got 0.0"),
            ("throughput_drop", "history_step = 0.0", "history_step must be more than 0, got 0.0"),
            ("throughput_drop", "history_keep = 1e300", "history_keep / history_step must be at most"),
        ]
    ),
]


@pytest.mark.parametrize(("table", "message"), BAD_RULES)
def test_bad_detector_keys_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n\n[[rules]]\n{table}\n')
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {message}" in err and "Traceback" not in err


def test_good_detector_keys_pass_and_reach_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "c.db"}"\n\n'
        '[[rules]]\nrule = "error_ratio_anomaly"\ndetector = "burn_rate"\nparams = { objective = 0.99 }\n'
        'severity = "critical"\n\n'
        '[[rules]]\nrule = "latency_anomaly"\nparams = { z = 5.0, persistence = [2, 3] }\n'
    )
    assert main(["config", "check", str(path)]) == 0
    settings = parse_settings(__import__("tomllib").loads(path.read_text()))
    (_, errors) = rules_for("error_rate", settings, "api")
    assert (errors.detector, errors.params["objective"], errors.severity) == ("burn_rate", 0.99, "critical")
    (_, latency) = rules_for("latency", settings, "api")
    assert latency.params["z"] == 5.0 and latency.params["direction"] == "up"
    assert latency.evaluator().k == 2


def test_restored_detectors_continue_an_ongoing_anomaly_without_warming_up(tmp_path: Path) -> None:
    settings, detected = settings_with(FAST, tmp_path), DetectedRules()
    for i in range(32):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), detected)
    assert not detected.urgent or detected.take_state()  # the end of warm-up is worth storing
    for i in range(32, 36):
        (condition,) = anomaly(evaluate(settings, reading(1000.0 + i, 0.027), detected))
    assert condition.active is True and detected.urgent  # the condition turned: store it now
    store = Store(settings.store.path)
    state = detected.take_state()
    assert state is not None and not detected.urgent and detected.take_state() is None
    store.write_detector_state({"api": state})

    # A new engine: the state comes back from the store, through JSON.
    resumed = DetectedRules()
    restored = resumed.load(Store(settings.store.path).read_detector_state()["api"])
    assert sorted(restored) == ["error_ratio_anomaly", "latency_anomaly", "throughput_anomaly"]
    evaluate(settings, reading(1100.0, 0.027), resumed)  # sets the new run's clock
    (condition,) = anomaly(evaluate(settings, reading(1101.0, 0.027), resumed))
    assert condition.active is True and condition.evidence["anomalous_recent"] == 5
    # Without it, the same value would be the first of a 30-value warm-up: no page for 30 values.
    fresh = DetectedRules()
    evaluate(settings, reading(1100.0, 0.027), fresh)
    assert anomaly(evaluate(settings, reading(1101.0, 0.027), fresh))[0].active is None


def _restarted(settings: Settings) -> DetectedRules:
    """What a watcher started after a kill -9 continues from (`_restore_detectors`)."""
    resumed = DetectedRules()
    resumed.load(Store(settings.store.path).read_detector_state()["api"])
    return resumed


def _housekeeping_due() -> dict[str, float]:
    """A housekeeping round's last runs: only the status slice and the detectors' period are due."""
    due = {"status": float("inf"), "slice": 0.0, "sync": float("inf"), "remind": float("inf")}
    return due | {"escalate": float("inf"), "prune": float("inf"), "detectors": 0.0}


async def _learnt_and_stored(
    tmp_path: Path, store: Store | None = None
) -> tuple[Settings, Engine, DetectedRules]:
    """An engine whose endpoint `api` has learnt its baseline (32 ordinary values), stored by the
    period's write: its settings, its engine and the endpoint's detectors."""
    from mlops_console.core.engine import Engine
    from mlops_console.core.housekeeping import _housekeeping_round

    settings = settings_with(FAST, tmp_path)
    engine = Engine(settings, store or Store(settings.store.path))
    detected = engine.endpoints["api"].detected
    for i in range(32):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), detected)
    await _housekeeping_round(engine, _housekeeping_due())  # the period's write
    return settings, engine, detected


async def test_a_condition_that_turns_is_stored_at_once_and_a_quiet_state_only_every_period(
    tmp_path: Path,
) -> None:
    """What the detectors learnt goes to the store every DETECTOR_STATE_EVERY (a fleet learns every
    minute: rewriting it all every few seconds cost a tenth of a core), but an endpoint whose condition
    starts holding is written within the next housekeeping round, alone: a watcher killed in the
    middle of that incident comes back knowing it."""
    from dataclasses import replace

    from mlops_console.core.engine import Engine
    from mlops_console.core.housekeeping import DETECTOR_STATE_EVERY, _housekeeping_round

    calm = '[[endpoints]]\nname = "calm"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n'
    settings = settings_with(calm + FAST, tmp_path)
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    hot, quiet = engine.endpoints["api"].detected, engine.endpoints["calm"].detected

    def judge(at: float, hot_p95: float) -> None:
        evaluate(settings, reading(at, hot_p95), hot)
        evaluate(settings, replace(reading(at, LATENCIES[int(at) % 3]), endpoint="calm"), quiet)

    def stored() -> dict:
        return store.read_detector_state()

    def now_state(detected: DetectedRules) -> dict:
        return json.loads(json.dumps(detected.to_state()))

    for i in range(32):
        judge(1000.0 + i, LATENCIES[i % 3])
    due = _housekeeping_due()
    await _housekeeping_round(engine, due)  # the period is due: everything learnt so far
    learnt = stored()
    assert learnt == {"api": now_state(hot), "calm": now_state(quiet)}

    for i in range(32, 36):  # the hot endpoint's latency anomaly starts holding; the calm one learns on
        judge(1000.0 + i, 0.027)
    assert anomaly(evaluate(settings, reading(1036.0, 0.027), hot))[0].active is True
    await _housekeeping_round(engine, due)  # within the period
    assert stored()["api"] == now_state(hot), "the turned condition waits for the period"
    assert stored()["calm"] == learnt["calm"] != now_state(quiet), "a quiet state rewritten early"

    await _housekeeping_round(engine, due)
    assert stored()["calm"] == learnt["calm"]
    due["detectors"] -= DETECTOR_STATE_EVERY  # the period has passed
    await _housekeeping_round(engine, due)
    assert stored() == {"api": now_state(hot), "calm": now_state(quiet)}


async def test_a_turned_state_the_store_refused_is_written_next_round_not_next_period(tmp_path: Path) -> None:
    import sqlite3

    from mlops_console.core.housekeeping import _housekeeping_round

    store = Store(tmp_path / "c.db", lock_timeout=0.2)  # the file `settings_with` names
    settings, engine, hot = await _learnt_and_stored(tmp_path, store)
    due = _housekeeping_due()
    for i in range(32, 36):
        (condition,) = anomaly(evaluate(settings, reading(1000.0 + i, 0.027), hot))
    assert condition.active is True and hot.urgent
    other = sqlite3.connect(settings.store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process's write holds the lock for a moment
    with pytest.raises(sqlite3.OperationalError):
        await _housekeeping_round(engine, due)  # the loop logs it and comes back in 0.5 s
    other.execute("COMMIT")
    other.close()
    await _housekeeping_round(engine, due)  # still within the period
    assert store.read_detector_state()["api"] == json.loads(json.dumps(hot.to_state()))


async def test_a_periods_write_the_store_refused_is_tried_again_soon_not_next_period(tmp_path: Path) -> None:
    import sqlite3

    from mlops_console.core.housekeeping import DETECTOR_STATE_RETRY, _housekeeping_round

    store = Store(tmp_path / "c.db", lock_timeout=0.2)
    settings, engine, live = await _learnt_and_stored(tmp_path, store)
    for i in range(32, 40):  # ordinary values: learning worth keeping, nothing urgent
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live)
    assert live.changed and not live.urgent
    due = _housekeeping_due()
    other = sqlite3.connect(settings.store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError):
        await _housekeeping_round(engine, due)
    other.execute("COMMIT")
    other.close()
    await _housekeeping_round(engine, due)  # at once: not due yet (the store may still be busy)
    assert store.read_detector_state()["api"] != json.loads(json.dumps(live.to_state()))
    due["detectors"] -= DETECTOR_STATE_RETRY + 1  # that much later
    await _housekeeping_round(engine, due)
    assert store.read_detector_state()["api"] == json.loads(json.dumps(live.to_state()))


async def test_slow_values_counted_toward_k_of_n_are_stored_at_once(tmp_path: Path) -> None:
    """A watcher killed after 3 of the 4 slow values its latency rule needs comes back counting 3: it
    pages at the 4th, as the one not killed does (not 4 values late); and one killed after a blip has
    passed comes back counting what is left of it: one slow value then pages no one."""
    from mlops_console.core.housekeeping import _housekeeping_round

    settings, engine, live = await _learnt_and_stored(tmp_path)
    due = _housekeeping_due()
    for i in range(32, 35):
        (condition,) = anomaly(evaluate(settings, reading(1000.0 + i, 0.027), live))
    assert condition.active is False and condition.evidence["anomalous_recent"] == 3
    await _housekeeping_round(engine, due)  # the next round, within the period
    resumed = _restarted(settings)
    evaluate(settings, reading(1100.0, 0.027), resumed)  # its first value sets its period
    (restarted,) = anomaly(evaluate(settings, reading(1101.0, 0.027), resumed))
    assert anomaly(evaluate(settings, reading(1035.0, 0.027), live))[0].active is True
    assert restarted.active is True, restarted.evidence

    for i in range(36, 41):  # back to normal: the blip leaves the last 5 values
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), live)
    await _housekeeping_round(engine, due)
    assert anomaly(evaluate(settings, reading(1041.0, 0.027), live))[0].active is False
    resumed = _restarted(settings)
    evaluate(settings, reading(1100.0, LATENCIES[0]), resumed)
    (restarted,) = anomaly(evaluate(settings, reading(1101.0, 0.027), resumed))
    assert restarted.active is False, restarted.evidence


def test_restored_state_of_a_reconfigured_rule_is_not_used() -> None:
    settings, detected = settings_with(FAST), DetectedRules()
    for i in range(32):
        evaluate(settings, reading(1000.0 + i, LATENCIES[i % 3]), detected)
    resumed = DetectedRules()
    resumed.load(json.loads(json.dumps(detected.to_state())))
    stricter = settings_with(FAST + "params = { z = 5.0 }\n")
    evaluate(stricter, reading(1100.0, 0.009), resumed)
    (condition,) = anomaly(evaluate(stricter, reading(1101.0, 0.009), resumed))
    assert condition.active is None  # another question, another baseline: it learns afresh
    assert resumed.load({"latency_anomaly": {"spec": {}}, "gone": {}}) == []
