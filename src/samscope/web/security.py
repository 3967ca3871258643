"""Access rules around the app, as one ASGI middleware (:class:`Guard`).

- **Token** (when the server has one: bound off loopback, or given): every request carries it
  as ``Authorization: Bearer TOKEN``, ``X-Samscope-Token``, ``?token=TOKEN`` or the
  ``samscope_token`` cookie, which a page request with the right ``?token=`` sets (HttpOnly,
  SameSite=Strict). Compared in constant time; anything else is 401.
- **Host** (bound to loopback): only ``localhost``/loopback host names are served, so a web
  page cannot reach the server through a rebound DNS name.
- **Origin**: a request that changes something (POST, PUT, PATCH, DELETE) from a page of
  another origin is 403, so other sites cannot post to the server from a visitor's browser.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from samscope.web.config import is_loopback

__all__ = ["COOKIE", "Guard"]

COOKIE = "samscope_token"
_UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _hostname(value: str) -> str:
    """``host[:port]`` → host (brackets of IPv6 kept out)."""
    value = value.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware enforcing the token, host and origin rules.

    Parameters
    ----------
    app : ASGI application
    token : str or None
        Required token (None: no token).
    loopback_only : bool
        Serve loopback host names only (the server binds to loopback).
    allowed_hosts : iterable of str
        Extra host names to serve when ``loopback_only`` (e.g. ``testserver``).
    """

    def __init__(self, app, *, token: str | None, loopback_only: bool,
                 allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = _hostname(headers.get("host", ""))
        if self.loopback_only and not (is_loopback(host) or host.lower() in self.allowed_hosts):
            await _reply(send, 403, "this server answers on localhost only")
            return
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        if method in _UNSAFE_METHODS and origin and origin != "null":
            if urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                await _reply(send, 403, "cross-origin requests are not allowed")
                return
        if self.token is None:
            await self.app(scope, receive, send)
            return
        given, from_query = self._given(scope, headers)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            await _reply(send, 401, "this server needs its access token: open the address "
                         "samscope serve printed (…/?token=…) or send 'Authorization: Bearer "
                         "TOKEN'")
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                cookie = (f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _given(self, scope, headers: dict[str, str]) -> tuple[str | None, bool]:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        if "x-samscope-token" in headers:
            return headers["x-samscope-token"].strip(), False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return None, False
        if COOKIE in cookie:
            return cookie[COOKIE].value, False
        return None, False


async def _reply(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
