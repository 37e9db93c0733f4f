"""PromQL for the console's signals, one query per signal answering for every endpoint at once.

Defaults are built from an adapter's metric names (the same names the console reads when it scrapes
an endpoint itself), so `mlops-console serve`, MLServer, BentoML, Triton and TorchServe work as they
are; `[prometheus.queries.<adapter>]` overrides any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_console.config import MetricNames, PrometheusQueries, PrometheusSettings

QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def _matchers(labels: dict[str, str]) -> list[str]:
    return [f'{name}="{_quote(value)}"' for name, value in sorted(labels.items())]


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _selector(metric: str, matchers: list[str]) -> str:
    """`metric{<selector>m1,m2}` as a template: `{selector}` ends with a comma when set."""
    body = ",".join(matchers).replace("{", "{{").replace("}", "}}")
    return f"{metric}{{{{{{selector}}{body}}}}}"


def default_queries(names: MetricNames) -> PrometheusQueries:
    """Rate, error rate, latency quantile and `up` over `names`, as templates (placeholders left in)."""
    match = _matchers(names.match)
    latency_match = _matchers(names.match if names.latency_match is None else names.latency_match)

    def rate(metric: str, matchers: list[str]) -> str:
        return f"sum by ({{group}}) (rate({_selector(metric, matchers)}[{{window}}]))"

    if names.failures:
        requests = f"{rate(names.requests, match)} + {rate(names.failures, match)}"
        errors = rate(names.failures, match)
    else:
        requests = rate(names.requests, match)
        errors = rate(names.requests, [*match, f'{names.status_label}!~"[123].*"'])
    latency = (
        "histogram_quantile({quantile}, sum by ({group}, le) "
        f"(rate({_selector(names.latency + '_bucket', latency_match)}[{{window}}])))"
    )
    return PrometheusQueries(
        requests=requests, errors=errors, latency=latency, up=f"max by ({{group}}) ({_selector('up', [])})"
    )


@dataclass(frozen=True)
class SignalQueries:
    """The expanded PromQL of one adapter's endpoints."""

    requests: str
    errors: str
    latency: tuple[tuple[str, str], ...]
    """`(p50|p95|p99, query)`."""
    up: str


def expand(queries: PrometheusQueries, names: MetricNames, prom: PrometheusSettings) -> SignalQueries:
    """`queries` (unset ones from `names`) with the placeholders filled in from `prom`."""
    defaults = default_queries(names)
    selector = prom.selector + "," if prom.selector else ""

    def fill(template: str, quantile: float | None = None) -> str:
        return template.format(
            group=prom.group_by,
            selector=selector,
            window=prom.window,
            quantile=quantile if quantile is not None else "",
        )

    latency = queries.latency or defaults.latency
    assert latency is not None and defaults.requests and defaults.errors and defaults.up
    return SignalQueries(
        requests=fill(queries.requests or defaults.requests),
        errors=fill(queries.errors or defaults.errors),
        latency=tuple((key, fill(latency, q)) for key, q in QUANTILES),
        up=fill(queries.up or defaults.up),
    )
