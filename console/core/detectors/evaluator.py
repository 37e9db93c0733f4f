"""From a detector's verdicts to a rule's condition: persistence over the last polls.

`SignalEvaluator` is the one piece live detection and replay share between a signal's values and the
alert book: each value goes to the detector, the verdict joins the last `n` verdicts, and the
condition holds while at least `k` of them were anomalous (3 of the last 5 for the robust baseline).
A verdict of "unknown" (warming up, too little data) says nothing: the condition is unknown too, and
the alert book neither fires nor resolves on it. The rule's `for` is the alert book's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_console.core.detectors import restore
from mlops_console.core.detectors.base import Detector, Verdict


@dataclass(frozen=True)
class Judgement:
    """The condition after one poll, with the verdict behind it."""

    at: float
    active: bool | None
    """True: the condition holds. False: evidence says it is clear. None: no evidence either way."""
    verdict: Verdict
    anomalous_recent: int
    """Anomalous verdicts among the last `n` polls."""


def moves_toward_a_page(judgement: Judgement, counted: int, value: float | None) -> bool:
    """Whether a judgement (`counted`: anomalous verdicts among the last `n` before it) changed what
    decides the next page, so that a watcher killed after it and restarted from what was stored before
    it would page late, or falsely: a verdict joined the last `n` while one of them is anomalous (where
    those stand decides when they leave, not only how many there are), or the value lies past the
    expected band (a burn rate sums such minutes over its windows long before any verdict is
    anomalous: an SLO's hour fills with failed minutes before it pages)."""
    verdict = judgement.verdict
    if verdict.anomalous is not None and (counted or judgement.anomalous_recent):
        return True
    band = verdict.expected
    return value is not None and band is not None and not band[0] <= value <= band[1]


class SignalEvaluator:
    def __init__(self, detector: Detector, persistence: tuple[int, int] | None = None) -> None:
        self.detector = detector
        default: tuple[int, int] = getattr(detector.params, "persistence", (1, 1))
        k, n = persistence or default
        if not 1 <= k <= n:
            raise ValueError(f"persistence must be k of n with 1 <= k <= n, got {k} of {n}")
        self.k, self.n = k, n
        self._recent: list[bool] = []
        """The last `n` verdicts (a list: an empty deque takes 760 bytes, and a fleet keeps 60,000)."""

    @property
    def anomalous_recent(self) -> int:
        """Anomalous verdicts among the last `n` polls so far."""
        return sum(self._recent)

    def update(self, at: float, value: float | None, count: float | None = None) -> Judgement:
        verdict = self.detector.update(at, value, count)
        if verdict.anomalous is None:
            return Judgement(at, None, verdict, sum(self._recent))
        if verdict.evidence.get("accepted"):
            # The detector took the excursion as the new normal: it is over, not fading out.
            self._recent.clear()
        self._recent.append(verdict.anomalous)
        if len(self._recent) > self.n:
            del self._recent[0]
        anomalous = sum(self._recent)
        return Judgement(at, anomalous >= self.k, verdict, anomalous)

    def to_state(self) -> dict[str, Any]:
        return {
            "detector": self.detector.to_state(),
            "persistence": [self.k, self.n],
            "recent": list(self._recent),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SignalEvaluator:
        k, n = state["persistence"]
        evaluator = cls(restore(state["detector"]), (int(k), int(n)))
        evaluator._recent = [bool(v) for v in state.get("recent", [])][-evaluator.n :]
        return evaluator
