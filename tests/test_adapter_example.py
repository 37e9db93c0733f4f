"""The third-party adapter example in the README runs as written, against a loopback server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mlops_console.config import parse_settings
from mlops_console.core.adapters import Adapter, new_http_session
from tests._loopback import free_port

README = Path(__file__).resolve().parents[1] / "README.md"


def example_adapter() -> type[Adapter]:
    text = README.read_text()
    code = re.search(r"<!-- adapter-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert code, "the README lost its adapter example"
    namespace: dict[str, Any] = {"__name__": "mlops_console_acme"}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    assert len(code.group(1).splitlines()) <= 40
    return namespace["AcmeAdapter"]


@pytest.fixture
async def acme() -> AsyncIterator[dict[str, Any]]:
    state: dict[str, Any] = {"body": {"state": "ready", "model_version": 4}, "port": free_port()}

    async def status(request: web.Request) -> web.Response:
        body = state["body"]
        return web.json_response(body) if isinstance(body, dict) else web.Response(text=body)

    app = web.Application()
    app.router.add_get("/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", state["port"]).start()
    yield state
    await runner.cleanup()


async def test_the_readme_adapter_example_probes_as_documented(acme: dict[str, Any]) -> None:
    cls = example_adapter()
    url = f"http://127.0.0.1:{acme['port']}"
    settings = parse_settings({"endpoints": [{"name": "ep", "url": url, "adapter": "mlflow"}]})
    adapter = cls(settings.endpoints[0])
    assert adapter.metric_names().requests == "acme_requests_total"
    async with new_http_session() as http:
        result = await adapter.probe(http)
        assert (result.ok, result.served_version, result.loading) == (True, "4", False)
        acme["body"] = {"state": "loading"}
        result = await adapter.probe(http)
        assert (result.ok, result.loading) == (False, True)
        assert result.error == "loading: ACME is loading its model"
        acme["body"] = "<html>oops</html>"
        result = await adapter.probe(http)
        assert not result.ok and "not JSON" in (result.error or "")
        nobody = f"http://127.0.0.1:{free_port()}"
        closed = cls(parse_settings({"endpoints": [{"name": "x", "url": nobody}]}).endpoints[0])
        result = await closed.probe(http)
        assert not result.ok and (result.error or "").startswith("connection failed")
