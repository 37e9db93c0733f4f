"""Per-endpoint SLOs: `slo = { availability = 0.999, latency_p95 = "250ms" }` and its burn-rate rules.

Readings are built as the engine builds them, one per minute (the rules' default cadence), so burn
rates over each window can be checked to the digit: (bad events / events in the window) / budget.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import parse_settings
from mlops_console.config.settings import Settings
from mlops_console.core.conditions import Condition, DetectedRules, Reading, evaluate
from mlops_console.core.conditions.evidence import explain_evidence
from mlops_console.core.series import WindowStats

T0 = 1_800_000_000.0  # a whole minute
MONTH = 30 * 86400.0


def settings_with(text: str) -> Settings:
    base = '[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n'
    return parse_settings(tomllib.loads(base + text))


def reading(minute: int, window: WindowStats, *, failures: int = 0) -> Reading:
    return Reading(
        endpoint="api",
        model=None,
        now=T0 + 60 * minute + 0.5,
        interval=1.0,
        health="down" if failures else "up",
        probes=100,
        consecutive_failures=failures,
        consecutive_invalid=0,
        last_error=None,
        served_version=None,
        expected_version=None,
        alias=None,
        window=window,
        window_source="probe",
        traffic_measured=False,
        rps=None,
        throughput_baseline=None,
    )


def errors(ratio: float) -> WindowStats:
    return WindowStats(error_ratio=ratio, requests=100, p95=0.01, samples=100)


def slow(share_of_60: int) -> WindowStats:
    latencies = tuple(sorted([0.01] * (60 - share_of_60) + [0.4] * share_of_60))
    return WindowStats(error_ratio=0.0, requests=60, p95=latencies[57], samples=60, latencies=latencies)


def slo_of(conditions: list[Condition], rule: str) -> Condition | None:
    return next((c for c in conditions if c.rule == rule), None)


class Feed:
    def __init__(self, settings: Settings) -> None:
        self.settings, self.detected, self.minute = settings, DetectedRules(), 0

    def __call__(self, window: WindowStats, rule: str, *, failures: int = 0) -> Condition | None:
        out = evaluate(self.settings, reading(self.minute, window, failures=failures), self.detected)
        self.minute += 1
        return slo_of(out, rule)


def test_availability_slo_pages_when_the_hour_and_five_minutes_burn_over_14_4x() -> None:
    feed = Feed(settings_with("slo = { availability = 0.99 }\n"))
    assert feed(errors(0.0), "slo_availability") is None  # the first minute only sets the clock
    for _ in range(240):  # four clean hours
        assert feed(errors(0.0), "slo_availability").active is not True  # type: ignore[union-attr]
    # 30 % failed: 30x the 1 % budget. The hour reaches 14.4x at the 29th bad minute (29 x 30 / 60).
    seen = [feed(errors(0.3), "slo_availability") for _ in range(29)]
    assert [c.active for c in seen if c] == [False] * 28 + [True]
    fired = seen[-1]
    assert fired is not None and fired.severity == "critical"
    baseline = fired.evidence["baseline"]  # type: ignore[index]
    assert baseline["burn_rates"] == {
        "1h": pytest.approx(14.5),
        "5m": pytest.approx(30.0),
        "6h": pytest.approx(870 / 26900 / 0.01),
        "30m": pytest.approx(29.0),
    }
    # The month's budget at the traffic seen over 269 minutes, 870 failures spent.
    assert baseline["budget_left"] == pytest.approx(1 - 870 * 269 * 60 / (0.01 * 26900 * MONTH))
    assert fired.evidence["expected"] == [0.0, pytest.approx(0.06)]  # type: ignore[index]
    assert "burn rate 1h 14.5x, 5m 30.0x, 6h 3.2x, 30m 29.0x of the 0.99 objective" in fired.detail
    assert "98% of the error budget left" in fired.detail
    assert fired.detail.startswith("api availability SLO: failed 30.00%")
    assert "burn rate 1h 14.5x" in explain_evidence(fired.evidence or {})
    # Clean again: the five-minute window says it is over on the third clean minute (5m: 24x, 18x, 12x).
    after = [feed(errors(0.0), "slo_availability") for _ in range(3)]
    assert [c.active for c in after if c] == [True, True, False]


def test_latency_slo_pages_on_the_six_hour_pair_at_6x_and_counts_slow_requests() -> None:
    feed = Feed(settings_with('slo = { latency_p95 = "250ms" }\n'))
    assert feed(slow(0), "slo_latency") is None
    clean = [feed(slow(0), "slo_latency") for _ in range(30)]
    # Unknown until the shortest window (5 minutes) is covered, then clear.
    assert [c.active for c in clean if c] == [None] * 4 + [False] * 26
    # 42 of 60 probes slower than 250 ms: 70 % against a 5 % budget, 14x: under 14.4 on its own.
    seen = [feed(slow(42), "slo_latency") for _ in range(23)]
    assert [c.active for c in seen if c] == [False] * 22 + [True]
    fired = seen[-1]
    assert fired is not None
    rates = fired.evidence["baseline"]["burn_rates"]  # type: ignore[index]
    # 6 h (all 53 minutes so far): 23 x 0.7 / 53 / 0.05; 30 m: the last 30 minutes, 23 of them slow.
    assert rates == {
        "1h": pytest.approx(14 * 23 / 53),
        "5m": pytest.approx(14.0),
        "6h": pytest.approx(14 * 23 / 53),
        "30m": pytest.approx(14 * 23 / 30),
    }
    assert fired.evidence["target"] == 0.25  # type: ignore[index]
    assert fired.detail.startswith("api latency SLO: slower than 250 ms 70.00%")
    assert "of the 0.95 objective" in fired.detail


def test_slower_than_interpolates_histograms_and_counts_probes_over_the_target() -> None:
    buckets = ((0.1, 50.0), (0.25, 80.0), (0.5, 95.0), (float("inf"), 100.0))
    assert WindowStats(buckets=buckets).slower_than(0.2) == (pytest.approx(0.3), 100.0)
    assert WindowStats(buckets=buckets).slower_than(0.25) == (pytest.approx(0.2), 100.0)
    assert WindowStats(buckets=buckets).slower_than(2.0) == (pytest.approx(0.05), 100.0)
    assert WindowStats(latencies=(0.1, 0.2, 0.3, 0.4)).slower_than(0.2) == (0.5, 4.0)
    assert WindowStats().slower_than(0.2) is None


def test_an_outage_spends_the_budget_but_pages_only_as_down() -> None:
    feed = Feed(settings_with("slo = { availability = 0.99 }\n"))
    feed(errors(0.0), "slo_availability")
    for _ in range(60):
        feed(errors(0.0), "slo_availability")
    during = [feed(errors(1.0), "slo_availability", failures=3) for _ in range(3)]
    assert during == [None, None, None]  # `down` speaks for the outage
    back = feed(errors(0.0), "slo_availability")
    assert back is not None and back.active is False  # counted, not enough to page
    # Three failed minutes of the last hour: 300 of 6000 probes, 5 %, 5x; the last five: 300 of 500.
    assert back.evidence["baseline"]["burn_rates"]["1h"] == pytest.approx(5.0)  # type: ignore[index]
    assert back.evidence["baseline"]["burn_rates"]["5m"] == pytest.approx(60.0)  # type: ignore[index]


def test_endpoints_without_an_objective_get_no_slo_rules_and_defaults_merge_per_key() -> None:
    settings = settings_with(
        'slo = { latency_p99 = "1s" }\n'
        '[[endpoints]]\nname = "b"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n'
        '[slo]\navailability = 0.999\nlatency_p95 = "300ms"\n'
    )
    assert settings.slo_for("api").availability == 0.999
    assert settings.slo_for("api").latency == (0.99, 1.0)  # its own latency objective replaces p95
    assert settings.slo_for("b").latency == (0.95, 0.3)
    bare = Feed(settings_with(""))
    assert [bare(errors(0.5), "slo_availability") for _ in range(10)] == [None] * 10


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("slo = { availability = 1.5 }\n", "endpoints[0].slo.availability: must be a share between 0 and 1"),
        ('slo = { latency_p95 = "fast" }\n', "endpoints[0].slo.latency_p95: expected a duration"),
        ("slo = { latency_p95 = 0 }\n", "endpoints[0].slo.latency_p95: must be a latency above 0"),
        (
            'slo = { latency_p95 = "1s", latency_p99 = "2s" }\n',
            "endpoints[0].slo: set one latency objective",
        ),
        ("slo = { availabilty = 0.99 }\n", "endpoints[0].slo.availabilty: unknown key"),
        ('[slo]\nperiod = "10m"\n', "slo.period: must be between 1h and 400d"),
        (
            '[[rules]]\nrule = "slo_latency"\nparams = { objective = 0.9 }\n',
            "rules[0].params: objective come(s) from the endpoint's `slo`",
        ),
        (
            '[[rules]]\nrule = "slo_latency"\ndetector = "robust"\n',
            "rules[0].detector: 'robust' cannot judge slo_latency (use 'burn_rate')",
        ),
    ],
)
def test_bad_slo_config_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\n' + text)
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {problem}" in err, err
    assert "Traceback" not in err


def test_a_restarted_watcher_keeps_its_burn_windows_also_with_configured_windows() -> None:
    settings = settings_with(
        "slo = { availability = 0.99 }\n"
        '[[rules]]\nrule = "slo_availability"\n'
        "params = { windows = [[3600, 300, 14.4], [21600, 1800, 6.0]] }\n"
    )
    feed = Feed(settings)
    for _ in range(31):
        feed(errors(0.0), "slo_availability")
    for _ in range(29):
        feed(errors(0.3), "slo_availability")
    # Saved as the engine saves it (JSON in the store), loaded by the next lease holder.
    state = json.loads(json.dumps(feed.detected.to_state()))
    feed.detected = DetectedRules()
    assert "slo_availability" in feed.detected.load(state)
    assert feed(errors(0.3), "slo_availability") is None  # its first minute sets the clock, as at start
    after = feed(errors(0.3), "slo_availability")
    # 30 bad minutes among the 59 judged in the last hour (not one of one): the old windows were kept.
    assert after is not None and after.active is True
    assert after.evidence["baseline"]["burn_rates"]["1h"] == pytest.approx(30 * 30 / 59)  # type: ignore[index]
