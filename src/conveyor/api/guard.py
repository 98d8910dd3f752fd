"""Which requests the SQS port refuses before reading them: what a web page could make a browser send.

A page that rebinds its own DNS name to this server sends that name as ``Host``: only loopback names, the
address the server listens on and its ``--allow-host`` names are answered. A page of another site (a form, an
image, a ``fetch``) is named by the browser in ``Origin`` / ``Sec-Fetch-Site``: refused whatever the ``Host``.
SDKs and the AWS CLI send the endpoint's own host and no browser headers, so they are never refused. The
refusal is SQS's ``AccessDenied`` (403), in the protocol the request used (``app.py`` renders it).
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor import errors, web_guard
from conveyor.config import ServerConfig, check_allowed_host
from conveyor.errors import ConfigError

#: Longest piece of a header echoed in a refusal.
_ECHO_CHARS = 100


def refusal(config: ServerConfig, headers: Mapping[str, str], scheme: str) -> errors.ConveyorError | None:
    """The ``AccessDenied`` a request with these headers gets, or None when it may be served."""
    host = headers.get("Host")
    if host is None:
        return None  # HTTP/1.0 without Host: a program, never a browser
    if not config.host_allowed(host):
        name = web_guard.host_name(host)[:_ECHO_CHARS]
        try:
            check_allowed_host(name)
            fix = f"start it with --allow-host {name} (or CONVEYOR_ALLOW_HOSTS)"
        except ConfigError:
            fix = "send a Host header that is a host name or address (and a port), and allow it with --allow-host"
        return errors.AccessDenied(
            f"Access denied: this server does not answer for the host name {name!r} (the request's Host header), "
            "so that a web page which points its own name at this server cannot use it. To reach the server by "
            f"that name (Docker, a proxy), {fix}."
        )
    if web_guard.cross_site(headers, f"{scheme}://{host}"):
        origin = headers.get("Origin") or f"Sec-Fetch-Site: {headers.get('Sec-Fetch-Site', '')}"
        return errors.AccessDenied(
            f"Access denied: the request was sent by a web page of another site ({origin[:_ECHO_CHARS]}), and web "
            "pages may not drive this queue service. Send SQS requests from your application's code (an AWS SDK, "
            "the AWS CLI), not from a browser page."
        )
    return None
