"""`mlops-console web` in a real headless browser (chromium through Playwright): the page loads with
the token, the overview's endpoints reach the browser's terminal, a key press opens the alerts screen,
and a wrong or missing token is refused before any console session starts. Without a token, only
loopback may be bound."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._browser import TerminalFrames, browser, offline_page
from tests._serve_helpers import free_port, poll_until

CLI = [sys.executable, "-m", "mlops_console"]
TOKEN = "web-token-8d1f"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("web")
    config = root / "console.toml"
    config.write_text(
        f'[store]\npath = "{root / "console.db"}"\n\n'
        f'[[endpoints]]\nname = "fraud-web-prod"\nurl = "http://127.0.0.1:{free_port()}"\ninterval = 1\n'
    )
    port = free_port()
    log = root / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "web", "--port", str(port), "--token", TOKEN],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"web exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            return httpx.get(url, timeout=1).status_code == 403
        except httpx.HTTPError:
            return False

    try:
        poll_until(up, 60, "the web console to listen")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_console_runs_in_a_browser_and_keys_reach_it(web: str, tmp_path: Path) -> None:
    with browser() as chromium:
        page = offline_page(chromium)
        frames = TerminalFrames(page)
        response = page.goto(f"{web}/?token={TOKEN}")
        assert response is not None and response.status == 200
        frames.wait_for(page, "fraud-web-prod", 90)

        before = len(frames.parts)
        page.click("#terminal")
        page.keyboard.press("a")
        frames.wait_for(page, "alerts: ", 30, since=before)
        shot = tmp_path / "web.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000


def test_a_wrong_or_missing_token_gets_no_session(web: str) -> None:
    with browser() as chromium:
        page = offline_page(chromium)
        frames = TerminalFrames(page)
        for url in (f"{web}/?token=wrong-{TOKEN}", web):
            response = page.goto(url)
            assert response is not None and response.status == 403
            assert "a valid token is required" in page.content()
        assert frames.parts == []
    # The websocket itself, asked directly without the cookie, is refused too.
    assert httpx.get(f"{web}/ws", timeout=5).status_code == 403
    assert httpx.get(f"{web}/ws", cookies={"mlops_console_token": "nope"}, timeout=5).status_code == 403


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    config = tmp_path / "console.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n')
    done = subprocess.run(
        [*CLI, "--config", str(config), "web", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{config}: web.host: 0.0.0.0 is reachable from other machines: a token is required" in done.stderr
