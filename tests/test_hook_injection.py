"""Deploy hooks receive hostile model names and actors as data, never as shell code.

Real registered models with hostile names (a fresh sqlite MLflow registry), a real shell running the
configured hook, and a working directory where a successful injection would leave a `pwned` file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import ConfigError, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from mlops_console.core.templates import quoted_placeholders
from tests._changes import promote

# (model name, actor): each one runs `touch pwned` if a value reaches the shell as code.
HOSTILE = [
    ("x; touch pwned", "alice"),
    ("$(touch pwned)", "alice"),
    ("`touch pwned`", "alice"),
    ("q{actor}", ";touch pwned;"),
    ("a'b\"c {version}", "$(touch pwned)"),
]


async def healthy(_endpoint: Any) -> ProbeResult:
    return ProbeResult(ok=True)


def register(registry: Any, name: str) -> None:
    """A READY version 1 of a model called `name` (its artifacts are never loaded here)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    client.create_registered_model(name)
    client.create_model_version(name, source=str(registry.root / "unused-artifacts"))


def settings_for(tmp_path: Path, tracking_uri: str, model: str, deploy: dict[str, Any]) -> Any:
    return parse_settings(
        {
            "registry": {"tracking_uri": tracking_uri, "timeout": 10},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {"name": "ep", "url": "http://127.0.0.1:9", "model": model, "deploy": deploy},
            ],
        }
    )


@pytest.mark.parametrize(("model", "actor"), HOSTILE, ids=[m for m, _a in HOSTILE])
def test_hostile_names_reach_the_hook_as_data(
    model: str, actor: str, mlflow_registry, tmp_path: Path
) -> None:
    register(mlflow_registry, model)
    work = tmp_path / "work"
    work.mkdir()
    # The documented forms: placeholders as bare words, and the environment in double quotes.
    command = (
        f"cd {work} && printf '%s|%s|%s\\n' {{model}} {{actor}} {{version}} > args.txt && "
        'printf \'%s|%s|%s|%s\\n\' "$MLOPS_MODEL" "$MLOPS_ACTOR" "$MLOPS_VERSION" "$MLOPS_ALIAS" > env.txt'
    )
    settings = settings_for(tmp_path, mlflow_registry.tracking_uri, model, {"command": command})
    store = Store(settings.store.path)
    result = promote(settings, store, RegistryClient(settings.registry), model, 1, actor=actor, probe=healthy)
    assert not (work / "pwned").exists()
    assert not Path("pwned").exists()
    assert result.ok, result.message
    assert (work / "args.txt").read_text() == f"{model}|{actor}|1\n"
    assert (work / "env.txt").read_text() == f"{model}|{actor}|1|production\n"


def test_a_value_holding_a_placeholder_is_not_expanded_again(mlflow_registry, tmp_path: Path) -> None:
    """The webhook sibling: one pass, URL-encoded values."""
    import http.server
    import threading

    model = "q{actor}"
    register(mlflow_registry, model)
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, **body})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/deploy/{{model}}/{{actor}}"
        settings = settings_for(tmp_path, mlflow_registry.tracking_uri, model, {"webhook": url})
        result = promote(
            settings,
            Store(settings.store.path),
            RegistryClient(settings.registry),
            model,
            1,
            actor="x/../{model}",
            probe=healthy,
        )
    finally:
        server.shutdown()
    assert result.ok, result.message
    assert received[0]["path"] == "/deploy/q%7Bactor%7D/x%2F..%2F%7Bmodel%7D"
    assert (received[0]["model"], received[0]["actor"]) == (model, "x/../{model}")


QUOTED = {
    "single quotes": "echo '{model}'",
    "double quotes": 'echo "{model}"',
    "inside a longer quoted word": "deploy --name='v{version}-{model}'",
    "escaped": "echo \\{model}",
    "ansi-c quotes": "echo $'{alias}'",
}


@pytest.mark.parametrize("case", sorted(QUOTED))
def test_config_check_rejects_a_quoted_placeholder(case: str, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    command = QUOTED[case]
    path.write_text(
        "[[endpoints]]\nname = 'ep'\nurl = 'http://127.0.0.1:9'\nmodel = 'm'\n"
        f"deploy = {{ command = {json.dumps(command)} }}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mlops_console", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout
    assert f"{path}: endpoints[0].deploy.command: placeholder {{" in result.stderr
    assert "is inside quotes" in result.stderr and "write it unquoted" in result.stderr
    assert '"$MLOPS_' in result.stderr and "Traceback" not in result.stderr
    # Every command refuses such a config, not only `config check`.
    status = subprocess.run(
        [sys.executable, "-m", "mlops_console", "--config", str(path), "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 2 and "endpoints[0].deploy.command: placeholder" in status.stderr


def test_the_quoting_rule_accepts_the_safe_forms() -> None:
    safe = [
        "echo {model} {version}",
        'echo "$MLOPS_MODEL" "${MLOPS_VERSION}"',
        "awk '{print $1}' < /dev/null; echo {model}",
        "echo '{unknown}' --name={model}.tar",
        'echo "${model}"',  # an environment reference, not a placeholder
        'echo "\\\\" {model}',
        "$(echo {model})",
    ]
    for command in safe:
        assert quoted_placeholders(command) == [], command
    assert quoted_placeholders("a '{model}' \"{actor}\" \\{alias} {version}") == ["model", "actor", "alias"]
    with pytest.raises(ConfigError) as err:
        parse_settings(
            {
                "endpoints": [
                    {
                        "name": "e",
                        "url": "http://127.0.0.1:9",
                        "model": "m",
                        "deploy": {"command": "x '{actor}'"},
                    }
                ]
            }
        )
    assert "endpoints[0].deploy.command: placeholder {actor} is inside quotes" in str(err.value)
    assert '"$MLOPS_ACTOR"' in str(err.value)
