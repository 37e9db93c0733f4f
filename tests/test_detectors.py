"""Each detector on series whose answer is known: the step a verdict changes, its score and its band.

Values are chosen so the expected figures can be worked out by hand (a log-scale median and MAD of
three repeating latencies, a binomial tail summed with `math.comb`, burn rates of a constant ratio),
and each detector's siblings (up and down, warm-up, learning, restored state) get their own checks.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from mlops_console.core.detectors import DETECTORS, create, restore
from mlops_console.core.detectors.base import Detector, Verdict, params_from
from mlops_console.core.detectors.binomial import binomial_tail, critical_errors
from mlops_console.core.detectors.binomial_distribution import MAX_TRIALS
from mlops_console.core.detectors.evaluator import SignalEvaluator
from mlops_console.core.detectors.seasonal import DAY, DailyProfile
from mlops_console.core.detectors.signals import (
    DEFAULT_RULES,
    LATENCY_ROBUST,
    describe,
    spec_from_state,
    spec_to_state,
)

MAD_SCALE = 1.4826
POLL = 60.0
LATENCIES = (0.008, 0.009, 0.010)
"""A latency p95 that wanders between 8 and 10 ms. With the 1 ms log offset the log values are
log(9 ms), log(10 ms), log(11 ms): median log(10 ms), i.e. 9 ms, and MAD log(11/10)."""
SIGMA = MAD_SCALE * math.log(11 / 10)
UPPER = 0.010 * math.exp(3.5 * SIGMA) - 0.001
"""The top of the band: 3.5 robust standard deviations above the median on the log scale."""


def feed(detector: Detector, values: Iterable[float | None], start: int = 0) -> list[Verdict]:
    return [detector.update((start + i) * POLL, v) for i, v in enumerate(values)]


def latency(params: Mapping[str, Any] | None = None) -> Detector:
    """The robust latency detector after its 30-value warm-up on LATENCIES."""
    detector = create("robust", {"direction": "up", "seasonal": False, **(params or {})})
    feed(detector, [LATENCIES[i % 3] for i in range(30)])
    return detector


def round_trip(detector: Detector) -> Detector:
    """The detector as a restarted watcher gets it back: through JSON."""
    return restore(json.loads(json.dumps(detector.to_state())))


def test_saved_state_follows_the_parameters_and_a_change_to_it_changes_nothing_after() -> None:
    # The parameters' part is converted once per parameters object (the fleet's states are taken
    # every minute): what is written must still be the detector's parameters of the moment.
    detector = latency({"z": 3.5})
    first = detector.to_state()
    first["params"]["z"] = 99.0  # whoever reads a state must not change the next one
    assert detector.to_state()["params"]["z"] == 3.5
    detector.params = dataclasses.replace(detector.params, z=5.0)
    assert detector.to_state()["params"]["z"] == 5.0
    assert round_trip(detector).params.z == 5.0


def test_detectors_with_equal_parameters_write_them_alike_and_apart() -> None:
    # Equal parameters are one shared object with one conversion: one detector's written state must
    # not reach another's.
    one, other = latency({"z": 4.0}), latency({"z": 4.0})
    assert one.params is other.params and latency({"z": 4}).params is not one.params
    # Sharing tells the values' kinds apart: a 1 for a yes-or-no is still refused after a true.
    assert create("robust", {"log": True}).params.log is True
    with pytest.raises(ValueError, match="log must be true or false"):
        create("robust", {"log": 1})
    # Parameters someone could change in place (a list) are never shared.
    assert params_from(_ListParams, {"values": [1.0]}) is not params_from(_ListParams, {"values": [1.0]})
    # A restored rule's spec is shared the same way, and reads back equal to what was written.
    spec = DEFAULT_RULES["latency"][1]
    assert spec_from_state(spec_to_state(spec)) is spec_from_state(spec_to_state(spec)) == spec
    written = one.to_state()
    written["params"]["z"] = 99.0
    assert other.to_state()["params"] == one.to_state()["params"] == dataclasses.asdict(one.params)
    assert other.to_state()["params"]["z"] == 4.0
    # A detector whose parameters cannot be hashed (a list) still writes them, each time afresh.
    listed = _Listed(_ListParams([1.0, 2.0]))
    assert listed.to_state()["params"] == {"values": [1.0, 2.0]}
    listed.params.values.append(3.0)
    assert listed.to_state()["params"] == {"values": [1.0, 2.0, 3.0]}


@dataclasses.dataclass(frozen=True)
class _ListParams:
    values: list[float]


class _Listed(Detector):
    name = "listed"
    Params = _ListParams

    def _state(self) -> dict[str, Any]:
        return {}


# -- robust baseline ---------------------------------------------------------------------------------


def test_robust_warms_up_on_exactly_30_values_and_never_pages_meanwhile() -> None:
    detector = create("robust", {"direction": "up", "seasonal": False})
    verdicts = feed(detector, [LATENCIES[i % 3] for i in range(29)] + [5.0])
    # Even a 5 s value during warm-up is "unknown", not an alert: a cold baseline never pages.
    assert [v.anomalous for v in verdicts] == [None] * 30
    assert verdicts[-1].evidence["warming_up"] == 30
    assert describe("latency", verdicts[0]).endswith("learning the baseline (1 of 30 values)")
    assert detector.update(30 * POLL, 0.009).anomalous is False


def test_robust_latency_band_and_score_are_the_log_median_and_mad() -> None:
    detector = latency()
    normal = detector.update(30 * POLL, 0.009)
    assert normal.anomalous is False and normal.score == pytest.approx(0.0, abs=1e-9)
    assert normal.evidence["median"] == pytest.approx(0.009)
    assert normal.evidence["spread"] == pytest.approx(SIGMA)
    # Latency alerts upward only: the band has no lower edge.
    assert normal.expected == (0.0, pytest.approx(UPPER))
    tripled = detector.update(31 * POLL, 0.025)
    assert tripled.anomalous is True and tripled.kind == "spike"
    assert tripled.score == pytest.approx(math.log(0.026 / 0.010) / SIGMA)
    assert tripled.evidence["z"] == pytest.approx(6.762, abs=1e-3)
    assert tripled.evidence["direction"] == "up" and tripled.evidence["anomalous_polls"] == 1
    text = describe("latency", tripled)
    assert text.startswith("25 ms, spike, expected up to 15 ms, usual 9 ms, robust z 6.8"), text


def test_robust_latency_flags_the_first_value_above_the_band_and_not_the_last_inside() -> None:
    inside, outside = UPPER * 0.995, UPPER * 1.005
    assert latency().update(30 * POLL, inside).anomalous is False
    assert latency().update(30 * POLL, outside).anomalous is True


def test_robust_latency_getting_faster_is_no_alert_and_is_not_learnt() -> None:
    detector = latency()
    verdicts = feed(detector, [0.002] * 5, start=30)
    assert [v.anomalous for v in verdicts] == [False] * 5
    assert verdicts[-1].score is not None and verdicts[-1].score < -3.5
    # Not learnt: the median is still 9 ms, so a return to normal is normal.
    back = detector.update(35 * POLL, 0.009)
    assert back.evidence["median"] == pytest.approx(0.009) and back.anomalous is False


def test_robust_relative_floor_ignores_a_small_change_on_a_flat_line() -> None:
    """On a flat line the MAD is zero: the 20 % floor, not the z score, decides."""
    flat = {"direction": "both", "seasonal": False, "log": True, "offset": 0.0}
    detector = create("robust", flat)
    feed(detector, [1.0] * 30)
    assert detector.update(30 * POLL, 1.15).anomalous is False  # 15 %: within the floor
    detector = create("robust", flat)
    feed(detector, [1.0] * 30)
    above = detector.update(30 * POLL, 1.25)
    assert above.anomalous is True and above.expected == (pytest.approx(0.8), pytest.approx(1.2))


def test_robust_throughput_pages_on_a_surge_and_on_a_drop() -> None:
    detector = create("robust", {**DEFAULT_RULES["throughput"][1].params, "seasonal": False})
    feed(detector, [10.0, 11.0, 9.0, 10.5, 9.5] * 6)
    surge = detector.update(30 * POLL, 25.0)
    drop = detector.update(31 * POLL, 3.0)
    assert (surge.anomalous, surge.kind, surge.evidence["direction"]) == (True, "surge", "up")
    assert (drop.anomalous, drop.kind, drop.evidence["direction"]) == (True, "drop", "down")
    low, high = surge.expected or (0.0, 0.0)
    assert low < 9.0 and 11.0 < high < 25.0
    assert detector.update(32 * POLL, 10.0).anomalous is False


def test_robust_does_not_learn_flagged_values() -> None:
    detector = latency()
    feed(detector, [0.030] * 9, start=30)
    after = detector.update(39 * POLL, 0.009)
    # Nine polls at 30 ms left the baseline where it was.
    assert after.evidence["median"] == pytest.approx(0.009)
    assert after.evidence["baseline_n"] == 30


def test_robust_reports_a_level_shift_at_ten_polls_and_accepts_it_at_120() -> None:
    detector = latency()
    verdicts = feed(detector, [0.030, 0.031] * 60, start=30)
    kinds = [v.kind for v in verdicts]
    assert kinds[:9] == ["spike"] * 9
    assert kinds[9:119] == ["level_shift"] * 110
    assert all(v.anomalous for v in verdicts[:119])
    accepted = verdicts[119]
    assert accepted.anomalous is False and accepted.kind == "level_shift"
    assert accepted.evidence["accepted"] is True
    assert accepted.evidence["previous_median"] == pytest.approx(0.009)
    assert 0.030 <= accepted.evidence["new_median"] <= 0.031
    assert "accepted as the new normal level (median 9 ms -> 30 ms)" in describe("latency", accepted)
    # The new level is normal from now on; the old one is now far below it (not an alert for latency).
    assert detector.update(150 * POLL, 0.031).anomalous is False


def test_robust_does_not_accept_a_level_that_is_still_climbing() -> None:
    detector = latency()
    ramp = [0.030 * 1.01**i for i in range(200)]
    verdicts = feed(detector, ramp, start=30)
    assert all(v.anomalous for v in verdicts)
    assert not any(v.evidence.get("accepted") for v in verdicts)


def test_robust_catches_a_slow_ramp_the_short_baseline_follows() -> None:
    """A 0.5 % rise per poll moves the short median along; the long reference still sees it."""
    detector = create("robust", {"direction": "up", "seasonal": False, "long_step": 1, "long_window": 360})
    base = [LATENCIES[i % 3] for i in range(360)]
    feed(detector, base)
    ramp = [LATENCIES[i % 3] * 1.005**i for i in range(300)]
    verdicts = feed(detector, ramp, start=360)
    first = next(i for i, v in enumerate(verdicts) if v.anomalous)
    assert verdicts[first].kind == "ramp"
    # Flagged well before the ramp tripled the latency (1.005^220 = 3).
    assert first < 220
    # The same ramp without the long reference goes unnoticed for longer, or for good.
    short = create("robust", {"direction": "up", "seasonal": False, "long_window": 0})
    feed(short, base)
    later = [i for i, v in enumerate(feed(short, ramp, start=360)) if v.anomalous]
    assert not later or later[0] > first


def test_robust_count_spread_discounts_a_p95_of_few_samples() -> None:
    few = latency(LATENCY_ROBUST | {"seasonal": False})
    many = latency(LATENCY_ROBUST | {"seasonal": False})
    assert few.update(30 * POLL, 0.020, count=2).anomalous is False
    assert many.update(30 * POLL, 0.020, count=200).anomalous is True


def test_robust_min_count_makes_a_thin_value_unknown_and_unlearnt() -> None:
    detector = latency({"min_count": 5})
    thin = detector.update(30 * POLL, 1.0, count=2)
    assert thin.anomalous is None and thin.evidence == {"value": 1.0, "count": 2, "min_count": 5}
    assert detector.update(31 * POLL, 0.009, count=10).evidence["baseline_n"] == 30


def test_robust_missing_and_non_finite_values_are_unknown() -> None:
    detector = latency()
    assert detector.update(30 * POLL, None).anomalous is None
    assert detector.update(31 * POLL, math.nan).anomalous is None
    assert detector.update(32 * POLL, math.inf).anomalous is None
    assert detector.update(33 * POLL, 0.009).evidence["baseline_n"] == 30


def test_robust_restored_state_gives_the_same_verdicts_as_never_stopping() -> None:
    series = [LATENCIES[i % 3] for i in range(40)] + [0.030] * 15 + [0.009] * 10
    whole = create("robust", {"direction": "up", "seasonal": False})
    expected = feed(whole, series)
    part = create("robust", {"direction": "up", "seasonal": False})
    feed(part, series[:45])  # stopped in the middle of the excursion
    resumed = round_trip(part)
    assert resumed.params == part.params
    assert feed(resumed, series[45:], start=45) == expected[45:]
    # Mid-excursion: it does not start over with a spike, it knows how long this has lasted.
    assert expected[49].evidence["anomalous_polls"] == 10 and expected[49].kind == "level_shift"


def test_robust_seasonal_profile_learns_a_daily_cycle_and_still_flags_a_night_surge() -> None:
    """Traffic 10x higher in the afternoon than at 3 a.m., polled every minute for two days."""
    params = {**DEFAULT_RULES["throughput"][1].params}

    def traffic(i: int) -> float:
        at = i * POLL
        jitter = 1 + 0.05 * ((i * 7) % 5 - 2) / 2
        return (55 - 45 * math.cos(2 * math.pi * (at - 3 * 3600) / DAY)) * jitter

    detector = create("robust", params)
    verdicts = [detector.update(i * POLL, traffic(i)) for i in range(2880)]
    assert not any(v.anomalous for v in verdicts)  # the cycle itself never pages
    # The profile is used from the first poll after a full day of history.
    assert [v.evidence.get("seasonal") for v in verdicts].index(True) == 1441
    # The watcher was stopped for three hours: at 3 a.m. the profile, not the last hour's
    # median (midnight, 28 req/s), says what is normal, and 25 req/s is a surge.
    resumed = round_trip(detector)
    night = resumed.update(2 * DAY + 3 * 3600, 25.0)
    assert (night.anomalous, night.kind, night.evidence["seasonal"]) == (True, "surge", True)
    assert night.expected is not None and night.expected[1] < 15.0
    plain = create("robust", {**params, "seasonal": False})
    for i in range(2880):
        plain.update(i * POLL, traffic(i))
    assert plain.update(2 * DAY + 3 * 3600, 25.0).anomalous is False


@pytest.mark.parametrize("bins", [48, 1440])
def test_robust_seasonal_state_keeps_each_value_in_its_slot_of_the_day(bins: int) -> None:
    """A robust detector keeps a value's slot of the day, not its time: the state it writes puts each
    value at a time in that slot, and a restored detector, whether from that state or from one with
    the values' real times (as earlier versions wrote it), judges exactly as one never stopped."""
    params = {**DEFAULT_RULES["throughput"][1].params, "season_bins": bins}

    def traffic(i: int) -> float:
        jitter = 1 + 0.05 * ((i * 7) % 5 - 2) / 2
        surge = 4.0 if 3000 <= i < 3020 else 1.0  # in the third day, once the profile is in use
        return (55 - 45 * math.cos(2 * math.pi * (i * POLL - 3 * 3600) / DAY)) * jitter * surge

    series = [traffic(i) for i in range(3100)]
    whole = create("robust", params)
    expected = feed(whole, series)
    assert any(v.anomalous for v in expected[3000:3020]) and expected[2990].evidence["seasonal"] is True
    part = create("robust", params)
    feed(part, series[:2990])
    written = part.to_state()
    width = DAY / bins
    # Every poll so far was accepted: the window holds the last 60 of them, each at its own slot.
    polls = range(2990 - 60, 2990)
    assert [int(t // width) % bins for t, _ in written["state"]["window"]] == [
        int(i * POLL // width) % bins for i in polls
    ]
    assert feed(round_trip(part), series[2990:], start=2990) == expected[2990:]
    earlier = json.loads(json.dumps(written))
    window = earlier["state"]["window"]
    earlier["state"]["window"] = [[i * POLL, y] for i, (_, y) in zip(polls, window, strict=True)]
    assert feed(restore(earlier), series[2990:], start=2990) == expected[2990:]
    # A time that is no time is a damaged state, refused like any other (the rule starts afresh).
    earlier["state"]["window"][0][0] = math.inf
    with pytest.raises(ValueError, match="finite"):
        restore(earlier)


@pytest.mark.parametrize("bins", [65_537, 100_000])
def test_robust_keeps_the_slot_of_a_day_cut_finer_than_a_second(bins: int) -> None:
    """More slots than two bytes number: a value's slot is still kept as a whole number, read by the
    profile and written back at a time in that slot."""
    width = DAY / bins
    levels = [0.1 * (index % 7) for index in range(bins)]
    slots = range(0, 300, 10)
    learnt = {
        "detector": "robust",
        "version": 1,
        "params": {"log": False, "season_bins": bins, "long_window": 0},
        "state": {
            "window": [[2 * DAY + (slot + 0.5) * width, 5.0 + levels[slot]] for slot in slots],
            "accepted": len(slots),
            "profile": {"profile": levels, "first_at": 0.0, "visit": None},
        },
    }
    detector = restore(learnt)
    at = 2 * DAY + 3.5 * width  # slot 3: expected at its profile's level, not the window's median
    verdict = detector.update(at, 5.0 + levels[3])
    assert verdict.anomalous is False and verdict.evidence["seasonal"] is True
    assert verdict.evidence["median"] == pytest.approx(5.0 + levels[3])
    written = round_trip(detector).to_state()["state"]["window"]
    assert [int(t // width) % bins for t, _ in written] == [*slots, 3]
    assert restore(learnt).update(at, 8.0 + levels[3]).anomalous is True


def test_robust_refuses_a_day_of_no_slots() -> None:
    # Every learnt value is kept as its slot of the day, seasonal or not: no slots is no detector.
    with pytest.raises(ValueError, match="season_bins must be at least 1"):
        create("robust", {"seasonal": False, "season_bins": 0})


# -- daily profile -----------------------------------------------------------------------------------


def test_daily_profile_offsets_and_when_it_becomes_active() -> None:
    profile = DailyProfile(bins=4)
    width = DAY / 4
    for slot, level in enumerate([1.0, 3.0, 5.0, 3.0]):
        profile.add(slot * width, level)
        profile.add(slot * width + 60, level)
    assert not profile.active(DAY - 1)  # less than a day of history
    profile.add(DAY, 3.0)  # folds the last slot
    assert profile.active(DAY)
    assert list(profile.offsets()) == [-2.0, 0.0, 2.0, 0.0]
    # A second visit moves a slot halfway towards what it saw (mix 0.5): 1 -> 2.
    profile.add(DAY + width, 1.0)
    assert profile.profile == [2.0, 3.0, 5.0, 3.0]
    assert profile.offset(DAY + 2 * width) == pytest.approx(5.0 - 13.0 / 4)
    restored = DailyProfile(bins=4)
    restored.load(json.loads(json.dumps(profile.to_state())))
    assert restored.profile == profile.profile and restored.active(DAY + width)
    # A slot never seen is None in the written state, reads back unseen, and offsets nothing.
    partial = DailyProfile(bins=4)
    partial.add(0.0, 1.0)
    partial.add(2 * width, 3.0)
    partial.add(3 * width, 9.0)  # folds slot 2, still visiting slot 3
    assert partial.to_state()["profile"] == [1.0, None, 3.0, None]
    again = DailyProfile(bins=4)
    again.load(json.loads(json.dumps(partial.to_state())))
    assert again.profile == [1.0, None, 3.0, None] and list(again.offsets()) == [-1.0, 0.0, 1.0, 0.0]
    assert not again.active(DAY * 2), "two slots of four seen: below the coverage a profile needs"
    # A stored profile of another length (other bins) is no profile of these slots: nothing learnt; a
    # stored NaN is a slot never seen, not a level that would make every offset NaN.
    other = DailyProfile(bins=4)
    other.load({"profile": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "first_at": 0.0})
    assert other.profile == [None] * 4 and not other.active(DAY * 2) and list(other.offsets()) == [0.0] * 4
    other.load({"profile": [1.0, float("nan"), 3.0, 5.0], "first_at": 0.0})
    assert other.profile == [1.0, None, 3.0, 5.0] and list(other.offsets()) == [-2.0, 0.0, 0.0, 2.0]
    assert other.to_state()["profile"] == [1.0, None, 3.0, 5.0], "written as a slot never seen"


# -- static threshold --------------------------------------------------------------------------------


def test_threshold_above_pages_over_the_limit_only() -> None:
    detector = create("threshold", {"threshold": 1.0, "min_count": 5, "raise_below_min": True})
    at_limit = detector.update(0.0, 1.0, count=10)
    over = detector.update(60.0, 1.5, count=10)
    assert at_limit.anomalous is False and at_limit.expected == (-math.inf, 1.0)
    assert (over.anomalous, over.kind, over.score) == (True, "above", 1.5)
    # Few samples may raise (p95 of 3 slow requests) but never clear.
    assert detector.update(120.0, 1.5, count=3).anomalous is True
    assert detector.update(180.0, 0.1, count=3).anomalous is None


def test_threshold_above_with_too_few_events_is_unknown_both_ways() -> None:
    detector = create("threshold", {"threshold": 0.05, "min_count": 10})
    assert detector.update(0.0, 0.5, count=9).anomalous is None
    assert detector.update(60.0, 0.0, count=9).anomalous is None
    assert detector.update(120.0, 0.06, count=10).anomalous is True


def test_threshold_drop_warms_up_for_300_s_then_pages_on_a_halving() -> None:
    detector = create("threshold", {"threshold": 0.5, "mode": "drop"})
    noise = [10.0, 10.5, 9.5]
    verdicts = [detector.update(i * 10.0, noise[i % 3]) for i in range(31)]
    assert [v.anomalous for v in verdicts[:30]] == [None] * 30
    assert verdicts[30].anomalous is False
    halved = detector.update(310.0, 4.9)
    assert (halved.anomalous, halved.kind) == (True, "drop")
    assert halved.score == pytest.approx(0.51)
    assert halved.expected == (pytest.approx(5.0), math.inf)
    assert detector.update(320.0, 5.1).anomalous is False  # 49 %: not a drop
    assert detector.update(330.0, 30.0).anomalous is False  # a surge is not this rule's business


def test_threshold_drop_ignores_a_noisy_baseline() -> None:
    detector = create("threshold", {"threshold": 0.5, "mode": "drop"})
    noisy = [2.0, 18.0, 10.0]  # median 10, MAD 8: a fall to 4 is within 3 MADs
    for i in range(35):
        detector.update(i * 10.0, noisy[i % 3])
    assert detector.update(350.0, 4.0).anomalous is False


def test_threshold_drop_state_survives_a_restart() -> None:
    detector = create("threshold", {"threshold": 0.5, "mode": "drop"})
    for i in range(31):
        detector.update(i * 10.0, 10.0)
    resumed = round_trip(detector)
    # No new 300 s warm-up: it judges at once.
    assert resumed.update(320.0, 4.0).anomalous is True
    assert create("threshold", {"threshold": 0.5, "mode": "drop"}).update(320.0, 4.0).anomalous is None


# -- binomial error ratio ----------------------------------------------------------------------------


def test_binomial_tail_and_critical_count_match_the_textbook() -> None:
    def tail(k: int, n: int, p: float) -> float:
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    assert binomial_tail(3, 10, 0.1) == pytest.approx(tail(3, 10, 0.1), rel=1e-12)
    assert binomial_tail(0, 10, 0.1) == 1.0 and binomial_tail(11, 10, 0.1) == 0.0
    k = critical_errors(1000, 0.003, 1e-4)
    assert tail(k, 1000, 0.003) < 1e-4 <= tail(k - 1, 1000, 0.003)
    assert k == 12


def binomial() -> Detector:
    """After 30 warm-up polls of 1 error in 1000 requests: baseline 0.1 %, tested 0.3 % (+0.2 pt)."""
    detector = create("binomial")
    verdicts = feed_counts(detector, [(0.001, 1000)] * 30)
    assert [v.anomalous for v in verdicts] == [None] * 30
    return detector


def feed_counts(detector: Detector, rows: Iterable[tuple[float, float]], start: int = 0) -> list[Verdict]:
    return [detector.update((start + i) * POLL, v, n) for i, (v, n) in enumerate(rows)]


def test_binomial_pages_at_exactly_11_errors_in_1000_against_a_01_percent_baseline() -> None:
    # P(X >= 11 | 1000, 0.3 %) < 1e-3 <= P(X >= 10): 11 is the critical count at the default alpha.
    assert critical_errors(1000, 0.003, 1e-3) == 11
    ten = binomial().update(30 * POLL, 0.010, 1000)
    eleven = binomial().update(30 * POLL, 0.011, 1000)
    assert ten.anomalous is False and eleven.anomalous is True and eleven.kind == "spike"
    assert ten.expected == (0.0, pytest.approx(0.010))
    assert eleven.evidence["baseline"] == pytest.approx(0.001)
    assert eleven.evidence["tested"] == pytest.approx(0.003)
    assert eleven.score == pytest.approx(-math.log10(binomial_tail(11, 1000, 0.003)))
    assert "11 errors in 1000 requests against a baseline of 0.10%" in describe("error_rate", eleven)


def test_binomial_needs_a_minimum_error_count() -> None:
    """Two failures out of three requests at night are unlikely under 0.3 %, but not an incident."""
    two_of_three = binomial().update(30 * POLL, 2 / 3, 3)
    three_of_four = binomial().update(30 * POLL, 3 / 4, 4)
    assert two_of_three.anomalous is False and two_of_three.evidence["p_value"] < 1e-4
    assert three_of_four.anomalous is True


def test_binomial_sees_a_rise_too_small_for_any_single_poll_over_five() -> None:
    detector = binomial()
    # 5 errors in 300 requests: under one poll's critical count (6); the span without its worst poll
    # holds 5 in 300 after two polls (p = 0.0023) and 10 in 600 after three (p = 1.8e-5 < 1e-3).
    assert critical_errors(300, 0.003, 1e-3) == 6
    verdicts = feed_counts(detector, [(5 / 300, 300)] * 3, start=30)
    assert [v.anomalous for v in verdicts] == [False, False, True]
    assert verdicts[-1].evidence["span_errors"] == 10 and verdicts[-1].evidence["span_requests"] == 600


def test_binomial_does_not_learn_anomalous_polls_and_holds_through_a_quiet_minute() -> None:
    detector = binomial()
    feed_counts(detector, [(0.05, 1000)] * 8, start=30)
    quiet = detector.update(38 * POLL, 0.002, 1000)
    # Still above the tested proportion over the recent polls: the same incident, not a resolve.
    assert quiet.anomalous is True
    assert quiet.evidence["baseline"] == pytest.approx(0.001)


def test_binomial_one_bad_minute_does_not_hold_the_next_quiet_ones() -> None:
    detector = binomial()
    verdicts = feed_counts(detector, [(0.05, 1000), (0.001, 1000), (0.001, 1000)], start=30)
    # The bad minute is anomalous; the quiet ones after it are not held by it (the span leaves out its
    # worst poll), so one blip never makes two of three.
    assert [v.anomalous for v in verdicts] == [True, False, False]


def test_binomial_restored_state_continues_without_warm_up() -> None:
    resumed = round_trip(binomial())
    twelve = resumed.update(30 * POLL, 0.012, 1000)
    assert twelve.anomalous is True and twelve.evidence["baseline"] == pytest.approx(0.001)


def test_binomial_without_requests_assumes_100() -> None:
    detector = create("binomial")
    verdict = detector.update(0.0, 0.01)
    assert verdict.anomalous is None
    judged = binomial().update(30 * POLL, 0.5)
    assert judged.evidence["requests"] == 100 and judged.evidence["errors"] == 50


# -- burn rate ---------------------------------------------------------------------------------------


def burn(ratios: Iterable[float], objective: float = 0.999) -> list[Verdict]:
    detector = create("burn_rate", {"objective": objective})
    return feed_counts(detector, [(r, 1000) for r in ratios])


def first_anomalous(verdicts: list[Verdict]) -> int | None:
    return next((i for i, v in enumerate(verdicts) if v.anomalous), None)


def test_burn_rate_fast_burn_pages_once_five_minutes_are_covered() -> None:
    verdicts = burn([0.02] * 10)  # 20x the 0.1 % budget
    assert [v.anomalous for v in verdicts[:4]] == [None] * 4
    assert first_anomalous(verdicts) == 4
    assert verdicts[4].kind == "burn"
    assert verdicts[4].evidence["burn_rates"] == {"1h": pytest.approx(20.0), "5m": pytest.approx(20.0)}
    assert verdicts[4].score == pytest.approx(20.0 / 14.4)
    assert verdicts[4].expected == (0.0, pytest.approx(0.006))


def test_burn_rate_slow_burn_pages_on_the_six_hour_pair_after_30_minutes() -> None:
    verdicts = burn([0.008] * 60)  # 8x: under 14.4, over 6
    assert first_anomalous(verdicts) == 29
    assert verdicts[29].evidence["burn_rates"]["30m"] == pytest.approx(8.0)
    assert "burn rate 1h 8.0x, 5m 8.0x, 6h 8.0x, 30m 8.0x of the 0.999 objective" in describe(
        "error_rate", verdicts[29]
    )


def test_burn_rate_under_both_factors_never_pages() -> None:
    assert first_anomalous(burn([0.005] * 400)) is None  # 5x


def test_burn_rate_resets_soon_after_the_burning_stops() -> None:
    verdicts = burn([0.02] * 60 + [0.0] * 40)
    # The 1 h window still burns 13x at 79 polls, but the short windows say it is over: the
    # 5-minute one at once, the 30-minute one once fewer than 9 of its minutes burnt at 20x.
    assert verdicts[79].anomalous is True
    assert verdicts[81].anomalous is False and verdicts[81].evidence["burn_rates"]["1h"] > 12


def test_burn_rate_refuses_a_nonsense_objective() -> None:
    with pytest.raises(ValueError, match="objective must be between 0 and 1"):
        create("burn_rate", {"objective": 99.9})


def test_burn_rate_restored_state_keeps_its_windows() -> None:
    detector = create("burn_rate", {"objective": 0.999})
    feed_counts(detector, [(0.02, 1000)] * 30)
    resumed = round_trip(detector)
    # Without the restored hour, one clean-looking minute would have been the whole history.
    verdict = resumed.update(30 * POLL, 0.02, 1000)
    assert verdict.anomalous is True and verdict.evidence["burn_rates"]["1h"] == pytest.approx(20.0)


# -- evaluator and the catalogue ---------------------------------------------------------------------


class Scripted(Detector):
    """Replays given verdicts, so persistence is tested apart from any detector's arithmetic."""

    name = "scripted"
    Params = dict

    def __init__(self, answers: list[bool | None]) -> None:
        super().__init__({})
        self.answers = list(answers)

    def update(self, at: float, value: float | None, count: float | None = None) -> Verdict:
        answer = self.answers.pop(0)
        accepted = {"accepted": True} if answer == "accept" else {}
        return Verdict(False if accepted else answer, evidence=accepted)


def conditions(answers: list[Any], persistence: tuple[int, int]) -> list[bool | None]:
    evaluator = SignalEvaluator(Scripted(answers), persistence)
    return [evaluator.update(i * POLL, 1.0).active for i in range(len(answers))]


def test_evaluator_holds_at_three_of_the_last_five() -> None:
    T, F = True, False
    assert conditions([T, F, T, F, T, F, T, F, F], (3, 5)) == [F, F, F, F, T, F, T, F, F]


def test_evaluator_unknown_verdicts_say_nothing() -> None:
    T = True
    assert conditions([None, T, T, None, T], (3, 5)) == [None, False, False, None, True]


def test_evaluator_an_accepted_level_shift_ends_the_condition_at_once() -> None:
    T = True
    assert conditions([T, T, T, "accept", T], (3, 5)) == [False, False, True, False, False]


def test_evaluator_refuses_impossible_persistence() -> None:
    with pytest.raises(ValueError, match="1 <= k <= n"):
        SignalEvaluator(create("robust"), (4, 3))


def test_evaluator_state_round_trip_keeps_recent_verdicts() -> None:
    evaluator = SignalEvaluator(latency(), (3, 5))
    for i in range(2):
        evaluator.update((30 + i) * POLL, 0.030)
    resumed = SignalEvaluator.from_state(json.loads(json.dumps(evaluator.to_state())))
    # The third anomalous poll after the restart completes 3 of 5.
    assert resumed.update(32 * POLL, 0.030).active is True
    assert SignalEvaluator(latency(), (3, 5)).update(32 * POLL, 0.030).active is False


def test_create_and_restore_refuse_what_they_do_not_know() -> None:
    with pytest.raises(ValueError, match="unknown detector 'robustt'; known: binomial, burn_rate"):
        create("robustt")
    with pytest.raises(ValueError, match=r"unknown detector parameter\(s\): zz; known: .*warmup"):
        create("robust", {"zz": 3})
    with pytest.raises(ValueError, match="direction must be 'up', 'down' or 'both'"):
        create("robust", {"direction": "sideways"})
    state = create("robust").to_state()
    with pytest.raises(ValueError, match="version 99"):
        restore({**state, "version": 99})
    with pytest.raises(ValueError, match="unknown detector 'gone'"):
        restore({**state, "detector": "gone"})
    assert set(DETECTORS) == {"threshold", "robust", "binomial", "burn_rate"}


def test_every_signal_keeps_its_static_rule_beside_an_adaptive_one() -> None:
    rules = {signal: [(s.rule, s.detector) for s in specs] for signal, specs in DEFAULT_RULES.items()}
    assert rules == {
        "latency": [("latency_p95", "threshold"), ("latency_anomaly", "robust")],
        "throughput": [("throughput_drop", "threshold"), ("throughput_anomaly", "robust")],
        "error_rate": [("error_ratio", "threshold"), ("error_ratio_anomaly", "binomial")],
    }
    static = DEFAULT_RULES["latency"][0]
    assert (static.params["threshold"], static.for_) == (1.0, 30.0)


def test_binomial_judges_a_count_past_ten_million_as_its_share_of_errors() -> None:
    # A counter misread or a hostile /metrics can claim 1e18 requests a minute: its tail took minutes
    # of the engine's loop. It is judged as the same share of ten million requests, in a moment.
    for n in (1e15, 1e18, 1e300):
        scale = MAX_TRIALS / n
        for share in (0.0015, 0.0016, 0.002):
            at_most = binomial_tail(share * MAX_TRIALS, MAX_TRIALS, 0.0015)  # within an error's rounding
            assert binomial_tail(share * n, n, 0.0015) == pytest.approx(at_most, rel=0.1)
        critical = critical_errors(n, 0.0015, 1e-3)
        assert critical == math.ceil(critical_errors(MAX_TRIALS, 0.0015, 1e-3) / scale)
        assert binomial_tail(critical, n, 0.0015) < 1e-3 <= binomial_tail(critical * 0.999, n, 0.0015)

    def warmed() -> Detector:
        detector = create("binomial")
        feed_counts(detector, [(0.001, 1e18)] * 30)
        return detector

    # Tested against 0.3 % (the baseline's 0.1 % lifted by 0.2 points), as at any count: at ten
    # million requests its top is 0.3054 %, so 0.305 % is within it and 0.32 % a rise.
    assert warmed().update(30 * POLL, 0.00305, 1e18).anomalous is False
    detector = warmed()
    assert detector.update(30 * POLL, 0.0032, 1e18).anomalous is True
    # The most it learns from such a poll is ten million requests: 1e308 summed would overflow.
    assert detector.update(31 * POLL, 0.001, 1e308).evidence["requests"] == MAX_TRIALS
    assert detector.update(32 * POLL, 0.001, 1e308).evidence["baseline_requests"] < math.inf
    # No count at all (an infinite or NaN rate times the window) is no test, not a crash.
    assert detector.update(33 * POLL, 0.5, math.inf).anomalous is None
    assert detector.update(34 * POLL, 0.5, math.nan).anomalous is None


def test_robust_takes_a_zero_without_offset_and_a_band_past_the_largest_double() -> None:
    # On a log scale without an offset a zero had no logarithm (a math domain error at every such
    # poll); now it is a drop to nothing. A band whose edge passes the largest double is open.
    settings = {"seasonal": False, "warmup": 3, "window": 5, "direction": "both"}
    bare = create("robust", {**settings, "offset": 0.0})
    feed(bare, [10.0, 11.0] * 3)
    zero = bare.update(6 * POLL, 0.0)
    assert zero.anomalous is True and zero.kind == "drop"
    wide = create("robust", {**settings, "z": 1e300})
    feed(wide, [10.0, 11.0] * 3)
    far = wide.update(6 * POLL, 1e6)
    assert far.anomalous is False and far.expected == (0.0, math.inf)
