"""Seeded synthetic signal traces with labelled anomalies, shaped like production series.

One value per minute (a 1-minute rollup), two days per trace. What makes them look like production
rather than Gaussian noise:

- traffic follows a daily cycle (a night trough at 5-40 % of the peak, a morning ramp of a few hours,
  sharpened or broad), or none at all (internal batch callers); some endpoints have sparse nights
  (0.5-5 % of the peak, a few requests a minute), some are flat (a synthetic caller at an exact rate),
  some are quiet all day (2-20 requests a minute);
- request counts are Poisson with extra spread (over-dispersion), and short bursts of 1-2 minutes at
  1.5-3x (retry storms, cron jobs) that are not incidents;
- latency p95 rises mildly with load, wanders slowly (AR(1)), has heavy-tailed minute-to-minute noise
  (Student t, 3 degrees of freedom), a sampling error that grows as the minute's requests shrink, GC
  pauses of 1-2 minutes at 1.5-5x, and on some endpoints is quantised to 10 % steps (histogram
  buckets), which makes flat lines with jumps;
- errors are binomial over the minute's requests with an over-dispersed base rate between 0.01 % and
  1 %, plus single bad minutes.

Labelled anomalies (`SCENARIOS`) are what an on-call engineer wants to hear about: latency spikes,
lasting level shifts and slow ramps; traffic surges, drops and lasting shifts; error bursts, lasting
rises and ramps. Traffic and error anomalies are placed where the endpoint normally sees at least
30 requests a minute: below that a quiet minute and an outage look the same in one minute's data.
Clean traces and a latency improvement (which must not page) measure false pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

POLL = 60.0
DAYS = 2.0
START = 1_704_067_200.0  # 2024-01-01 00:00 UTC
MIN_TRAFFIC = 30.0
"""Requests per minute an endpoint normally sees where traffic and error anomalies are placed."""

SIGNAL_OF = {
    "latency_spike": "latency",
    "latency_level_up": "latency",
    "latency_ramp": "latency",
    "latency_improves": "latency",
    "latency_clean": "latency",
    "traffic_surge": "throughput",
    "traffic_drop": "throughput",
    "traffic_level_up": "throughput",
    "traffic_level_down": "throughput",
    "traffic_clean": "throughput",
    "error_burst": "error_rate",
    "error_level_up": "error_rate",
    "error_ramp": "error_rate",
    "error_clean": "error_rate",
}
SCENARIOS = tuple(SIGNAL_OF)
LASTING_WINDOW = 60
"""Polls after the start of a lasting change in which an alert counts as detecting it."""


@dataclass
class Trace:
    scenario: str
    signal: str
    seed: int
    at: np.ndarray
    value: np.ndarray
    """NaN where there was no data (no request in the minute, for latency)."""
    count: np.ndarray
    """Events behind each value: latency samples, requests (throughput, error ratio)."""
    windows: list[tuple[int, int]] = field(default_factory=list)
    """Labelled anomalies as [start, end) poll indices."""
    traits: dict[str, object] = field(default_factory=dict)

    @property
    def days(self) -> float:
        return len(self.at) * POLL / 86400.0


def _traffic(rng: np.random.Generator, n: int, traits: dict[str, object], quiet_ok: bool) -> np.ndarray:
    """Expected requests per minute (before Poisson noise)."""
    hours = (np.arange(n) * POLL / 3600.0) % 24.0
    shapes = ["daily", "sparse_nights", "none", "flat", "quiet"]
    weights = [0.45, 0.2, 0.15, 0.1, 0.1] if quiet_ok else [0.5, 0.22, 0.17, 0.11, 0.0]
    shape = str(rng.choice(shapes, p=weights))
    traits["traffic"] = shape
    if shape == "flat":
        return np.full(n, float(rng.choice([60.0, 120.0, 300.0])))
    if shape == "quiet":
        return np.full(n, math.exp(rng.uniform(math.log(2.0), math.log(20.0))))
    if shape == "none":
        return np.full(n, math.exp(rng.uniform(math.log(30.0), math.log(3000.0))))
    if shape == "sparse_nights":
        peak = math.exp(rng.uniform(math.log(60.0), math.log(600.0)))
        trough = rng.uniform(0.005, 0.05)
    else:
        peak = math.exp(rng.uniform(math.log(60.0), math.log(6000.0)))
        trough = rng.uniform(0.05, 0.4)
    sharp = rng.uniform(1.0, 3.0)
    peak_hour = rng.uniform(11.0, 17.0)
    cycle = (0.5 + 0.5 * np.cos(2 * np.pi * (hours - peak_hour) / 24.0)) ** sharp
    return peak * (trough + (1 - trough) * cycle)


def _counts(rng: np.random.Generator, expected: np.ndarray, flat: bool) -> np.ndarray:
    if flat:
        jitter = rng.random(len(expected)) < 0.02
        return expected + jitter * rng.choice([-1.0, 1.0], len(expected))
    spread = rng.uniform(0.02, 0.12)
    rate = expected * np.exp(rng.normal(0.0, spread, len(expected)))
    rate = rate * _bursts(rng, len(expected), 0.002, 1.5, 3.0)
    return rng.poisson(rate).astype(float)


def _bursts(rng: np.random.Generator, n: int, prob: float, low: float, high: float) -> np.ndarray:
    """Multipliers with short 1-2 minute bursts, at least 10 minutes apart: noise, not incidents."""
    out = np.ones(n)
    last = -100
    for i in np.flatnonzero(rng.random(n) < prob):
        length, factor = int(rng.integers(1, 3)), rng.uniform(low, high)
        if i - last >= 10:
            out[i : i + length] = factor
            last = i
    return out


def _place(rng: np.random.Generator, n: int, length: int, eligible: np.ndarray | None) -> int:
    """A start index after the first 6 hours with the whole anomaly inside the trace."""
    low, high = 360, n - length - 1
    candidates = np.arange(low, high)
    if eligible is not None:
        ok = [i for i in candidates[::5] if eligible[i : i + min(length, 60)].all()]
        if not ok:
            raise ValueError("no busy stretch to place the anomaly in")
        return int(rng.choice(ok))
    return int(rng.integers(low, high))


def _ramp(n: int, start: int, length: int, factor: float) -> np.ndarray:
    """Log-linear climb from 1 to `factor` over `length` polls, then stays."""
    steps = np.clip((np.arange(n) - start) / length, 0.0, 1.0)
    return np.exp(math.log(factor) * steps)


def generate(scenario: str, seed: int, days: float = DAYS) -> Trace:
    signal = SIGNAL_OF[scenario]
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    n = int(days * 86400 / POLL)
    traits: dict[str, object] = {}
    quiet_ok = signal == "latency" or scenario.endswith("_clean")
    expected = _traffic(rng, n, traits, quiet_ok)
    busy = expected >= MIN_TRAFFIC
    multiplier = np.ones(n)
    windows: list[tuple[int, int]] = []

    def window(start: int, length: int) -> None:
        windows.append((start, min(n, start + length)))

    if scenario == "latency_spike":
        length = int(rng.integers(5, 21))
        start = _place(rng, n, length, None)
        multiplier[start : start + length] = rng.uniform(3.0, 10.0)
        window(start, length)
    elif scenario in ("latency_level_up", "latency_improves"):
        start = _place(rng, n, LASTING_WINDOW, None)
        factor = rng.uniform(2.0, 4.0) if scenario == "latency_level_up" else rng.uniform(0.3, 0.7)
        multiplier[start:] = factor
        if scenario == "latency_level_up":
            window(start, LASTING_WINDOW)
    elif scenario == "latency_ramp":
        length = int(rng.integers(60, 181))
        start = _place(rng, n, length + LASTING_WINDOW, None)
        multiplier = _ramp(n, start, length, rng.uniform(3.0, 5.0))
        window(start, length + LASTING_WINDOW)
    elif scenario == "traffic_surge":
        length = int(rng.integers(15, 61))
        start = _place(rng, n, length, busy)
        multiplier[start : start + length] = rng.uniform(2.0, 5.0)
        window(start, length)
    elif scenario == "traffic_drop":
        length = int(rng.integers(15, 61))
        start = _place(rng, n, length, busy)
        multiplier[start : start + length] = rng.uniform(0.0, 0.3)
        window(start, length)
    elif scenario in ("traffic_level_up", "traffic_level_down"):
        start = _place(rng, n, LASTING_WINDOW, busy)
        up = scenario == "traffic_level_up"
        multiplier[start:] = rng.uniform(2.0, 4.0) if up else rng.uniform(0.2, 0.5)
        window(start, LASTING_WINDOW)

    flat = traits["traffic"] == "flat"
    if signal == "throughput":
        counts = _counts(rng, expected * multiplier, flat)
        return Trace(
            scenario, signal, seed, START + np.arange(n) * POLL, counts / 60.0, counts, windows, traits
        )
    counts = _counts(rng, expected, flat)
    if signal == "latency":
        value = _latency(rng, n, expected, counts, traits) * multiplier
        if traits.get("quantised"):
            value = np.exp(np.round(np.log(value) / math.log(1.1)) * math.log(1.1))
        value[counts == 0] = np.nan
        return Trace(scenario, signal, seed, START + np.arange(n) * POLL, value, counts, windows, traits)
    return _errors(rng, scenario, seed, counts, busy, windows, traits)


def _latency(
    rng: np.random.Generator, n: int, expected: np.ndarray, counts: np.ndarray, traits: dict[str, object]
) -> np.ndarray:
    base = math.exp(rng.uniform(math.log(0.005), math.log(0.5)))
    load = expected / max(expected.max(), 1e-9)
    cycle = rng.uniform(0.0, 0.3) * (load - load.mean())
    phi, sigma = 0.98, rng.uniform(0.005, 0.02)
    wander = lfilter([1.0], [1.0, -phi], rng.normal(0.0, sigma, n))
    minute = rng.uniform(0.02, 0.08) * rng.standard_t(3, n)
    body = rng.uniform(0.3, 0.7)
    sampling = 0.5 * body * rng.normal(0.0, 1.0, n) / np.sqrt(np.maximum(counts, 1.0))
    pauses = _bursts(rng, n, 0.004, 1.5, 5.0)
    traits["quantised"] = bool(rng.random() < 0.25)
    return base * np.exp(cycle + wander + minute + sampling) * pauses


def _errors(
    rng: np.random.Generator,
    scenario: str,
    seed: int,
    counts: np.ndarray,
    busy: np.ndarray,
    windows: list[tuple[int, int]],
    traits: dict[str, object],
) -> Trace:
    n = len(counts)
    base = math.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))
    prob = base * np.exp(rng.normal(0.0, 0.3, n))
    bad_minutes = rng.random(n) < 0.002
    prob[bad_minutes] *= rng.uniform(5.0, 20.0, int(bad_minutes.sum()))
    if scenario == "error_burst":
        length = int(rng.integers(5, 21))
        start = _place(rng, n, length, busy)
        prob[start : start + length] = rng.uniform(0.02, 0.3)
        windows.append((start, start + length))
    elif scenario == "error_level_up":
        start = _place(rng, n, LASTING_WINDOW, busy)
        prob[start:] = np.maximum(prob[start:] * rng.uniform(10.0, 30.0), 0.01)
        windows.append((start, start + LASTING_WINDOW))
    elif scenario == "error_ramp":
        length = int(rng.integers(60, 121))
        start = _place(rng, n, length + LASTING_WINDOW, busy)
        target = max(base * 20.0, 0.02)
        prob = prob * _ramp(n, start, length, target / base)
        windows.append((start, start + length + LASTING_WINDOW))
    errors = rng.binomial(counts.astype(np.int64), np.clip(prob, 0.0, 1.0)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(counts > 0, errors / np.maximum(counts, 1.0), np.nan)
    traits["base_error"] = base
    return Trace(scenario, "error_rate", seed, START + np.arange(n) * POLL, ratio, counts, windows, traits)
