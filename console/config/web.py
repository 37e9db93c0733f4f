"""`[web]`: the console served to a browser (`mlops-console web`)."""

from __future__ import annotations

from pydantic import Field

from mlops_console.config.values import Section


class WebSettings(Section):
    host: str = "127.0.0.1"
    """Address to listen on. Anything but loopback needs `token`."""
    port: int = Field(default=8765, ge=1, le=65535)
    token: str | None = None
    """Asked for before a browser session starts (`?token=...` once; a cookie after), as a `${VAR}`
    reference. Unset: anyone who can reach the port gets a console, so only loopback may go without."""
