"""Redeploy an endpoint after its alias moved, then watch it until it serves again.

A running `mlflow models serve` resolves its model once at start, so moving an alias changes nothing
until the endpoint is redeployed by its `deploy` hook: a shell command or a webhook, with `{model}`,
`{alias}`, `{version}`... substituted in one pass (`mlops_console.core.templates`) and also passed as
`MLOPS_MODEL`, `MLOPS_ALIAS`, `MLOPS_VERSION`... in the command's environment. Verification then probes
the endpoint until it is healthy and, where the adapter can tell, serves the new version.

Everything here is async; `mlops_console.core.deploy_fanout` runs it with `asyncio.run` from a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from mlops_console.config import DeploySettings, EndpointSettings
from mlops_console.core.secrets import MissingVariable, env_values, scrub
from mlops_console.core.templates import env_name, render

OUTPUT_TAIL_CHARS = 4000
VERIFY_POLL_S = 1.0

Probe = Callable[[EndpointSettings], Awaitable[Any]]
Progress = Callable[[str], None]


@dataclass
class HookResult:
    ok: bool
    kind: str
    """"command" or "webhook"."""
    target: str
    """The command line or URL that ran, placeholders substituted, `${VAR}` references unexpanded."""
    exit_code: int | None
    """Command's exit code, or the webhook's HTTP status; None when it never finished."""
    output: str
    """Tail of stdout+stderr, or of the webhook's response body."""
    seconds: float
    error: str | None = None


@dataclass
class VerifyResult:
    ok: bool
    seconds: float
    probes: int
    served_version: str | None
    error: str | None = None
    timeout: float | None = None


@dataclass
class DeployOutcome:
    endpoint: str
    model: str
    alias: str
    version: str
    hook: HookResult
    verify: VerifyResult | None
    """None when the hook failed (nothing to verify)."""

    @property
    def ok(self) -> bool:
        return self.hook.ok and self.verify is not None and self.verify.ok

    @property
    def summary(self) -> str:
        what = f"deploy of {self.model} v{self.version} to {self.endpoint}"
        if not self.hook.ok:
            return f"{what} failed: {self.hook.error}"
        assert self.verify is not None
        if not self.verify.ok:
            limit = self.verify.timeout or self.verify.seconds
            return f"{what} did not converge within {limit:g}s: {self.verify.error}"
        return f"{what} verified in {self.hook.seconds + self.verify.seconds:.1f}s"

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "version": self.version,
            "ok": self.ok,
            "summary": self.summary,
            "hook": asdict(self.hook),
            "verify": asdict(self.verify) if self.verify else None,
        }


async def run_hook(deploy: DeploySettings, values: dict[str, str]) -> HookResult:
    """Run the endpoint's command or call its webhook; never raises for a failing hook.

    The result shows the hook as configured (`${VAR}` unexpanded) and its output and errors with the
    values of those variables hidden: it goes to the audit trail, the CLI and the console.
    """
    kind = "command" if deploy.command else "webhook"
    template = deploy.command or deploy.webhook
    assert template
    quoting: Callable[[str], str] = shlex.quote if deploy.command else (lambda v: quote(v, safe=""))
    shown = render(template, values, quoting, env=False)
    try:
        real = render(template, values, quoting, env=True)
    except MissingVariable as exc:
        return HookResult(False, kind, shown, None, "", 0.0, f"cannot run the hook: {exc}")
    hidden = env_values(template)
    if deploy.command:
        result = await run_command(real, deploy.timeout, values, hidden)
    else:
        result = await call_webhook(real, deploy.timeout, values, hidden)
    result.target = shown
    return result


async def run_command(
    command: str, timeout: float, values: dict[str, str], hidden: Mapping[str, str] | None = None
) -> HookResult:
    """Run `command` in a shell; `hidden` (`{name: value}`) is scrubbed from its output before the
    output is cut to its tail or quoted in the error, so no secret is left half-hidden."""
    started = time.monotonic()
    env = {**os.environ, **{env_name(key): value for key, value in values.items()}}
    # Output goes to a file, not a pipe: a hook that restarts a server in the background leaves the
    # server holding the pipe open, and we would wait for EOF forever.
    with tempfile.TemporaryFile() as output:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        error = None
        try:
            exit_code: int | None = await asyncio.wait_for(proc.wait(), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            if isinstance(exc, asyncio.CancelledError):
                raise
            exit_code, error = None, f"hook timed out after {timeout:g}s"
        output.seek(0)
        text = scrub(output.read().decode("utf-8", "replace"), hidden or {})
    if error is None and exit_code != 0:
        error = f"hook exited {exit_code}" + (f": {_last_line(text)}" if text.strip() else "")
    return HookResult(
        ok=error is None,
        kind="command",
        target=command,
        exit_code=exit_code,
        output=_tail(text),
        seconds=round(time.monotonic() - started, 3),
        error=error,
    )


async def call_webhook(
    url: str, timeout: float, values: dict[str, str], hidden: Mapping[str, str] | None = None
) -> HookResult:
    """POST `values` to `url`; `hidden` is scrubbed from the answer and the error, as in `run_command`."""
    import httpx

    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, json=values)
    except httpx.HTTPError as exc:
        # httpx's timeouts carry no message: say how long it waited.
        text = f"no answer within {timeout:g}s" if isinstance(exc, httpx.TimeoutException) else str(exc)
        return HookResult(
            ok=False,
            kind="webhook",
            target=url,
            exit_code=None,
            output="",
            seconds=round(time.monotonic() - started, 3),
            error=scrub(f"webhook failed: {type(exc).__name__}: {text}", hidden or {}),
        )
    ok = response.is_success
    return HookResult(
        ok=ok,
        kind="webhook",
        target=url,
        exit_code=response.status_code,
        output=_tail(scrub(response.text, hidden or {})),
        seconds=round(time.monotonic() - started, 3),
        error=None if ok else f"webhook answered HTTP {response.status_code}",
    )


async def verify(
    endpoint: EndpointSettings,
    version: str,
    timeout: float,
    probe: Probe | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Probe until healthy and (if the adapter can tell) serving `version`, or until `timeout`."""
    if probe is None:
        from mlops_console.core.adapters import probe_endpoint_once

        probe = probe_endpoint_once
    started = time.monotonic()
    deadline = started + timeout
    probes, last_error, served = 0, "no probe finished", None
    while True:
        probes += 1
        try:
            result = await asyncio.wait_for(probe(endpoint), max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            result = None
            last_error = "probe timed out"
        except Exception as exc:  # a broken adapter must end in "did not converge", not a traceback
            result = None
            last_error = f"probe failed: {exc}"
        if result is not None:
            served = result.served_version
            if not result.ok:
                last_error = result.error or "unhealthy"
            elif served is not None and str(served) != str(version):
                last_error = f"still serves v{served}"
            else:
                return VerifyResult(True, round(time.monotonic() - started, 3), probes, served)
        if time.monotonic() + VERIFY_POLL_S > deadline:
            return VerifyResult(
                False, round(time.monotonic() - started, 3), probes, served, last_error, timeout
            )
        if progress and probes % 5 == 1:
            progress(f"{endpoint.name}: waiting ({last_error})")
        await asyncio.sleep(VERIFY_POLL_S)


async def deploy_endpoint(
    endpoint: EndpointSettings,
    *,
    model: str,
    alias: str,
    version: str,
    extra: dict[str, str] | None = None,
    probe: Probe | None = None,
    progress: Progress | None = None,
) -> DeployOutcome:
    """Run the endpoint's hook, then verify it. The endpoint must have `deploy` set."""
    assert endpoint.deploy is not None
    values = {
        "model": model,
        "alias": alias,
        "version": str(version),
        "endpoint": endpoint.name,
        **(extra or {}),
    }
    say = progress or (lambda _msg: None)
    say(f"{endpoint.name}: running deploy {(endpoint.deploy.command and 'command') or 'webhook'}")
    hook = await run_hook(endpoint.deploy, values)
    if not hook.ok:
        say(f"{endpoint.name}: {hook.error}")
        return DeployOutcome(endpoint.name, model, alias, str(version), hook, None)
    say(
        f"{endpoint.name}: hook done in {hook.seconds:.1f}s; "
        f"verifying (up to {endpoint.deploy.verify_timeout:g}s)"
    )
    checked = await verify(endpoint, str(version), endpoint.deploy.verify_timeout, probe, progress)
    outcome = DeployOutcome(endpoint.name, model, alias, str(version), hook, checked)
    say(outcome.summary)
    return outcome


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL_CHARS else "…" + text[-OUTPUT_TAIL_CHARS:]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
