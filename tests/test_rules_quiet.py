"""Probes that cannot change any alert skip the rules; everything that can still pages and resolves.

After a probe the engine first asks `conditions.quiet`: for an endpoint the alert book holds nothing
of, a reading with every value inside its limit (and no detector value due) changes nothing, so no
condition is built. These tests pin what must never be skipped: a reading past any limit, a `for` that
elapses while every probe says the same, a throughput collapse that becomes judgeable only as time
passes, a detector's value at the turn of its period, an adopted alert's resolve, and a firing mark the
book no longer backs. The engine is driven probe by probe (`Engine.probed`), with the alert book on a
clock the test sets, and its writes are run against a real store.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.alerts import AlertBook
from mlops_console.core.alerts.external import open_external_alert
from mlops_console.core.conditions import DEFAULTS, DetectedRules, Reading, evaluate, judged_quietly, quiet
from mlops_console.core.conditions.detected import phase
from mlops_console.core.conditions.params import EndpointRules
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.engine import Engine
from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.series import MetricsSample, ThroughputBaseline, WindowStats
from mlops_console.core.store import Store

T0 = 1_800_000_000.0


# -- the families' proofs against their rules ----------------------------------------------------------
def settings_with(rules: str = "", tmp_path: Path | None = None, endpoint: str = "") -> Settings:
    store = f'[store]\npath = "{tmp_path / "console.db"}"\n' if tmp_path else ""
    text = (
        store
        + '[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\ninterval = 1.0\n'
        + endpoint
        + rules
    )
    return parse_settings(tomllib.loads(text))


def reading(**changes: Any) -> Reading:
    base = Reading(
        endpoint="api",
        model="iris",
        now=T0,
        interval=1.0,
        health="up",
        probes=100,
        consecutive_failures=0,
        consecutive_invalid=0,
        last_error=None,
        served_version="3",
        expected_version="3",
        alias="production",
        window=WindowStats(p50=0.01, p95=0.02, p99=0.03, samples=60, requests=60, error_ratio=0.0),
        window_source="probe",
        traffic_measured=False,
        rps=None,
        throughput_baseline=None,
    )
    return replace(base, **changes)


def rules_table(rule: str, key: str, value: str) -> str:
    return f'[[rules]]\nrule = "{rule}"\n{key} = {value}\n'


OVERRIDES = [
    "",
    rules_table("down", "threshold", "3") + rules_table("latency_p95", "threshold", "0.2"),
    rules_table("error_ratio", "threshold", "0.2") + rules_table("throughput_drop", "threshold", "0.8"),
    rules_table("throughput_drop", "threshold", "0.3"),
    rules_table("invalid_prediction", "threshold", "1") + rules_table("latency_p95", "enabled", "false"),
]
QUALITY = QualitySnapshot(
    log="inferences.jsonl", evaluated_at=T0, window=900.0, rows=100, prediction_rows=100, invalid_rows=100
)


def readings() -> list[Reading]:
    """Every combination of values at, just below and just past each default and overridden limit."""
    out = []
    windows = [
        WindowStats(),
        *(
            WindowStats(p95=p95, samples=samples, requests=requests, error_ratio=ratio)
            for p95, samples, requests, ratio in itertools.product(
                (None, 0.2, 0.2000001, 1.0, 1.0000001), (1, 60), (9, 10), (None, 0.05, 0.0500001, 0.2000001)
            )
        ),
    ]
    # (rates, seconds): medians 10 (no spread, MAD 1, or far below the highest rate) and 0.2.
    baselines = [None] + [
        ThroughputBaseline(rates, span)
        for rates, span in (
            ((10.0,) * 3, 299.0),
            ((10.0,) * 3, 300.0),
            ((9.0, 10.0, 11.0), 400.0),
            ((9.9, 10.0, 40.0), 400.0),
            ((0.2,) * 3, 400.0),
        )
    ]
    for failures, invalid, window, measured, source in itertools.product(
        (0, 1, 2, 3), (0, 1, 2), windows, (False, True), ("probe", "metrics")
    ):
        out.append(
            reading(
                consecutive_failures=failures,
                consecutive_invalid=invalid,
                health="down" if failures else "up",
                window=window,
                traffic_measured=measured,
                window_source=source,
            )
        )
    for rps, baseline in itertools.product((None, 0.0, 2.0, 4.9999, 5.0, 7.0, 9.0, 12.0, 29.0), baselines):
        out.append(reading(rps=rps, throughput_baseline=baseline, traffic_measured=True))
    out += [
        reading(served_version="4"),
        reading(served_version=None),
        reading(expected_version=None),
        reading(adopted=(("deploy_not_converged", "iris"),)),
        reading(adopted=(("deploy_not_converged", "iris"),), health="down", consecutive_failures=1),
        reading(quality=QUALITY, quality_interval=60.0),
        reading(quality=replace(QUALITY, invalid_rows=0), quality_interval=60.0),
        reading(probes=0, health="unknown"),
        reading(health="loading"),
    ]
    return out


@pytest.mark.parametrize(
    "rules", OVERRIDES, ids=["defaults", "down-latency", "errors-drop", "small-drop", "invalid-disabled"]
)
def test_quiet_is_never_said_of_a_reading_a_rule_holds_for(rules: str) -> None:
    settings = settings_with(rules)
    quiet_seen = 0
    for r in readings():
        if quiet(settings, r):
            quiet_seen += 1
            active = [c.rule for c in evaluate(settings, r) if c.active]
            assert active == [], f"quiet, yet {active} would hold for {r}"
    assert quiet_seen > 100, "quiet must hold for ordinary readings, or every probe pays for the rules"


def test_a_healthy_reading_is_quiet_and_one_past_any_limit_is_not() -> None:
    settings = settings_with()
    assert quiet(settings, reading())
    assert quiet(settings, reading(consecutive_failures=1, health="down")), "one failure is below `down`"
    past_a_limit = {
        "down": reading(consecutive_failures=2, health="down"),
        "invalid_prediction": reading(consecutive_invalid=2),
        "latency_p95": reading(window=WindowStats(p95=1.0000001, samples=60)),
        "error_ratio": reading(
            window=WindowStats(p95=0.02, samples=60, requests=10, error_ratio=0.0500001),
            traffic_measured=True,
        ),
        "throughput_drop": reading(
            rps=4.9, throughput_baseline=ThroughputBaseline((10.0,) * 3, 300.0), traffic_measured=True
        ),
        "version_mismatch": reading(served_version="4"),
        "deploy_not_converged": reading(adopted=(("deploy_not_converged", "iris"),), health="loading"),
        "invalid_prediction (logged)": reading(quality=QUALITY, quality_interval=60.0),
    }
    for rule, r in past_a_limit.items():
        assert not quiet(settings, r), rule
        assert any(c.active for c in evaluate(settings, r)), rule


# -- the engine, probe by probe ----------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Driven:
    """An engine on a real store, its alert book on `clock`, probed by hand; every alert write it
    decides is run against the store at once, as its writer would."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.store = Store(settings.store.path)
        self.engine = Engine(settings, self.store)
        self.engine.book = AlertBook(settings, clock=self.clock)
        self.state: EndpointState = self.engine.endpoints["api"]
        self.writes: list[tuple[float, str, str]] = []

    def probe(self, at: float, latency: float | None = 0.01) -> None:
        self.clock.now = at
        result = (
            ProbeResult(ok=True, status=200, latency=latency)
            if latency is not None
            else ProbeResult(ok=False, error="connection refused")
        )
        self.engine.probed(self.state, result, at)
        queue = self.engine.writer.queue
        while queue:
            write = queue.popleft()
            write(self.store)
            self.writes.append((at, write.kind, write.alert.rule))

    def fired(self, rule: str) -> list[float]:
        return [at for at, kind, r in self.writes if r == rule and kind in ("firing", "flapping")]

    def resolved(self, rule: str) -> list[float]:
        return [at for at, kind, r in self.writes if r == rule and kind == "resolved"]


def test_a_for_duration_elapsing_fires_on_time_although_every_probe_says_the_same(tmp_path: Path) -> None:
    driven = Driven(settings_with(tmp_path=tmp_path))
    for second in range(40):
        driven.probe(T0 + second, latency=2.0)  # p95 2 s against 1 s, `for` 30 s: identical probes
        if second == 10:
            assert driven.state.firing == ("latency_p95 (pending)",)
    assert driven.fired("latency_p95") == [T0 + 30], "fires at the first probe once `for` has elapsed"
    # Fast again: the slow probes leave the one-minute window, and the alert resolves once.
    for second in range(40, 120):
        driven.probe(T0 + second, latency=0.01)
    assert len(driven.resolved("latency_p95")) == 1
    assert driven.state.firing == () and driven.state.health == "up"
    assert [a.state for a in driven.store.list_alerts("all")] == ["resolved"]


def test_a_throughput_collapse_fires_once_its_baseline_is_old_enough_with_nothing_else_changing(
    tmp_path: Path,
) -> None:
    metrics = 'metrics_url = "http://127.0.0.1:9/metrics"\n'
    driven = Driven(settings_with(tmp_path=tmp_path, endpoint=metrics))
    requests = 0.0
    for second in range(420):
        at = T0 + second
        if second < 200:
            requests += 10.0  # 10 req/s, then nothing at all: well before the baseline may judge
        if second % 5 == 0:
            sample = MetricsSample(at=at, requests=requests, errors=0.0)
            driven.state.add_metrics(sample, driven.state.adapter.metric_names())
        driven.probe(at)
    fired = driven.fired("throughput_drop")
    assert len(fired) == 1, driven.writes
    # The history starts at the second scrape (T0 + 5): judged from 300 s of it on, then `for` 60 s.
    assert T0 + 5 + 300 + 60 <= fired[0] <= T0 + 5 + 300 + 60 + 10
    assert driven.writes == [(fired[0], "firing", "throughput_drop")]


FAST_ANOMALY = '[[rules]]\nrule = "latency_anomaly"\nevery = "1s"\n'


def test_a_detector_judges_at_the_turn_of_its_period_while_every_static_rule_is_quiet(
    tmp_path: Path,
) -> None:
    driven = Driven(settings_with(FAST_ANOMALY, tmp_path=tmp_path))
    # Probes twice a second; the detector takes one value a second, learns 30, then judges.
    for tick in range(2 * 100):
        driven.probe(T0 + tick / 2, latency=(0.008, 0.009, 0.010)[tick // 2 % 3])
    assert driven.writes == []
    assert "expected up to" in driven.state.snapshot().detection[0]
    for tick in range(2 * 100, 2 * 200):
        driven.probe(T0 + tick / 2, latency=0.05)  # 5x slower: far under the static 1 s limit
    assert len(driven.fired("latency_anomaly")) == 1, driven.writes
    assert driven.fired("latency_p95") == []


def test_what_the_snapshot_says_of_a_detector_follows_each_of_its_values(tmp_path: Path) -> None:
    """The detectors' text and bands are built once per value judged and reused by every snapshot in
    between; each value judged must still show up in the next snapshot."""
    driven = Driven(settings_with(FAST_ANOMALY, tmp_path=tmp_path))
    said: list[tuple[str, ...]] = []
    for tick in range(2 * 40):
        driven.probe(T0 + tick / 2, latency=(0.008, 0.009, 0.010)[tick // 2 % 3])
        shown = driven.state.snapshot().detection
        if not said or said[-1] != shown:
            said.append(shown)
    learning = [shown[0] for shown in said if "learning the baseline" in shown[0]]
    assert [f"({k} of 30 values)" in text for k, text in enumerate(learning, start=1)] == [True] * 30
    assert "expected up to" in said[-1][0] and driven.state.snapshot().bands[0][0] == "latency"


def test_judging_quietly_learns_what_evaluate_learns_and_is_never_said_while_a_detector_holds() -> None:
    """Once a minute every endpoint of a fleet has a detector value due; for an endpoint the book
    holds nothing of, the engine judges it without building conditions (`judged_quietly`). It must
    learn exactly what `evaluate` would, and never call quiet a reading whose condition holds. A probe
    failed once (below `down`'s threshold, so still quiet) is learnt from by neither."""
    settings = settings_with(FAST_ANOMALY)
    by_evaluate, by_judging = DetectedRules(), DetectedRules()
    quietly_seen, held_seen = 0, 0
    for tick in range(2 * 140):
        p95 = (0.008, 0.009, 0.010)[tick // 2 % 3] if tick < 2 * 100 else 0.05
        window = WindowStats(p50=p95, p95=p95, p99=p95, samples=60, requests=60)
        r = reading(now=T0 + tick / 2, window=window, consecutive_failures=int(tick % 10 == 4))
        held = [c.rule for c in evaluate(settings, r, by_evaluate) if c.active]
        quietly = judged_quietly(settings, r, by_judging)
        assert not (quietly and held), f"judged quiet at tick {tick}, yet {held} holds"
        assert by_judging.to_state() == by_evaluate.to_state(), f"learnt differently at tick {tick}"
        quietly_seen += quietly
        held_seen += bool(held)
    assert quietly_seen > 2 * 90 and held_seen > 0


def test_quiet_is_never_said_once_a_detector_period_has_turned_however_close_to_its_edge() -> None:
    """`DetectedRules.quiet` remembers the span of time its answer holds (it is asked on every probe).
    Whenever it says quiet, judging the same reading must judge nothing: readings many times a
    period, right at and around each period's edge, and once back in time."""
    settings = settings_with(FAST_ANOMALY)  # one value a second
    detected = DetectedRules()
    edges = [T0 + k + phase("api") for k in range(1, 40)]
    times = sorted(
        {T0 + tick / 20 for tick in range(20 * 40)}
        | {edge + offset for edge in edges for offset in (-1e-3, -1e-6, 0.0, 1e-6, 1e-3)}
    )
    times[600:600] = [times[300]]  # the clock stepped back
    said_quiet = judged = 0
    for now in times:
        r = reading(now=now)
        rules = EndpointRules(DEFAULTS, settings, r)
        was_quiet = detected.quiet(r, rules)
        detected.changed = False
        detected.judge(r, rules)
        assert not (was_quiet and detected.changed), f"quiet at {now - T0:.7f}, yet a value was due"
        said_quiet += was_quiet
        judged += detected.changed
    assert said_quiet > len(times) // 2 and judged >= 38


def test_an_adopted_alert_resolves_although_each_probe_alone_is_quiet(tmp_path: Path) -> None:
    settings = settings_with(tmp_path=tmp_path)
    first = Driven(settings)
    for second in range(3):
        first.probe(T0 + second, latency=None)
    assert first.fired("down") == [T0 + 1]
    # A new watcher on the same store (a restart): the outage is over, every probe answers.
    second = Driven(settings)
    second.engine.book.restore(second.store.open_alerts())
    assert second.state.firing == ()
    for at in range(10, 20):
        second.probe(T0 + at)
    # Seen clear for 3 probe intervals (`ADOPTED_CLEAR_PROBES`): resolved once, by the second watcher.
    assert second.resolved("down") == [T0 + 13]
    assert [a.state for a in second.store.list_alerts("all")] == ["resolved"]


def test_an_alert_a_command_opens_while_every_probe_is_quiet_resolves(tmp_path: Path) -> None:
    settings = settings_with(tmp_path=tmp_path)
    driven = Driven(settings)
    for second in range(5):
        driven.probe(T0 + second)
    assert driven.writes == [] and driven.state.health == "up"
    # A promote whose redeploy did not converge raises this itself; the engine adopts it from the
    # store (housekeeping, every few seconds) and resolves it once the endpoint is seen healthy.
    open_external_alert(
        driven.store,
        settings,
        rule="deploy_not_converged",
        endpoint="api",
        model=None,
        version="4",
        severity="critical",
        summary="api did not converge on v4",
    )
    driven.engine.book.restore(driven.store.open_alerts())
    for second in range(5, 15):
        driven.probe(T0 + second)
    assert driven.resolved("deploy_not_converged") == [T0 + 8]
    assert [(a.rule, a.state) for a in driven.store.list_alerts("all")] == [
        ("deploy_not_converged", "resolved")
    ]


def test_a_firing_mark_the_book_no_longer_holds_goes_with_the_next_quiet_probe(tmp_path: Path) -> None:
    settings = settings_with(tmp_path=tmp_path)
    driven = Driven(settings)
    for second in range(3):
        driven.probe(T0 + second, latency=None)
    driven.probe(T0 + 3)
    assert driven.state.firing == () and driven.resolved("down") == [T0 + 3]
    for second in range(4, 6):
        driven.probe(T0 + second, latency=None)
    assert driven.state.firing == ("down",) and driven.state.health == "down"
    # The lease lost and taken again: another watcher resolved the outage meanwhile, and the book
    # starts from the store, which holds nothing open. The endpoint answers again.
    for alert in driven.store.list_alerts("open"):
        driven.store.resolve_alert(alert.id, lambda: [], note="resolved elsewhere", at=T0 + 6)
    driven.engine.book = AlertBook(settings, clock=driven.clock)
    driven.probe(T0 + 7)
    assert driven.state.firing == () and driven.state.health == "up"
    assert driven.state.snapshot().firing == ()
