"""A real headless browser (Debian's chromium, driven by Playwright) for the web console's tests and
the screenshot script. Requests leaving loopback are aborted: nothing may need the internet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no chromium on PATH (apt-get install -y chromium)")


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def offline_page(browser: Any, width: int = 1280, height: int = 800) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height})

    def only_loopback(route: Any) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_loopback)
    return page


class TerminalFrames:
    """Everything the console process sent the page's terminal, as text (escape codes and all)."""

    def __init__(self, page: Any) -> None:
        self.parts: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload: str | bytes) -> None:
        self.parts.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

    def text(self, since: int = 0) -> str:
        return "".join(self.parts[since:])

    def wait_for(self, page: Any, needle: str, timeout: float, since: int = 0) -> None:
        """Until `needle` arrives (Playwright delivers events only while it is called: it waits in
        `page.wait_for_timeout`, never in `time.sleep`)."""
        waited = 0.0
        while needle not in self.text(since):
            if waited >= timeout:
                raise AssertionError(f"{needle!r} did not reach the browser within {timeout:.0f} s")
            page.wait_for_timeout(250)
            waited += 0.25
