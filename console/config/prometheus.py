"""`[prometheus]`: a Prometheus server the console reads figures (and health) from instead of scraping
every endpoint itself, and `[[discover]]`: endpoints found through it."""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlops_console.config.values import Duration, Section, check_http_url

Source = Literal["probe", "prometheus"]
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WINDOW = re.compile(r"^\d+(ms|s|m|h)$")
QUERY_PLACEHOLDERS = {"group", "selector", "window", "quantile"}


def _check_template(value: str | None, *, quantile: bool = False) -> str | None:
    if value is None:
        return None
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}; write a literal brace as {{{{ or }}}})") from None
    unknown = fields - QUERY_PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{sorted(unknown)[0]}}} (known: {{group}}, {{selector}}, {{window}}"
            + (", {quantile})" if quantile else ")")
        )
    if "group" not in fields:
        raise ValueError(
            "the query must group by {group} (e.g. `sum by ({group}) (...)`): "
            "one query answers for every endpoint"
        )
    if quantile and "quantile" not in fields:
        raise ValueError("the latency query needs {quantile}")
    return value


class PrometheusQueries(Section):
    """PromQL per signal, answering for every endpoint at once (grouped by `{group}`). Placeholders:
    `{group}` the endpoint label, `{selector}` the `[prometheus] selector` matchers (with a leading
    comma when set), `{window}` the rate window, `{quantile}` 0.5/0.95/0.99. Unset: built from the
    adapter's metric names."""

    requests: str | None = None
    """Requests per second."""
    errors: str | None = None
    """Failed requests per second."""
    latency: str | None = None
    """A latency quantile in seconds."""
    up: str | None = None
    """1 when the endpoint's target is scraped successfully (health, when the console does not probe)."""

    @field_validator("requests", "errors", "up")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        return _check_template(value)

    @field_validator("latency")
    @classmethod
    def _latency(cls, value: str | None) -> str | None:
        return _check_template(value, quantile=True)


class PrometheusSettings(Section):
    url: str
    """The server's base URL, e.g. http://127.0.0.1:9090 (the API is under /api/v1)."""
    bearer_token: str | None = None
    """Sent as `Authorization: Bearer ...`; write `${VAR}` to keep it out of the file."""
    username: str | None = None
    """Basic auth, with `password` (`${VAR}`)."""
    password: str | None = None
    timeout: Duration = Field(default=10.0, gt=0)
    """Seconds one query may take; slower counts as unreachable for that round (the figures go stale,
    and the problem says to raise this). Thousands of endpoints on a busy server may need up to about
    `interval`: a round's queries run side by side, and a slow round skips the next instead of piling
    up behind it."""
    interval: Duration = Field(default=15.0, gt=0)
    """Seconds between evaluations (one instant query per signal for every endpoint)."""
    window: str = "1m"
    """The range of `rate()`: at least four scrape intervals of the series read."""
    group_by: str = "instance"
    """The label that tells endpoints apart in the answers."""
    selector: str = ""
    """Label matchers added to every query, e.g. `job="models"`."""
    default_source: Source = "probe"
    """`source` of endpoints that set none: `prometheus` reads every endpoint's figures from here."""
    queries: dict[str, PrometheusQueries] = {}
    """Per adapter name (`mlflow`, `oip`, `bentoml`, `torchserve`, `generic`...): PromQL overrides."""
    discover_grace: Duration = Field(default=60.0, ge=0)
    """Seconds a discovered endpoint no `[[discover]]` table finds any more is kept (shown stale, not
    judged) before it goes and its open alerts resolve; one back within it carries on unchanged."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value.rstrip("/")) or value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: str) -> str:
        if not _LABEL.match(value):
            raise ValueError(f"not a Prometheus label name: {value!r}")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not _WINDOW.match(value):
            raise ValueError(f'expected a PromQL duration such as "1m" or "30s", got {value!r}')
        return value

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        value = value.strip().strip(",")
        if any(c in value for c in "{}"):
            raise ValueError('write only the matchers, such as job="models", without braces')
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusSettings:
        if self.bearer_token and self.username is not None:
            raise ValueError("set either `bearer_token` or `username`/`password`, not both")
        if self.password is not None and self.username is None:
            raise ValueError("`password` needs `username`")
        return self


class DiscoverSettings(Section):
    """Endpoints found through Prometheus at every `[prometheus] interval`: one per series of
    `selector`, or per active target; they come and go with them. Their figures and health come from
    Prometheus."""

    selector: str | None = None
    """A PromQL series selector (e.g. `up{job="models"}`): one endpoint per distinct `[prometheus]
    group_by` label value among its series."""
    targets: dict[str, str] | None = None
    """Or: active targets (`/api/v1/targets`) whose labels equal these (e.g. `{job = "models"}`)."""
    name: str = "{instance}"
    """Name template over the series' or target's labels, e.g. `"{job}-{instance}"`."""
    adapter: str = "mlflow"
    """Whose metric names the default queries use."""
    model: str | None = None
    alias: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> DiscoverSettings:
        if (self.selector is None) == (self.targets is None):
            raise ValueError("set exactly one of `selector` or `targets`")
        try:
            list(string.Formatter().parse(self.name))
        except ValueError as exc:
            raise ValueError(f"name: not a valid template ({exc})") from None
        return self
