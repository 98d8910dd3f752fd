"""The addresses conveyor prints for a port it listens on: ones a person can open.

Bound to a wildcard (``0.0.0.0``, ``::``), a server listens on every interface, but ``http://0.0.0.0:9324`` is
no address to open (a browser on another machine cannot, and on some systems not even this one). So a wildcard
prints the loopback address first (for this machine), then the machine's other addresses: the one of its
default route, then every other IPv4 interface's (on Linux).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

from conveyor.web_guard import is_wildcard

#: Documentation addresses (RFC 5737, RFC 3849): connecting a UDP socket to them sends nothing, but picks the
#: source address of the default route.
_PROBES = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}
#: Linux's ioctl for an interface's IPv4 address.
_SIOCGIFADDR = 0x8915


def http_url(host: str, port: int, path: str = "", scheme: str = "http") -> str:
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}{path}"


def reachable_urls(host: str, port: int, path: str = "", scheme: str = "http") -> list[str]:
    """The URLs to print for a server on ``host:port``, the one to use on this machine first: ``host`` itself,
    or for a wildcard, loopback and then the machine's other addresses (``scheme``: https for a TLS port)."""
    if not is_wildcard(host):
        return [http_url(host, port, path, scheme)]
    ipv6 = ipaddress.ip_address(host).version == 6
    hosts = ["::1" if ipv6 else "127.0.0.1"]
    if not ipv6 or _dual_stack():
        hosts += _ipv4_addresses()
    if ipv6:
        hosts += _route_address(socket.AF_INET6)
    return [http_url(h, port, path, scheme) for h in dict.fromkeys(hosts)]


def _ipv4_addresses() -> list[str]:
    return _route_address(socket.AF_INET) + _interface_addresses()


def _route_address(family: socket.AddressFamily) -> list[str]:
    """The source address of the default route, if there is one."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((_PROBES[family], 9))
            address = str(probe.getsockname()[0])
    except OSError:
        return []
    return [address] if _remote(address) else []


def _interface_addresses() -> list[str]:
    """Every interface's IPv4 address (Linux; none elsewhere)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    found = []
    try:
        names = [name for _, name in socket.if_nameindex()]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for name in names:
                try:
                    answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue  # no IPv4 address
                found.append(socket.inet_ntoa(answer[20:24]))
    except OSError:
        return []
    return [a for a in found if _remote(a)]


def _remote(address: str) -> bool:
    """An address another machine may reach this one at."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def _dual_stack() -> bool:
    """Whether an IPv6 wildcard socket takes IPv4 too (Linux's default; ``bind`` leaves the option as it is)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            return probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    except OSError:
        return False
