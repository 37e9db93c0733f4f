"""textual-serve with a token checked before any session starts.

Each browser session is its own console process (the same command a terminal runs), so the store,
the lease and read-only mode behave exactly as in a terminal: a browser session follows a watcher
and never pages twice.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from textual_serve.server import Server

COOKIE = "mlops_console_token"
# textual-serve's page asks Google for its font; the console must work offline and tell nobody it ran.
_REMOTE_FONT = re.compile(r'<link\s[^>]*href="https://fonts\.googleapis\.com[^"]*"\s*/?>')
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenServer(Server):
    """A textual-serve `Server` that answers 403 to anything without the token.

    The token comes once as `?token=...` on the page; the answer sets an HttpOnly, same-site cookie
    that the page's websocket and static files then carry, so the token never sits in the websocket
    URL or the page.
    """

    def __init__(self, command: str, *, host: str, port: int, token: str | None, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = token

    def allowed(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()

        @web.middleware
        async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not self.allowed(request):
                return web.Response(status=403, text="mlops-console: a valid token is required\n")
            response = await handler(request)
            if request.path == "/" and isinstance(response, web.Response) and response.text:
                response.text = _REMOTE_FONT.sub("", response.text)
            if self.token is not None and "token" in request.query and not response.prepared:
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
            return response

        app.middlewares.append(check_token)
        return app
