"""Rules judged by a detector: the adaptive rules (`latency_anomaly`, `throughput_anomaly`,
`error_ratio_anomaly`), and a static traffic rule whose `[[rules]]` table names another detector.

Detectors learn, so unlike the other families these conditions come from a `DetectedRules` that
lives with its endpoint (`EndpointState.detected`). Each rule judges one value every `every` seconds
(default 60: a fresh minute of the same window the other rules see) with its `SignalEvaluator`
(detector plus persistence); between two values the rule keeps its last judgement. Replay runs the
same specs and the same `condition_for` over a recorded series (`core/replay.py`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_console.core import formatting
from mlops_console.core.conditions import slo
from mlops_console.core.conditions.base import Condition, Reading
from mlops_console.core.conditions.evidence import evidence_of
from mlops_console.core.conditions.params import EndpointRules, RuleParams
from mlops_console.core.detectors.evaluator import Judgement, SignalEvaluator, moves_toward_a_page
from mlops_console.core.detectors.signals import (
    RULE_SIGNALS,
    STATIC_RULES,
    RuleSpec,
    describe,
    spec_for,
    spec_from_state,
    spec_to_state,
)

DEFAULTS = {
    "latency_anomaly": RuleParams(True, 0.0, 0.0, "warning", "latency anomaly", "s", detector="robust"),
    "throughput_anomaly": RuleParams(
        True, 0.0, 0.0, "warning", "throughput anomaly", " req/s", detector="robust"
    ),
    "error_ratio_anomaly": RuleParams(
        True, 0.0, 0.0, "warning", "error ratio anomaly", "", detector="binomial"
    ),
}
SIGNAL_LABELS = {
    "latency": "latency p95",
    "throughput": "throughput",
    "error_rate": "error ratio",
    "availability": "availability SLO: failed",
    "slow_share": "latency SLO: slower than the target",
}


def judged_by_detector(rule: str, params: RuleParams) -> bool:
    """Whether this family evaluates `rule` (the traffic family keeps the static limits)."""
    return rule in RULE_SIGNALS and not (rule in STATIC_RULES and params.detector == "threshold")


def rule_spec(rule: str, params: RuleParams) -> RuleSpec:
    return spec_for(
        rule,
        params.detector,
        params.detector_params,
        threshold=params.threshold,
        for_=params.for_,
        severity=params.severity,
        persistence=params.persistence,
        target=params.target,
    )


def condition_for(
    spec: RuleSpec,
    endpoint: str,
    judgement: Judgement,
    *,
    interval: float,
    model: str | None = None,
    version: str | None = None,
    detail: bool = True,
) -> Condition:
    """The alert book's view of one judgement, with the evidence the alert keeps.

    `detail=False` leaves out the text and evidence, for a caller that knows no alert can start or end
    now (replay skips them on quiet polls)."""
    verdict = judgement.verdict
    return Condition(
        spec.rule,
        endpoint,
        judgement.active,
        spec.severity,
        spec.for_,
        verdict.evidence.get("value"),
        verdict.expected[1] if verdict.expected and math.isfinite(verdict.expected[1]) else None,
        summary(spec, endpoint, judgement) if detail else "",
        model,
        version,
        interval,
        evidence_of(spec, judgement) if detail else None,
    )


def summary(spec: RuleSpec, endpoint: str, judgement: Judgement) -> str:
    said = describe(spec.signal, judgement.verdict)
    label = SIGNAL_LABELS[spec.signal]
    if spec.target is not None:
        label = f"latency SLO: slower than {formatting.latency(spec.target, sep=' ')}"
    return f"{endpoint} {label} {said} ({spec.detector} detector)"


def signal_value(
    signal: str, reading: Reading, target: float | None = None
) -> tuple[float | None, float | None]:
    """The value a detector judges for `signal`, and the events behind it (None: nothing to judge).
    `target`: the latency SLO's, for `slow_share`."""
    stats = reading.window
    if signal == "availability":
        # Failed requests of real traffic, or failed probes without metrics.
        return (stats.error_ratio, stats.requests) if stats.requests > 0 else (None, None)
    if signal == "slow_share":
        slower = stats.slower_than(target) if target is not None else None
        return slower if slower is not None else (None, None)
    if signal == "latency":
        return stats.p95, float(stats.samples)
    if signal == "throughput":
        return reading.rps, (float(stats.requests) if reading.traffic_measured else None)
    if reading.window_source == "metrics" or reading.traffic_measured:
        return stats.error_ratio, float(stats.requests)
    return None, None


@dataclass
class _Tracker:
    spec: RuleSpec
    every: float
    evaluator: SignalEvaluator
    params: RuleParams | None = None
    """The configured parameters the spec was checked against (None: restored, not checked yet)."""
    slot: int | None = None
    judgement: Judgement | None = None
    condition: Condition | None = None
    """The condition of the last judgement, built once: the engine asks for it on every probe."""
    said: str | None = None


SPAN_MARGIN = 0.001
"""Seconds off the edges of a period where `DetectedRules.quiet` asks rule by rule again rather than
trust its remembered span (float rounding at a period's edge)."""


def phase(endpoint: str) -> float:
    """Where in each period an endpoint's detectors judge, as a fraction of the period: the same in
    every process (a hash of the name, not Python's salted `hash`), and spread across a fleet. Were
    every endpoint judged at the turn of the same minute, a thousand judgements (and the snapshots
    and states they change) would all come in the one second after it, late for every probe due
    then."""
    return zlib.crc32(endpoint.encode()) / 2**32


class DetectedRules:
    """One endpoint's detector-judged rules: their evaluators, fed once per `every`.

    The engine evaluates rules on every probe, and a value is judged once per `every` only: between
    two, a rule answers with the condition it built at its last judgement. The periods of an endpoint
    start at its own `phase` of `every` past the turn of the clock's, so a fleet's judgements spread
    over the period instead of coming all at once."""

    def __init__(self) -> None:
        self._phase: float | None = None
        self._trackers: dict[str, _Tracker] = {}
        self._configured: tuple[tuple[str, RuleParams], ...] = ()
        self._configured_by: object = None
        # Where `quiet` (asked on every probe) said True and would again: inside every rule's current
        # period. Forgotten whenever a tracker is made, judges or is reconfigured.
        self._quiet_span: tuple[float, float] | None = None
        self._shown: tuple[tuple[str, ...], tuple[tuple[str, float | None, float | None], ...]] | None = None
        self.changed = False
        """Something was learnt or judged since the state was last taken (`take_state`)."""
        self.urgent = False
        """A condition started or stopped holding: its state should be stored now, so a watcher killed
        in the middle of an incident comes back knowing it."""

    urgent_marks: ClassVar[int] = 0
    """Times any endpoint's rules became `urgent`: housekeeping looks for them only when this moved
    (every half second, a fleet of 10,000 endpoints was a scan of 10,000 for none)."""

    def mark_urgent(self) -> None:
        if not self.urgent:
            self.urgent = True
            DetectedRules.urgent_marks += 1

    def conditions(self, reading: Reading, rules: EndpointRules) -> Iterator[Condition | None]:
        failing = bool(reading.consecutive_failures)
        for rule, params in self._rules(rules):
            if failing and rule not in slo.RULES:
                continue  # inhibited by `down`, like the static traffic rules: nothing learnt or judged
            tracker = self._tracker(rule, params)
            self._judge(tracker, reading)
            if tracker.judgement is None or failing:
                continue  # an SLO counts an outage against its budget, and `down` pages for it
            condition = tracker.condition
            if condition is None or (condition.model, condition.version) != (reading.model, reading.version):
                condition = tracker.condition = condition_for(
                    tracker.spec,
                    reading.endpoint,
                    tracker.judgement,
                    interval=tracker.every,
                    model=reading.model,
                    version=reading.version,
                )
            yield condition

    def judge(self, reading: Reading, rules: EndpointRules) -> bool:
        """Judge the values due, as `conditions` does, without building any condition; True if none
        of the conditions `conditions` would yield now is active (then they change nothing for an
        endpoint the alert book holds nothing of: once a minute, every endpoint of a fleet has a value
        judged, and building each condition's text and evidence was most of that minute's work)."""
        failing = bool(reading.consecutive_failures)
        calm = True
        for rule, params in self._rules(rules):
            if failing and rule not in slo.RULES:
                continue
            tracker = self._tracker(rule, params)
            self._judge(tracker, reading)
            if not failing and tracker.judgement is not None and tracker.judgement.active:
                calm = False
        return calm

    def _judge(self, tracker: _Tracker, reading: Reading) -> None:
        """The tracker's value of this period, if it has not judged one yet."""
        slot = self._slot(reading, tracker.every)
        if tracker.slot is None:
            tracker.slot = slot  # the first value judged is the first whole period seen
            self._unsettle()
        elif slot != tracker.slot:
            tracker.slot = slot
            self._unsettle()
            value, count = signal_value(tracker.spec.signal, reading, tracker.spec.target)
            before = tracker.judgement
            held = before is not None and before.active is True
            counted = tracker.evaluator.anomalous_recent
            judgement = tracker.judgement = tracker.evaluator.update(reading.now, value, count)
            tracker.condition = tracker.said = None
            self.changed = True
            # Holding or not, or a step toward a page (`moves_toward_a_page`); not no evidence against
            # clear (a fleet's stale figures coming back are no incident, and would rewrite every state
            # twice).
            moved = moves_toward_a_page(judgement, counted, value)
            if (judgement.active is True) != held or moved:
                self.mark_urgent()

    def quiet(self, reading: Reading, rules: EndpointRules) -> bool:
        """`conditions` would judge nothing now and yield no active condition (see `conditions.quiet`):
        every rule has been evaluated before under these settings, none has a value due (its slot is
        the current one), and none held at its last judgement."""
        if rules.settings is not self._configured_by:
            return False
        now, span = reading.now, self._quiet_span
        if span is not None and span[0] <= now < span[1]:
            return True
        start, end = -math.inf, math.inf
        for rule, params in self._configured:
            tracker = self._trackers.get(rule)
            if tracker is None or tracker.params is not params:
                return False
            every, slot = tracker.every, self._slot(reading, tracker.every)
            if tracker.slot != slot or (tracker.judgement is not None and tracker.judgement.active):
                return False
            first = (slot + (self._phase or 0.0)) * every
            start, end = max(start, first + SPAN_MARGIN), min(end, first + every - SPAN_MARGIN)
        if start <= now < end:  # the same answer until one of the periods ends (or anything changes)
            self._quiet_span = (start, end)
        return True

    def _slot(self, reading: Reading, every: float) -> int:
        """Which of the endpoint's periods `reading.now` falls in."""
        if self._phase is None:
            self._phase = phase(reading.endpoint)
        return int((reading.now - self._phase * every) // every)

    def _unsettle(self) -> None:
        """A tracker was made, judged or reconfigured: what was remembered of them is forgotten."""
        self._quiet_span = self._shown = None

    def describe(self) -> tuple[str, ...]:
        """`rule: what its detector said last`, for the endpoint's snapshot."""
        return self._show()[0]

    def bands(self) -> tuple[tuple[str, float | None, float | None], ...]:
        """(signal, low, high) of each rule's expected band as of its last value (None: an open side;
        a band whose both sides are open is left out)."""
        return self._show()[1]

    def _show(self) -> tuple[tuple[str, ...], tuple[tuple[str, float | None, float | None], ...]]:
        """`describe` and `bands`, built once per judgement (a snapshot takes them every time)."""
        if self._shown is None:
            self._shown = (self._describe(), self._bands())
        return self._shown

    def _describe(self) -> tuple[str, ...]:
        out = []
        for rule, tracker in self._trackers.items():
            judged = tracker.judgement
            if judged is None:
                out.append(f"{rule}: waiting for its first value")
            elif judged.verdict.evidence.get("value") is not None:
                if tracker.said is None:
                    tracker.said = f"{rule}: {describe(tracker.spec.signal, judged.verdict)}"
                out.append(tracker.said)
            # else: the endpoint does not give this signal (no metrics): nothing to say
        return tuple(out)

    def _bands(self) -> tuple[tuple[str, float | None, float | None], ...]:
        out = []
        for tracker in self._trackers.values():
            verdict = tracker.judgement.verdict if tracker.judgement else None
            if verdict is None or verdict.expected is None:
                continue
            low, high = (v if math.isfinite(v) else None for v in verdict.expected)
            if low is not None or high is not None:
                out.append((tracker.spec.signal, low, high))
        return tuple(out)

    def _rules(self, rules: EndpointRules) -> tuple[tuple[str, RuleParams], ...]:
        """The enabled detector-judged rules and their parameters (resolved once: settings do not
        change while an engine runs)."""
        if rules.settings is not self._configured_by:
            self._configured_by = rules.settings
            self._unsettle()
            configured = []
            for rule in RULE_SIGNALS:
                params: RuleParams | None = rules.params(rule)
                if rule in slo.RULES and params is not None:
                    params = slo.params_for(rule, params, rules.settings.slo_for(rules.reading.endpoint))
                if params is not None and params.enabled and judged_by_detector(rule, params):
                    configured.append((rule, params))
            self._configured = tuple(configured)
        return self._configured

    def _tracker(self, rule: str, params: RuleParams) -> _Tracker:
        tracker = self._trackers.get(rule)
        if tracker is not None and tracker.params is params:
            return tracker
        self._unsettle()
        spec = rule_spec(rule, params)
        if tracker is None or tracker.spec != spec or tracker.every != params.every:
            tracker = self._trackers[rule] = _Tracker(spec, params.every, spec.evaluator())
        tracker.params = params
        return tracker

    # -- state that survives a restart -----------------------------------------------------------------
    def take_state(self) -> dict[str, Any] | None:
        """`to_state()` if anything changed since the last call, else None."""
        if not self.changed:
            return None
        self.changed = self.urgent = False
        return self.to_state()

    def to_state(self) -> dict[str, Any]:
        """Each rule's evaluator (detector baselines, recent verdicts) and spec, JSON-able."""
        return {
            rule: {"spec": spec_to_state(t.spec), "every": t.every, "evaluator": t.evaluator.to_state()}
            for rule, t in self._trackers.items()
        }

    def load(self, state: Mapping[str, Any]) -> list[str]:
        """Continue from `to_state()` of an earlier run; returns the rules restored. A rule whose
        configuration changed since starts afresh (its old baseline answered another question)."""
        restored = []
        for rule, saved in state.items():
            if rule not in RULE_SIGNALS or not isinstance(saved, Mapping):
                continue
            try:
                spec = spec_from_state(saved["spec"])
                evaluator = SignalEvaluator.from_state(saved["evaluator"])
                every = float(saved["every"])
            except (KeyError, TypeError, ValueError):
                continue
            self._trackers[rule] = _Tracker(spec, every, evaluator)
            self._unsettle()
            restored.append(rule)
        return restored
