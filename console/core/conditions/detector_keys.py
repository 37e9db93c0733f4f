"""Whether a `[[rules]]` table's detector keys make sense for its rule (checked when the configuration
loads, so a mistake is named there rather than found by the engine)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_console.core.conditions import slo
from mlops_console.core.detectors import create
from mlops_console.core.detectors.signals import RULE_SIGNALS, detectors_for, spec_for


def check(
    rule: str,
    detector: str | None,
    default_detector: str,
    params: Mapping[str, Any] | None,
    persistence: tuple[int, int] | None,
    threshold: float | None,
) -> list[tuple[str, str]]:
    """Problems of one `[[rules]]` table's detector keys, as (key, what is wrong)."""
    if rule not in RULE_SIGNALS:
        given = [
            k for k, v in (("detector", detector), ("params", params), ("persistence", persistence)) if v
        ]
        return [(key, f"rule {rule!r} is not judged by a detector") for key in given]
    allowed = detectors_for(rule)
    name = detector or default_detector
    if name not in allowed:
        return [("detector", f"{name!r} cannot judge {rule} (use {' or '.join(repr(a) for a in allowed)})")]
    problems: list[tuple[str, str]] = []
    own = sorted(set(params or {}) & set(slo.OWN_PARAMS)) if rule in slo.RULES else []
    if own:
        problems.append(("params", f"{', '.join(own)} come(s) from the endpoint's `slo`, not from `params`"))
        params = {k: v for k, v in (params or {}).items() if k not in own}
    if threshold is not None and name != "threshold":
        problems.append(("threshold", f"only a static limit has one; the {name} detector takes `params`"))
    try:
        spec = spec_for(rule, name, params or {}, threshold=threshold or 1.0, for_=0.0, severity="warning")
        create(spec.detector, spec.params)
    except (TypeError, ValueError) as exc:
        problems.append(("params", str(exc)))
    if persistence is not None:
        k, n = persistence
        if not 1 <= k <= n:
            problems.append(("persistence", f"expected [k, n] with 1 <= k <= n, got [{k}, {n}]"))
    return problems
