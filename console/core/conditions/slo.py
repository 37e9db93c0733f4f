"""Service-level objectives as rules: `slo_availability` and `slo_latency`, multi-window burn rates.

An endpoint with `slo = { availability = 0.999, latency_p95 = "250ms" }` gets two rules judged by the
`burn_rate` detector (Google SRE workbook: page at 14.4x over 1 h and 5 min, or 6x over 6 h and
30 min). Bad events are failed requests (or failed probes, without metrics) for availability, and
requests (or probes) slower than the target for latency: with `latency_p95 = "250ms"`, 95 % must be
faster, so the error budget is 5 % of them. They run in the `detected` family, one value per minute.

Unlike the other detected rules they keep counting while the endpoint is down (an outage spends the
budget), but report nothing then: `down` pages for the outage itself.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlops_console.core.conditions.params import RuleParams

if TYPE_CHECKING:
    from mlops_console.config.slo import SloSettings

DEFAULTS = {
    "slo_availability": RuleParams(
        True, 0.0, 0.0, "critical", "availability SLO burning", "", detector="burn_rate"
    ),
    "slo_latency": RuleParams(True, 0.0, 0.0, "critical", "latency SLO burning", "", detector="burn_rate"),
}
RULES = frozenset(DEFAULTS)
OWN_PARAMS = ("objective", "period")
"""Burn-rate parameters the endpoint's `slo` sets, not `[[rules]] params`."""


def params_for(rule: str, params: RuleParams, slo: SloSettings) -> RuleParams | None:
    """The rule's parameters with its objective (and target) from `slo`; None without that objective."""
    if rule == "slo_availability":
        if slo.availability is None:
            return None
        objective, target = slo.availability, None
    else:
        latency = slo.latency
        if latency is None:
            return None
        objective, target = latency[0], latency[1]
    detector_params = {**params.detector_params, "objective": objective, "period": slo.period}
    return replace(params, detector_params=MappingProxyType(detector_params), target=target)
