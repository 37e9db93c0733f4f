"""What one Prometheus round's answers say of each endpoint: its figures, and its health where that is
read from `up{}`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlops_console.core.adapters import ProbeResult
from mlops_console.core.endpoint_state import EndpointState, PromFigures


def round_figures(
    by_group: Sequence[Mapping[str, float]],
    states: Sequence[EndpointState],
    group: str,
    window: float,
    now: float,
) -> tuple[dict[str, PromFigures], dict[str, ProbeResult]]:
    """Endpoint name to its figures, and to its `up{}` reading for those whose health Prometheus gives,
    from the answers (requests, errors, p50, p95, p99 and, if asked, up), each by `group`'s value."""
    requests, errors, p50, p95, p99 = by_group[:5]
    up = by_group[5] if len(by_group) > 5 else {}
    figures, health = {}, {}
    for state in states:
        key = state.settings.group_value
        rps = requests.get(key)
        failed = errors.get(key)
        ratio = None
        if rps is not None and rps > 0:
            ratio = min(1.0, (failed or 0.0) / rps)
        figures[state.name] = PromFigures(
            at=now,
            rps=rps,
            error_ratio=ratio,
            p50=p50.get(key),
            p95=p95.get(key),
            p99=p99.get(key),
            window=window,
        )
        if state.health_source == "prometheus":
            value = up.get(key)
            if value is None:
                health[state.name] = ProbeResult(
                    ok=False,
                    error=f"Prometheus has no current up{{{group}={key!r}}}: target gone or stale",
                )
            elif value < 1:
                health[state.name] = ProbeResult(
                    ok=False, error=f"Prometheus cannot scrape it: up{{{group}={key!r}}} is 0"
                )
            else:
                health[state.name] = ProbeResult(ok=True)
    return figures, health
