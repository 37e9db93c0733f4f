"""`[[endpoints]]`: what to probe, how, which model it serves, and how to redeploy it."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from mlops_console.config.pipelines import PIPELINE_PREFIX
from mlops_console.config.quality import DriftSettings, InferenceLogSettings
from mlops_console.config.slo import SloSettings
from mlops_console.config.values import Duration, Section, check_http_url, check_lazy, check_runbook_url
from mlops_console.core.templates import env_name, quoted_placeholders


class DeploySettings(Section):
    command: str | None = None
    """Shell command run after a promote or rollback. Placeholders (`{model}`, `{version}`...) are replaced
    by their shell-quoted values and must stand unquoted; the hook's environment has them as
    `$MLOPS_MODEL`, `$MLOPS_VERSION`... `${VAR}` references stay unexpanded until the hook runs."""
    webhook: str | None = None
    """URL that receives a POST with model, alias and version as JSON (placeholders URL-encoded)."""
    timeout: Duration = 120.0
    """Seconds the hook may run."""
    verify_timeout: Duration = 90.0
    """Seconds to wait for the endpoint to be healthy (and serve the new version) afterwards."""
    quiet: bool = True
    """No pages for the endpoint while its hook runs and is verified: a restart is expected then, and a
    deploy that does not converge pages `deploy_not_converged` itself."""

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return check_lazy(value, check_http_url)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        quoted = quoted_placeholders(value or "")
        if quoted:
            name = quoted[0]
            raise ValueError(
                f"placeholder {{{name}}} is inside quotes (or after a backslash): its value is shell-quoted "
                f"already, and a value such as x'; reboot; ' would end your quotes and run; write it "
                f'unquoted, {{{name}}}, or use "${env_name(name)}" in double quotes'
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> DeploySettings:
        if bool(self.command) == bool(self.webhook):
            raise ValueError("set exactly one of `command` or `webhook`")
        return self


class MetricNames(Section):
    """Names of the Prometheus series an endpoint exposes. These defaults match `mlops-console serve`;
    each adapter has its own for its stack, and the keys set here override them one by one."""

    requests: str = "http_requests_total"
    latency: str = "http_request_duration_seconds"
    status_label: str = "status"
    failures: str | None = None
    """A counter of failed requests kept apart from `requests`, which then counts successes only
    (MLServer, Triton); `status_label` is not used then."""
    match: dict[str, str] = {"handler": "/invocations"}
    """Only samples carrying these labels count (e.g. the inference route)."""
    latency_match: dict[str, str] | None = None
    """Labels the latency histogram's samples must carry instead of `match`, for stacks whose request
    counters and latency histogram are labelled differently (MLServer: by model, and by route)."""


class EndpointSettings(Section):
    name: str = Field(min_length=1, max_length=200)
    url: str
    adapter: str = "mlflow"
    """Adapter plugin name: `mlflow` (`mlflow models serve` protocol), `oip` (Open Inference Protocol:
    MLServer, Triton, KServe), `bentoml`, `torchserve`, `generic`, or a third-party one."""
    model: str | None = None
    """Registered model this endpoint serves."""
    alias: str | None = None
    """Alias it should serve (default: the registry's default alias when `model` is set)."""
    interval: Duration = Field(default=5.0, gt=0)
    timeout: Duration = Field(default=2.0, gt=0)
    metrics_url: str | None = None
    """Prometheus `/metrics` URL; gives throughput, error ratio and latency quantiles of real traffic."""
    metrics: MetricNames = MetricNames()
    payload: dict[str, Any] | str | None = None
    """Synthetic `/invocations` body; default: the model version's `serving_input_example.json`."""
    path: str = "/"
    """`generic` adapter: path probed with GET."""
    expect_status: int = Field(default=200, ge=100, le=599)
    """`generic` adapter: status that counts as healthy."""
    expect_body: str | None = None
    """`generic` adapter: text the body must contain."""
    served_model: str | None = None
    """Name of the model on the serving stack (`oip`, `torchserve`, `bentoml` route); default `model`."""
    served_version: str | None = None
    """`oip`, `torchserve`: probe this version of the served model rather than its default one."""
    management_url: str | None = None
    """`torchserve`: the management API (worker status and loaded version), e.g. http://host:8081."""
    load_timeout: Duration = Field(default=120.0, gt=0)
    """How long a server that answers but is still loading its model shows as `loading` before it
    counts as down."""
    deploy: DeploySettings | None = None
    """How to redeploy this endpoint after a promote or rollback."""
    inference_log: InferenceLogSettings | None = None
    """The endpoint's inference log: the console tails it for model quality (drift, invalid predictions)."""
    drift: DriftSettings | None = None
    """How model quality is judged (default settings when only `inference_log` is set)."""
    source: Literal["probe", "prometheus"] | None = None
    """Where throughput, error ratio and latency come from: the console's own probes and scrapes
    (`probe`), or the `[prometheus]` server (`prometheus`); default `[prometheus] default_source`."""
    health_from: Literal["probe", "prometheus"] | None = None
    """With `source = "prometheus"`: `probe` keeps the console's own probes for health; default
    `prometheus` (the target's `up{}`)."""
    prometheus_id: str | None = None
    """This endpoint's value of `[prometheus] group_by` (default: the host:port of `url`, which is
    Prometheus' `instance` label)."""
    slo: SloSettings | None = None
    """Service-level objectives: `{ availability = 0.999, latency_p95 = "250ms" }` (over the top-level
    `slo` defaults)."""

    runbook: str | None = None
    """What to do when this endpoint alerts (a `[[rules]]` runbook for the rule wins): an http(s) URL."""

    @field_validator("runbook")
    @classmethod
    def _runbook(cls, value: str | None) -> str | None:
        return check_runbook_url(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # Alerts of pipelines carry `pipeline:NAME` where an endpoint's name goes: an endpoint named so
        # would be taken for a pipeline (and a removed pipeline's alerts resolve without waiting).
        if value.startswith(PIPELINE_PREFIX):
            raise ValueError(
                f"an endpoint's name may not start with {PIPELINE_PREFIX!r} (pipelines' alerts do)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value.rstrip("/")) or value

    @field_validator("metrics_url")
    @classmethod
    def _metrics_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @field_validator("management_url")
    @classmethod
    def _management_url(cls, value: str | None) -> str | None:
        return check_http_url(value.rstrip("/") if value else None)

    @model_validator(mode="after")
    def _alias_needs_model(self) -> EndpointSettings:
        if self.alias and not self.model:
            raise ValueError("`alias` needs `model`")
        if self.drift is not None and self.inference_log is None:
            raise ValueError("`drift` needs `inference_log`: the log the quality is computed from")
        return self

    @property
    def group_value(self) -> str:
        """This endpoint's value of the Prometheus label endpoints are grouped by."""
        if self.prometheus_id:
            return self.prometheus_id
        return urlparse(self.url).netloc.rsplit("@", 1)[-1]

    @property
    def quality(self) -> DriftSettings | None:
        """The model-quality settings, when the endpoint has an inference log."""
        if self.inference_log is None:
            return None
        return self.drift or DriftSettings()
