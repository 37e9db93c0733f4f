"""Deploy hooks and verification with exact results: what the audit trail, the alert and the user see.

A real shell runs each command, a real HTTP server on loopback answers each webhook, and verification
is driven by probes that answer in a scripted order. Verification polls every `VERIFY_POLL_S`; tests
shorten it so a run of several probes takes milliseconds.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import EndpointSettings, parse_settings
from mlops_console.core import deploy
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.deploy import (
    DeployOutcome,
    HookResult,
    VerifyResult,
    call_webhook,
    deploy_endpoint,
    run_command,
    run_hook,
    verify,
)

VALUES = {"model": "iris", "alias": "production", "version": "3", "endpoint": "ep"}


def endpoint(tmp_path: Path, hook: dict[str, Any], name: str = "ep") -> EndpointSettings:
    settings = parse_settings(
        {
            "registry": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [{"name": name, "url": "http://127.0.0.1:9", "model": "iris", "deploy": hook}],
        },
        require_env=False,
    )
    return settings.endpoints[0]


def unclocked(result: HookResult) -> HookResult:
    assert isinstance(result.seconds, float) and 0 <= result.seconds < 60, result
    return replace(result, seconds=0.0)


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy, "VERIFY_POLL_S", 0.01)


class Sink:
    """A webhook receiver on loopback: answers each POST with `status` and `body`, records the request."""

    def __init__(self, status: int, body: str, delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                sink.requests.append({"path": self.path, "body": json.loads(raw)})
                if delay:
                    sink.release.wait(delay)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.release = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def sink_factory() -> Iterator[Any]:
    made: list[Sink] = []

    def make(status: int = 200, body: str = "", delay: float = 0.0) -> Sink:
        made.append(Sink(status, body, delay))
        return made[-1]

    yield make
    for sink in made:
        sink.release.set()
        sink.server.shutdown()
        sink.server.server_close()


def scripted(*answers: Any) -> Any:
    """A probe answering `answers` in order (an exception is raised), then the last one forever."""
    calls: list[EndpointSettings] = []

    async def probe(ep: EndpointSettings) -> ProbeResult:
        calls.append(ep)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    probe.calls = calls  # type: ignore[attr-defined]
    return probe


# -- command hooks ------------------------------------------------------------------------------------
def test_command_hook_result_placeholders_environment_and_hidden_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-s3cret")
    command = (
        "echo {model} {alias} {version} {endpoint} "
        + '"$MLOPS_MODEL $MLOPS_VERSION $MLOPS_ENDPOINT" ${DEPLOY_TOKEN}'
    )
    values = {**VALUES, "model": "my model"}  # shell-quoted, not URL-encoded
    result = asyncio.run(run_hook(endpoint(tmp_path, {"command": command}).deploy, values))  # type: ignore[arg-type]
    assert unclocked(result) == HookResult(
        ok=True,
        kind="command",
        target=command.replace("{model} {alias} {version} {endpoint}", "'my model' production 3 ep"),
        exit_code=0,
        output="my model production 3 ep my model 3 ep ${DEPLOY_TOKEN}\n",
        seconds=0.0,
        error=None,
    )


def test_command_hook_that_fails_quotes_its_last_line_cut_to_200_chars(tmp_path: Path) -> None:
    long_line = "x" * 250
    command = f"echo first; echo second; echo {long_line}; echo; exit 3"
    result = asyncio.run(run_command(command, 10, {}))
    assert unclocked(result) == HookResult(
        ok=False,
        kind="command",
        target=command,
        exit_code=3,
        output=f"first\nsecond\n{long_line}\n\n",
        seconds=0.0,
        error=f"hook exited 3: {'x' * 200}",
    )


def test_command_hook_that_fails_silently_says_only_its_exit_code(tmp_path: Path) -> None:
    for command in ("exit 5", "echo '   '; exit 5"):
        result = asyncio.run(run_command(command, 10, {}))
        assert (result.ok, result.exit_code, result.error) == (False, 5, "hook exited 5"), command


def test_command_output_keeps_its_last_4000_chars(tmp_path: Path) -> None:
    exact = asyncio.run(run_command("printf 'a%.0s' $(seq 4000)", 10, {}))
    assert exact.output == "a" * 4000
    longer = asyncio.run(run_command("printf b; printf 'a%.0s' $(seq 4000)", 10, {}))
    assert longer.output == "…" + "a" * 4000 and longer.ok


def test_command_hook_past_its_timeout_is_killed_and_says_so(tmp_path: Path) -> None:
    pidfile = tmp_path / "hook.pid"
    hook = endpoint(
        tmp_path, {"command": f"echo started; echo $$ > {pidfile}; exec sleep 30", "timeout": 0.5}
    )
    result = asyncio.run(run_hook(hook.deploy, {}))  # type: ignore[arg-type]
    assert unclocked(result) == HookResult(
        ok=False,
        kind="command",
        target=f"echo started; echo $$ > {pidfile}; exec sleep 30",
        exit_code=None,
        output="started\n",
        seconds=0.0,
        error="hook timed out after 0.5s",
    )
    assert not Path(f"/proc/{int(pidfile.read_text())}").exists()


def test_hook_with_an_unset_variable_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for hook, kind in (
        ({"command": f"touch {marker} ${{NOT_SET_X}}"}, "command"),
        ({"webhook": "http://127.0.0.1:9/${NOT_SET_X}/{model}"}, "webhook"),
    ):
        result = asyncio.run(run_hook(endpoint(tmp_path, hook).deploy, dict(VALUES)))  # type: ignore[arg-type]
        shown = (
            f"touch {marker} ${{NOT_SET_X}}" if kind == "command" else "http://127.0.0.1:9/${NOT_SET_X}/iris"
        )
        assert result == HookResult(
            False, kind, shown, None, "", 0.0, "cannot run the hook: ${NOT_SET_X} not set"
        )
    assert not marker.exists()


# -- webhooks -----------------------------------------------------------------------------------------
def test_webhook_posts_the_values_url_encodes_placeholders_and_hides_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink_factory: Any
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "hk-s3cret")
    sink = sink_factory(202, "queued with hk-s3cret")
    url = sink.url + "/deploy/{model}/${HOOK_TOKEN}"
    values = {**VALUES, "model": "a/b c"}
    result = asyncio.run(run_hook(endpoint(tmp_path, {"webhook": url}).deploy, values))  # type: ignore[arg-type]
    assert unclocked(result) == HookResult(
        ok=True,
        kind="webhook",
        target=sink.url + "/deploy/a%2Fb%20c/${HOOK_TOKEN}",
        exit_code=202,
        output="queued with ${HOOK_TOKEN}",
        seconds=0.0,
        error=None,
    )
    assert sink.requests == [{"path": "/deploy/a%2Fb%20c/hk-s3cret", "body": values}]


def test_webhook_that_answers_an_error_status_fails_with_it(sink_factory: Any) -> None:
    sink = sink_factory(503, "x" * 4100)
    result = asyncio.run(call_webhook(sink.url + "/d", 10, dict(VALUES)))
    assert unclocked(result) == HookResult(
        ok=False,
        kind="webhook",
        target=sink.url + "/d",
        exit_code=503,
        output="…" + "x" * 4000,
        seconds=0.0,
        error="webhook answered HTTP 503",
    )


def test_webhook_that_cannot_be_reached_fails_with_the_reason() -> None:
    from tests.fixtures_mlflow import free_port

    url = f"http://127.0.0.1:{free_port()}/d"
    result = asyncio.run(call_webhook(url, 5, dict(VALUES)))
    assert replace(unclocked(result), error=None) == HookResult(False, "webhook", url, None, "", 0.0, None)
    assert result.error is not None and result.error.startswith("webhook failed: ConnectError: ")


# -- verification ---------------------------------------------------------------------------------------
def test_verify_keeps_probing_until_the_new_version_is_served(tmp_path: Path, fast_polls: None) -> None:
    ep = endpoint(tmp_path, {"command": "true"})
    probe = scripted(
        ProbeResult(ok=False, error="connection refused"),
        ProbeResult(ok=False),
        ProbeResult(ok=True, served_version="2"),
        RuntimeError("adapter broke"),
        ProbeResult(ok=False, error="loading"),
        ProbeResult(ok=True, served_version="2"),
        ProbeResult(ok=True, served_version=3),  # an adapter may report a number
    )
    said: list[str] = []
    result = asyncio.run(verify(ep, "3", 30, probe, said.append))
    assert (result.ok, result.probes, result.served_version, result.error, result.timeout) == (
        True,
        7,
        3,
        None,
        None,
    )
    assert probe.calls == [ep] * 7
    # Progress on the first probe and every fifth after it, with the reason it is still waiting.
    assert said == ["ep: waiting (connection refused)", "ep: waiting (still serves v2)"]


def test_verify_reports_each_reason_it_did_not_converge(tmp_path: Path, fast_polls: None) -> None:
    ep = endpoint(tmp_path, {"command": "true"})

    async def hangs(_ep: EndpointSettings) -> ProbeResult:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    cases = [
        (scripted(ProbeResult(ok=False, error="HTTP 502", served_version="2")), "HTTP 502", "2"),
        (scripted(ProbeResult(ok=False)), "unhealthy", None),
        (scripted(ProbeResult(ok=True, served_version="2")), "still serves v2", "2"),
        (scripted(ValueError("bad json")), "probe failed: bad json", None),
        (hangs, "probe timed out", None),
    ]
    for probe, error, served in cases:
        result = asyncio.run(verify(ep, "3", 0.2, probe))
        assert (result.ok, result.served_version, result.error, result.timeout) == (False, served, error, 0.2)
        assert result.probes >= 1 and result.seconds <= 5


def test_verify_of_an_endpoint_whose_version_is_unknown_accepts_healthy(tmp_path: Path) -> None:
    ep = endpoint(tmp_path, {"command": "true"})
    result = asyncio.run(verify(ep, "3", 5, scripted(ProbeResult(ok=True))))
    assert replace(result, seconds=0.0) == VerifyResult(True, 0.0, 1, None)


def test_verify_probes_the_real_endpoint_when_given_no_probe(tmp_path: Path, fast_polls: None) -> None:
    from tests.fixtures_mlflow import free_port

    ep = endpoint(tmp_path, {"command": "true"})
    ep = ep.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})
    result = asyncio.run(verify(ep, "3", 0.3))
    assert not result.ok and result.probes >= 1 and result.error and result.timeout == 0.3
    assert not result.error.startswith("probe failed"), "the real probe ran and answered"


def test_killing_a_hook_group_that_is_gone_is_no_error() -> None:
    import subprocess

    done = subprocess.Popen(["true"], start_new_session=True)
    done.wait()
    deploy._kill_group(done.pid)  # already reaped: ProcessLookupError, swallowed


# -- outcome and the whole deploy ------------------------------------------------------------------------
def test_outcome_summaries_and_the_audit_form() -> None:
    hook = HookResult(True, "command", "true", 0, "", 1.25)
    verified = DeployOutcome("ep", "iris", "production", "3", hook, VerifyResult(True, 2.5, 3, "3"))
    assert verified.ok and verified.summary == "deploy of iris v3 to ep verified in 3.8s"
    assert verified.as_dict() == {
        "endpoint": "ep",
        "version": "3",
        "ok": True,
        "summary": "deploy of iris v3 to ep verified in 3.8s",
        "hook": {
            "ok": True,
            "kind": "command",
            "target": "true",
            "exit_code": 0,
            "output": "",
            "seconds": 1.25,
            "error": None,
        },
        "verify": {
            "ok": True,
            "seconds": 2.5,
            "probes": 3,
            "served_version": "3",
            "error": None,
            "timeout": None,
        },
    }
    stale = replace(verified, verify=VerifyResult(False, 90.4, 80, "2", "still serves v2", 90.0))
    assert (
        not stale.ok
        and stale.summary == "deploy of iris v3 to ep did not converge within 90s: still serves v2"
    )
    untimed = replace(verified, verify=VerifyResult(False, 1.5, 1, None, "unhealthy"))
    assert untimed.summary == "deploy of iris v3 to ep did not converge within 1.5s: unhealthy"
    failed = DeployOutcome(
        "ep", "iris", "production", "3", replace(hook, ok=False, error="hook exited 2"), None
    )
    assert not failed.ok and failed.summary == "deploy of iris v3 to ep failed: hook exited 2"
    assert failed.as_dict()["verify"] is None and failed.as_dict()["ok"] is False
    unverified = replace(verified, verify=None)
    assert not unverified.ok


def test_deploy_endpoint_runs_the_hook_then_verifies(tmp_path: Path, fast_polls: None) -> None:
    out = tmp_path / "env.txt"
    ep = endpoint(tmp_path, {"command": f'echo "$MLOPS_ACTOR" {{endpoint}} > {out}', "verify_timeout": 5})
    said: list[str] = []
    probe = scripted(ProbeResult(ok=False, error="loading"), ProbeResult(ok=True, served_version="3"))
    outcome = asyncio.run(
        deploy_endpoint(
            ep,
            model="iris",
            alias="production",
            version=3,
            extra={"actor": "alice"},
            probe=probe,
            progress=said.append,  # type: ignore[arg-type]
        )
    )
    assert outcome.ok and (outcome.endpoint, outcome.model, outcome.alias, outcome.version) == (
        "ep",
        "iris",
        "production",
        "3",
    )
    assert out.read_text() == "alice ep\n"
    assert outcome.verify is not None and outcome.verify.probes == 2 and probe.calls == [ep, ep]
    assert said[0] == "ep: running deploy command"
    assert said[1].startswith("ep: hook done in ") and said[1].endswith("s; verifying (up to 5s)")
    assert said[2:] == ["ep: waiting (loading)", outcome.summary] and outcome.summary.startswith(
        "deploy of iris v3 to ep verified in "
    )


def test_deploy_endpoint_whose_hook_fails_does_not_verify(tmp_path: Path, sink_factory: Any) -> None:
    sink = sink_factory(500, "")
    ep = endpoint(tmp_path, {"webhook": sink.url + "/{version}"})
    said: list[str] = []
    probe = scripted(ProbeResult(ok=True))
    outcome = asyncio.run(
        deploy_endpoint(ep, model="iris", alias="staging", version=4, probe=probe, progress=said.append)  # type: ignore[arg-type]
    )
    assert outcome == DeployOutcome("ep", "iris", "staging", "4", outcome.hook, None)
    assert not outcome.ok and probe.calls == [] and outcome.hook.exit_code == 500
    assert said == ["ep: running deploy webhook", "ep: webhook answered HTTP 500"]
    assert sink.requests == [
        {"path": "/4", "body": {"model": "iris", "alias": "staging", "version": "4", "endpoint": "ep"}}
    ]


def test_command_hook_reads_nothing_and_its_stderr_and_bad_bytes_are_kept(tmp_path: Path) -> None:
    # Give this process a stdin that is not /dev/null: the hook must still get /dev/null.
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        result = asyncio.run(
            run_command("readlink /proc/$$/fd/0; echo out; printf '\\377\\n'; echo err >&2; exit 3", 10, {})
        )
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)
    assert result.output == "/dev/null\nout\n\ufffd\nerr\n"
    assert result.error == "hook exited 3: err"


def test_verify_without_time_for_another_poll_probes_once(tmp_path: Path) -> None:
    # The real poll interval (1 s) is longer than this timeout: one probe, then the verdict.
    probe = scripted(ProbeResult(ok=False, error="down"))
    result = asyncio.run(verify(endpoint(tmp_path, {"command": "true"}), "3", 0.2, probe))
    assert (result.ok, result.probes, result.error, result.timeout) == (False, 1, "down", 0.2)
    assert isinstance(result.seconds, float) and 0 <= result.seconds < 60


def test_verify_reports_its_duration_in_seconds(tmp_path: Path, fast_polls: None) -> None:
    ep = endpoint(tmp_path, {"command": "true"})
    for probe in (scripted(ProbeResult(ok=True)), scripted(ProbeResult(ok=False))):
        result = asyncio.run(verify(ep, "3", 0.05, probe))
        assert isinstance(result.seconds, float) and 0 <= result.seconds < 60, result


def test_webhook_that_does_not_answer_in_time_fails(tmp_path: Path, sink_factory: Any) -> None:
    sink = sink_factory(200, "late", delay=30)
    hook = endpoint(tmp_path, {"webhook": sink.url + "/d", "timeout": 0.3})
    result = asyncio.run(run_hook(hook.deploy, dict(VALUES)))  # type: ignore[arg-type]
    assert (result.ok, result.exit_code, result.output) == (False, None, "")
    assert result.error == "webhook failed: ReadTimeout: no answer within 0.3s"
    assert isinstance(result.seconds, float) and 0 <= result.seconds < 60
