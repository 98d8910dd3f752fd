"""Who may use the console: a token when it listens beyond loopback, and no form posted from another site.

The token is accepted as ``Authorization: Bearer <token>``, as a cookie, or once as ``?token=<token>``:
that answer sets the cookie (HttpOnly, SameSite=Strict) and redirects to the same address without
the token, so it does not stay in the address bar or the history.

Every POST must come from the console's own pages: a browser sends ``Origin`` (and
``Sec-Fetch-Site``) with a form, and a form on another site (cross-site request forgery against a
console on 127.0.0.1) is refused.

A console without a token (on loopback) answers only requests addressed to a loopback name
(``Host: 127.0.0.1:9325``, ``localhost``, ``[::1]``): a page that rebinds its own DNS name to
127.0.0.1 sends its own name as ``Host`` and is refused, so it can neither read nor post.
Every answer forbids framing (``X-Frame-Options``, CSP ``frame-ancestors``) and scripts from
anywhere but the console itself.

One path is open to all: ``GET /health`` (``app.health``), for probes and load balancers, which carry no token and
address the console by whatever name or address they reach it at. It answers the environment's health status and
its causes, nothing else, and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from conveyor import web_guard

# Re-exported: the control API (env/control.py) and the console's tests import them from here.
from conveyor.web_guard import host_name as host_name
from conveyor.web_guard import loopback_host as loopback_host

TOKEN_COOKIE = "conveyor_console_token"
#: Environment variable holding the token when it is not generated.
TOKEN_ENV = "CONVEYOR_CONSOLE_TOKEN"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def needs_token(host: str) -> bool:
    """A console bound to anything but loopback must ask for a token."""
    return host not in LOOPBACK and not host.startswith("127.")


def choose_token(host: str, given: str | None) -> str | None:
    """The token a console on ``host`` asks for: the one given (``$CONVEYOR_CONSOLE_TOKEN``), else a new one
    beyond loopback, else none."""
    return given or (new_token() if needs_token(host) else None)


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _refused(status: int, title: str, text: str) -> web.Response:
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<body style='font-family:sans-serif;max-width:40em;margin:3em auto'><h1>{title}</h1><p>{text}</p>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


def cross_site(request: web.Request) -> bool:
    """A request sent by a page of another origin (``conveyor.web_guard.cross_site``)."""
    return web_guard.cross_site(request.headers, f"{request.scheme}://{request.host}")


#: The console's probe path: answered without the token and whatever the Host (a probe knows neither).
HEALTH_PATH = "/health"


def guard(token: str | None) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("GET", "HEAD") and request.path == HEALTH_PATH:
            return await handler(request)
        if request.method not in ("GET", "HEAD") and cross_site(request):
            return _refused(403, "Refused", "This form was sent from another site; use the console's own pages.")
        if token is None:
            if not loopback_host(request.host):
                return _refused(
                    421,
                    "Wrong address",
                    "This console answers on 127.0.0.1 only; open it as http://127.0.0.1:&lt;port&gt;/.",
                )
            return await handler(request)
        given = request.query.get("token")
        if given is not None and _same(given, token):
            clean = request.rel_url.with_query({k: v for k, v in request.rel_url.query.items() if k != "token"})
            response = web.Response(status=303, headers={"Location": str(clean)})
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.secure)
            return response
        if _same(_bearer(request), token) or _same(request.cookies.get(TOKEN_COOKIE), token):
            return await handler(request)
        return _refused(
            401,
            "A token is needed",
            "This console listens beyond this machine, so it asks for the token that <code>conveyor up</code> "
            "printed: open the full address it printed (ending in <code>?token=...</code>), or run "
            "<code>conveyor console</code> on the machine running the environment.",
        )

    return middleware


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; script-src 'self'; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def secure_headers(_: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no framing, scripts only from the console, no sniffing, no referrer."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def address(url: str, token: str | None) -> str:
    """The console's address to open: with ``?token=`` when it needs one."""
    return f"{url}?token={token}" if token and url else url
