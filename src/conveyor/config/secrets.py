"""Secrets in what the configuration views show (``conveyor config``, the console, ``--print-config``)."""

from __future__ import annotations

import re

#: Names whose whole value is a secret or carries one (a webhook's address is its key).
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|DSN|WEBHOOK|SIGNING",
    re.IGNORECASE,
)
#: Names that say the value is an address: where it points is shown, what it carries is not.
ADDRESS_NAME = re.compile(r"URL|URI|ENDPOINT|CONNECTION", re.IGNORECASE)
MASK = "***"
#: ``scheme://user:password@``: the password runs to the last ``@`` of the URL, since a password may hold an
#: unencoded ``@`` or ``/`` (more is hidden rather than less).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>\S*)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&][^=&#\s]*(?:token|key|secret|sig|password|auth|code)[^=&#\s]*=)[^&#\s]*", re.IGNORECASE
)
#: libpq's keyword form: ``host=db password=s3cret`` (a quoted value may hold spaces).
_CONNINFO_PASSWORD = re.compile(r"(?P<key>(?:^|\s)password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL = re.compile(r"^(?P<origin>[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*)(?P<rest>[/?#].*)?$", re.DOTALL)


def shown_value(name: str, value: str) -> str:
    """``value`` as the configuration views (``conveyor config``, the console, ``--print-config``) show it.

    A variable named as a secret (``*_PASSWORD``, ``*_TOKEN``, ``SENTRY_DSN``, ``SLACK_WEBHOOK``, ...) is
    ``***``; one named as an address (``*_URL``, ``*_URI``, ``*_ENDPOINT``) keeps its scheme, host and port and
    hides its path and query, where tokens travel (``https://hooks.example.com/***``); and wherever a URL appears,
    its password (``postgres://admin:***@db:5432/app``) and query values named like keys (``?token=***``) are
    hidden. Empty stays empty."""
    if not value:
        return value
    if SECRET_NAME.search(name):
        return MASK
    value = without_url_secrets(value)
    if ADDRESS_NAME.search(name) and (url := _URL.match(value)) is not None and (url["rest"] or "/") != "/":
        return f"{url['origin']}/{MASK}"
    return value


def without_url_secrets(value: str) -> str:
    """``value`` with the password of every URL in it, query values named like keys, and a libpq keyword
    ``password=...``, shown as ``***``."""
    value = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)
    value = _CONNINFO_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", value)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", value)
