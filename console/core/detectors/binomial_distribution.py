"""The binomial upper tail and its critical count, with the math module alone.

SciPy's `bdtrc`/`bdtrik` did this before, at the price of importing NumPy and SciPy (about 41 MB of
resident memory and half a second of the event loop) in a watcher that needs nothing else from them.

The tail P(X >= k) is a sum of probabilities: from k upward when k is above the mean (all terms
positive, no cancellation), else one minus the sum from k - 1 downward (then the tail is at least one
half, so the subtraction loses nothing). The first probability comes from Loader's saddle-point form
(Stirling corrections and `bd0`), which keeps its relative error near the double precision even for
ten million requests, where `lgamma` differences lose eight digits. The others follow by the ratio
recurrence until the rest, bounded by a geometric series, is negligible: the sum runs over a few
standard deviations, at most some 15,000 terms at ten million requests and p = 0.5, and a few dozen
at the sizes a poll sees.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from statistics import NormalDist

MAX_TRIALS = 10**7
"""Requests a tail is computed over at most. Its cost grows with the square root of the count (two
seconds a call at 10^15, on the engine's loop); a count past this (a counter misread, a hostile
`/metrics`) is taken as this many requests with the same share of errors: a test over ten million
requests already tells a rise of a hundredth of a percentage point."""
_NEGLIGIBLE = 2.0**-60
"""A rest this small beside the sum is below its last bit."""
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_STIRLING_ERRORS = (
    0.0,
    0.08106146679532726,
    0.0413406959554093,
    0.02767792568499834,
    0.020790672103765093,
    0.016644691189821193,
    0.013876128823070748,
    0.01189670994589177,
    0.010411265261972096,
    0.009255462182712733,
    0.00833056343336287,
    0.007573675487951841,
    0.00694284010720953,
    0.006408994188004207,
    0.0059513701127588475,
    0.005554733551962801,
)
"""ln(n!) - ln(sqrt(2 pi n) (n / e)^n) for n = 0..15, where its series converges too slowly."""
_SPLIT = 134217729.0  # 2^27 + 1: splits a double into halves whose products are exact


def _stirling_error(n: int) -> float:
    if n < len(_STIRLING_ERRORS):
        return _STIRLING_ERRORS[n]
    nn = float(n) * n
    if n > 500:
        return (1 / 12 - 1 / 360 / nn) / n
    if n > 80:
        return (1 / 12 - (1 / 360 - 1 / 1260 / nn) / nn) / n
    if n > 35:
        return (1 / 12 - (1 / 360 - (1 / 1260 - 1 / 1680 / nn) / nn) / nn) / n
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / 1188 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, m: float) -> float:
    """x ln(x / m) + m - x: by its series in ((x - m) / (x + m))^2 where the two sides nearly cancel."""
    if abs(x - m) >= 0.5 * (x + m):
        return x * math.log(x / m) + m - x
    v = (x - m) / (x + m)
    total = (x - m) * v
    term = 2 * x * v
    v2 = v * v
    j = 3
    while True:  # |v| < 1/2: at most some 30 terms
        term *= v2
        after = total + term / j
        if after == total:
            return after
        total = after
        j += 2


def _exact_product(a: float, b: float) -> tuple[float, float]:
    """a * b as a rounded product and its rounding error (Dekker), without math.fma (3.13)."""
    product = a * b
    a_big = _SPLIT * a
    a_hi = a_big - (a_big - a)
    a_lo = a - a_hi
    b_big = _SPLIT * b
    b_hi = b_big - (b_big - b)
    b_lo = b - b_hi
    return product, ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _bd0_near(x: float, m: tuple[float, float]) -> float:
    """_bd0 against m[0] + m[1]: the rounding of n p moves ln P by (x - n p) ulps, past 1e-12."""
    return _bd0(x, m[0]) + (1 - x / m[0]) * m[1]


def _pmf(x: int, n: int, p: float) -> float:
    """P(X = x) for 0 <= x <= n, 0 < p < 1, to a few ulps."""
    if x == 0:
        return math.exp(n * math.log1p(-p))
    if x == n:
        return math.exp(n * math.log(p))
    q = 1.0 - p
    q_lo = (1.0 - q) - p  # 1 - p == q + q_lo exactly
    mean = _exact_product(n, p)
    rest_hi, rest_lo = _exact_product(n, q)
    rest = (rest_hi, rest_lo + n * q_lo)
    exponent = (
        _stirling_error(n)
        - _stirling_error(x)
        - _stirling_error(n - x)
        - _bd0_near(x, mean)
        - _bd0_near(n - x, rest)
    )
    return math.exp(exponent - _HALF_LOG_2PI) * math.sqrt(n / (float(x) * (n - x)))


def _upper_sum(k: int, n: int, p: float, q: float) -> float:
    """Sum over i >= k of P(X = i) / P(X = k), for k above the mean (the ratios fall below 1)."""
    total = term = 1.0
    i = k
    while i < n:
        ratio = (n - i) * p / ((i + 1) * q)
        term *= ratio
        total += term
        # The ratios keep falling: what is left is under term * ratio / (1 - ratio).
        if term * ratio < total * (1 - ratio) * _NEGLIGIBLE:
            break
        i += 1
    return total


def _lower_sum(j: int, n: int, p: float, q: float) -> float:
    """Sum over i <= j of P(X = i) / P(X = j), for j below the mean."""
    total = term = 1.0
    i = j
    while i > 0:
        ratio = i * q / ((n - i + 1) * p)
        term *= ratio
        total += term
        if term * ratio < total * (1 - ratio) * _NEGLIGIBLE:
            break
        i -= 1
    return total


def _tail(k: int, n: int, p: float) -> tuple[float, float]:
    """P(X >= k) and P(X = k - 1), for integers 1 <= k <= n and 0 < p < 1."""
    q = 1.0 - p
    if k == 1:
        return -math.expm1(n * math.log1p(-p)), math.exp(n * math.log1p(-p))
    if k > n * p:
        at = _pmf(k, n, p)
        return at * _upper_sum(k, n, p, q), at * (k * q / ((n - k + 1) * p))
    below = _pmf(k - 1, n, p)
    return 1.0 - below * _lower_sum(k - 1, n, p, q), below


def binomial_tail(k: float, n: float, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), with k rounded up and n to the nearest integer."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n > MAX_TRIALS:
        k, n = k * (MAX_TRIALS / n), MAX_TRIALS
    trials, least = round(n), math.ceil(k)
    if least > trials or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return _tail(least, trials, p)[0]


@lru_cache(maxsize=16)
def _normal_quantile(upper: float) -> float:
    # From the lower side: 1 - upper is 1.0 for an upper share below 2^-54, which inv_cdf refuses.
    return -NormalDist().inv_cdf(upper)


def critical_errors(n: float, p: float, alpha: float) -> int:
    """The smallest error count k >= 1 with P(X >= k) < alpha: the top of the expected band (past
    `MAX_TRIALS` requests, that of the same share of errors at `MAX_TRIALS`)."""
    beyond = min(math.floor(n), round(n)) + 1  # the first count above n, whose tail is 0
    if beyond <= 1:
        return 1
    if p <= 0:
        return 1
    trials = round(n)
    if p >= 1:
        return 1 if alpha > 1 else beyond
    if not alpha <= 1:  # every tail is under an alpha above 1 (a NaN alpha gets 1 as well)
        return 1
    if n > MAX_TRIALS:  # as `binomial_tail` takes such a count: the same share of errors
        return min(math.ceil(critical_errors(MAX_TRIALS, p, alpha) * (n / MAX_TRIALS)), beyond)
    # A start from the normal quantile with a skew correction (Cornish-Fisher), a little high, so
    # that mostly it walks down, where each step adds one probability instead of a new tail.
    sd = math.sqrt(trials * p * (1 - p))
    z = _normal_quantile(min(max(alpha, 1e-300), 1 - 2**-53))
    guess = trials * p + sd * z + (1 - 2 * p) * (z * z - 1) / 6 + 1.5
    k = min(max(1, math.ceil(guess)), beyond - 1)
    tail, below = _tail(k, trials, p)
    low, step = 0, 1  # the answer is above low: P(X >= low) >= alpha (or low is 0)
    while tail >= alpha:  # too low: gallop up, a bounded number of tails (log2 n)
        if k == beyond - 1:
            return beyond
        low = k
        k = min(k + step, beyond - 1)
        step *= 2
        tail, below = _tail(k, trials, p)
    # Walk down while the tail one lower is still under alpha: P(X >= k - 1) = P(X >= k) + P(X = k - 1).
    q = 1.0 - p
    while k - 1 > low:
        lower_tail = tail + below
        if lower_tail >= alpha:
            break
        if below < sys.float_info.min or lower_tail == tail:
            # Far above the answer (a tiny alpha) the probabilities underflow, to zero, where a walk
            # by their ratio stays, or to a few digits, which it carries; far below the mean (alpha
            # a hair under 1) the sum stops moving. Halve the distance by whole tails instead.
            middle = (low + k) // 2
            middle_tail, middle_below = _tail(middle, trials, p)
            if middle_tail >= alpha:
                low = middle
            else:
                k, tail, below = middle, middle_tail, middle_below
            continue
        k -= 1
        tail = lower_tail
        below *= k * q / ((trials - k + 1) * p)
    return k
