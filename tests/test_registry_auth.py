"""A registry behind MLflow's own authentication (`mlflow server --app-name basic-auth`, a real server
with users and permissions): credentials from MLflow's environment variables or from `[registry]`
(`${VAR}` references), a user who may read but not edit gets a clear "not permitted" on promote and
rollback with nothing changed and the refusal audited, and a wrong password says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlops_console.core.store import Store
from tests.fixtures_mlflow import start_mlflow_server, stop_process_group

CLI = [sys.executable, "-m", "mlops_console"]
ADMIN = ("admin", "admin-password-4821")
VIEWER = ("viewer", "viewer-password-7734")
EDITOR = ("editor", "editor-password-5190")


@dataclass
class SecuredRegistry:
    url: str

    def admin(self, method: str, path: str, body: dict[str, str]) -> httpx.Response:
        response = httpx.request(method, f"{self.url}{path}", json=body, auth=ADMIN, timeout=30)
        response.raise_for_status()
        return response

    def alias(self, model: str, alias: str) -> str:
        got = httpx.get(
            f"{self.url}/api/2.0/mlflow/registered-models/alias",
            params={"name": model, "alias": alias},
            auth=ADMIN,
            timeout=30,
        )
        got.raise_for_status()
        return str(got.json()["model_version"]["version"])


@pytest.fixture(scope="module")
def secured(mlflow_registry_template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredRegistry]:
    registry = mlflow_registry_template.copy_to(tmp_path_factory.mktemp("secured-mlflow"))
    ini = registry.root / "basic_auth.ini"
    ini.write_text(
        textwrap.dedent(f"""
        [mlflow]
        default_permission = READ
        database_uri = sqlite:///{registry.root / "auth.db"}
        admin_username = {ADMIN[0]}
        admin_password = {ADMIN[1]}
        authorization_function = mlflow.server.auth:authenticate_request_basic_auth
        # Each request otherwise pays a deliberately slow password hash: seconds on a loaded machine.
        auth_cache_ttl_seconds = 600
        """)
    )
    url, process = start_mlflow_server(
        registry,
        "--app-name",
        "basic-auth",
        env={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key"},
        timeout=120.0,
    )
    try:
        server = SecuredRegistry(url)
        for user, password in (VIEWER, EDITOR):
            server.admin("POST", "/api/2.0/mlflow/users/create", {"username": user, "password": password})
        server.admin(
            "POST",
            "/api/3.0/mlflow/users/permissions/grant",
            {
                "username": EDITOR[0],
                "resource_type": "registered_model",
                "resource_id": "iris",
                "permission": "EDIT",
            },
        )
        yield server
    finally:
        stop_process_group(process)


def write_config(root: Path, url: str, credentials: str = "") -> Path:
    path = root / "config.toml"
    path.write_text(
        f'[registry]\ntracking_uri = "{url}"\ntimeout = 20\n{credentials}\n'
        f'[store]\npath = "{root / "c.db"}"\n'
    )
    return path


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        env={**clean, "PYTHONWARNINGS": "ignore", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_reader_is_refused_on_promote_and_rollback_and_the_refusal_is_audited(
    secured: SecuredRegistry, tmp_path: Path
) -> None:
    # Credentials through MLflow's own variables.
    config = write_config(tmp_path, secured.url)
    viewer = {"MLFLOW_TRACKING_USERNAME": VIEWER[0], "MLFLOW_TRACKING_PASSWORD": VIEWER[1]}
    editor = {"MLFLOW_TRACKING_USERNAME": EDITOR[0], "MLFLOW_TRACKING_PASSWORD": EDITOR[1]}
    listed = run(config, "models", "--json", env=viewer)
    assert listed.returncode == 0, listed.stderr
    assert next(m for m in json.loads(listed.stdout) if m["name"] == "iris")["aliases"]["production"] == "2"

    refused = run(config, "promote", "iris", "3", "--yes", "--by", "vic", env=viewer)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "promote refused: not permitted: viewer lacks EDIT on iris" in refused.stderr, refused.stderr
    assert secured.alias("iris", "production") == "2"

    # A rollback needs something to roll back: the editor promotes, the viewer may not undo it.
    assert run(config, "promote", "iris", "3", "--yes", "--by", "eve", env=editor).returncode == 0
    refused = run(config, "rollback", "iris", "--yes", "--by", "vic", env=viewer)
    assert refused.returncode == 1
    assert "rollback refused: not permitted: viewer lacks EDIT on iris" in refused.stderr, refused.stderr
    assert secured.alias("iris", "production") == "3"
    assert run(config, "rollback", "iris", "--yes", "--by", "eve", env=editor).returncode == 0
    assert secured.alias("iris", "production") == "2"

    audit = Store(tmp_path / "c.db").list_audit(model="iris")
    changes = [(a.action, a.result, a.actor) for a in reversed(audit) if a.action in ("promote", "rollback")]
    assert changes == [
        ("promote", "refused", "vic"),
        ("promote", "ok", "eve"),
        ("rollback", "refused", "vic"),
        ("rollback", "ok", "eve"),
    ]


def test_an_editor_from_config_variables_promotes_and_rolls_back(
    secured: SecuredRegistry, tmp_path: Path
) -> None:
    # Credentials through `[registry]`, as `${VAR}` references resolved when the registry is used.
    config = write_config(tmp_path, secured.url, 'username = "${REG_USER}"\npassword = "${REG_PASSWORD}"')
    creds = {"REG_USER": EDITOR[0], "REG_PASSWORD": EDITOR[1]}
    done = run(config, "promote", "iris", "3", "--yes", "--json", env=creds)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["to_version"] == "3"
    assert secured.alias("iris", "production") == "3"
    done = run(config, "rollback", "iris", "--yes", env=creds)
    assert done.returncode == 0, done.stderr
    assert secured.alias("iris", "production") == "2"


def test_a_wrong_password_or_a_missing_variable_says_so(secured: SecuredRegistry, tmp_path: Path) -> None:
    config = write_config(tmp_path, secured.url)
    done = run(
        config, "models", env={"MLFLOW_TRACKING_USERNAME": VIEWER[0], "MLFLOW_TRACKING_PASSWORD": "wrong-one"}
    )
    assert done.returncode == 1
    assert "not authenticated: the registry refused the credentials of viewer" in done.stderr, done.stderr
    assert "wrong-one" not in done.stderr

    config = write_config(tmp_path, secured.url, 'username = "viewer"\npassword = "${REG_PASSWORD}"')
    done = run(config, "promote", "iris", "3", "--yes")
    assert done.returncode == 2
    assert f"{config}: registry.password: environment variable ${{REG_PASSWORD}} is not set" in done.stderr
    assert secured.alias("iris", "production") == "2"
    # Commands that do not use the registry do not need its credentials.
    done = run(config, "audit", "--json")
    assert done.returncode == 0 and "REG_PASSWORD" not in done.stderr, done.stderr
