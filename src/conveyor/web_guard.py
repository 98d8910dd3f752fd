"""What a web page could make a browser send to conveyor's HTTP ports, told apart from what a program sends.

Two attacks reach a server on 127.0.0.1 from any page the user opens. **DNS rebinding**: the page's own name is
re-pointed at 127.0.0.1, so its scripts talk to the local server as if it were their own site; the browser still
sends the page's name as ``Host``, which a server that answers only for the names it knows refuses. **Cross-site
requests**: a form, an image or a ``fetch`` aimed at http://127.0.0.1:<port>; the browser says where it comes
from (``Origin``, ``Sec-Fetch-Site``). Programs (SDKs, the AWS CLI, curl) send neither header.

Pure functions over header values, shared by the SQS API, the console and the control API; each words its own
refusal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

#: ``Sec-Fetch-Site`` values of a request sent by a page of another origin (``same-site`` is another port or
#: subdomain of the same site: still another origin).
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without the port and one trailing dot: ``[::1]:9325`` gives ``::1``,
    ``localhost.:80`` gives ``localhost``. A header that is not ``name[:port]`` or ``[address][:port]`` (a port
    that is not a number, text after ``]``) is given back whole, so that it matches no name."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name if rest == "" or _port(rest) else host
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name.removesuffix(".") if _port(":" + port) else host
    return host if ":" in host else host.removesuffix(".")


def _port(text: str) -> bool:
    return len(text) > 1 and text[0] == ":" and text[1:].isascii() and text[1:].isdigit()


def is_wildcard(host: str) -> bool:
    """``0.0.0.0``, ``::`` and their spellings (and an empty host, as ``bind`` takes it): every interface."""
    try:
        return host == "" or ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def ip_literal(host: str) -> bool:
    """``Host`` is an IP address (a page cannot rebind an address, only a name it owns)."""
    try:
        ipaddress.ip_address(host_name(host))
    except ValueError:
        return False
    return True


def loopback_host(host: str) -> bool:
    """``Host`` names this machine's loopback: ``localhost`` or a loopback address (not a DNS name
    that merely starts with ``127.``)."""
    name = host_name(host).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def cross_site(headers: Mapping[str, str], own_origin: str) -> bool:
    """A request a browser sent for a page of another origin than ``own_origin`` (``http://127.0.0.1:9324``):
    ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site``, or ``Origin`` names another origin (``null`` too),
    or, from a browser that sends neither (older Safari and Firefox with an image or a link), ``Referer`` is a
    page of another origin. A request without any of them is not a browser's (``Sec-Fetch-Site: none`` is an
    address typed by the user)."""
    if headers.get("Sec-Fetch-Site", "").strip().lower() in FOREIGN_FETCH_SITES:
        return True
    origin = headers.get("Origin")
    if origin is None:
        referer = headers.get("Referer")
        if referer is None:
            return False
        scheme, _, rest = referer.strip().partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].split('#', 1)[0]}" if rest else "null"
    return origin.strip().lower() != own_origin.lower()
