"""Shared by the commands: exit codes, errors, running a coroutine, calling a running environment."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson

from conveyor.api.tls import pinned_context
from conveyor.env import registry
from conveyor.errors import ConveyorError

#: Exit codes: 0 done; 1 the environment answered with a problem (unhealthy, a refused request);
#: 2 a usage or configuration mistake; 3 no running environment to talk to; 4 several are running and
#: none was named (``--env NAME`` picks one).
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_NO_ENVIRONMENT = 3
EXIT_SEVERAL_ENVIRONMENTS = 4


#: ``--allow-host`` of ``conveyor server`` and ``conveyor up`` (``config.parse_allow_hosts`` reads its values).
allow_host_option = click.option(
    "--allow-host",
    "allow_hosts",
    metavar="NAME",
    multiple=True,
    envvar="CONVEYOR_ALLOW_HOSTS",
    show_envvar=True,
    help="A host name clients use for the SQS port besides loopback and --host (Docker, a proxy); repeatable, "
    "or comma-separated in the variable. Other names are refused (DNS rebinding); '*' answers any name.",
)


F = TypeVar("F", bound=Callable[..., Any])


def tls_cert_option(serves: str) -> Callable[[F], F]:
    """``--tls-cert`` of a command that serves ``serves`` (``conveyor server``, ``conveyor up``)."""
    return click.option(
        "--tls-cert",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="CONVEYOR_TLS_CERT",
        show_envvar=True,
        metavar="PEM",
        help=f"Serve {serves} over HTTPS only, with this certificate (PEM; intermediates after it). Needs --tls-key.",
    )


#: ``--tls-key`` of ``conveyor server`` and ``conveyor up``.
tls_key_option = click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CONVEYOR_TLS_KEY",
    show_envvar=True,
    metavar="PEM",
    help="The certificate's private key (PEM, not encrypted; keep it chmod 600).",
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Refused(Exception):
    """The environment refused a request (``call`` with ``refused_ok``): its HTTP status and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def fail(self) -> NoReturn:
        fail(self.message, EXIT_PROBLEM)


def run_async(main: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(main)
    except ImportError:
        return asyncio.run(main)


def environment(name: str | None) -> registry.Entry:
    try:
        return registry.find(name)
    except registry.SeveralEnvironments as error:
        fail(error.message, EXIT_SEVERAL_ENVIRONMENTS)
    except ConveyorError as error:
        fail(error.message, EXIT_NO_ENVIRONMENT)


def call(
    entry: registry.Entry,
    method: str,
    path: str,
    body: object | None = None,
    *,
    timeout_s: float = 30.0,
    gone_ok: bool = False,
    refused_ok: bool = False,
) -> Any:
    """One request to the environment's control API; JSON in, JSON out.

    ``gone_ok``: answer ``None`` instead of failing when the environment has stopped (a follower's end);
    ``refused_ok``: raise ``Refused`` instead of failing when it refuses the request."""
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(entry.control_url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=_trust(entry)) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = orjson.loads(error.read()).get("error", str(error))
        except orjson.JSONDecodeError:
            message = str(error)
        if refused_ok:
            raise Refused(error.code, message) from None
        fail(message, EXIT_PROBLEM)
    except TimeoutError:
        fail(f"environment {entry.name} did not answer {method} {path} within {timeout_s:.0f} s", EXIT_PROBLEM)
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, ssl.SSLCertVerificationError):  # not the certificate it recorded: never trusted
            fail(
                f"environment {entry.name} at {entry.control_url} answered with another certificate than the one "
                f"it recorded when it started ({reason.verify_message}); not sending it anything. If it was "
                "restarted, try again.",
                EXIT_PROBLEM,
            )
        if gone_ok:
            return None
        fail(
            f"environment {entry.name} does not answer at {entry.control_url} ({error}); is it still running?",
            EXIT_NO_ENVIRONMENT,
        )


def _trust(entry: registry.Entry) -> ssl.SSLContext | None:
    """Over HTTPS, the control API is trusted by the certificate its ``up`` recorded in the registry (owner-only),
    and by nothing else."""
    if not entry.control_url.startswith("https://"):
        return None
    return pinned_context(entry.control_cert) if entry.control_cert else ssl.create_default_context()


@contextlib.contextmanager
def following() -> Iterator[None]:
    """Around a loop that follows (``-f``, ``--refresh``): Ctrl-C ends it quietly, with exit status 0."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("", err=True)
        sys.exit(0)


def emit(data: Any, as_json: bool, human: str) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() if as_json else human)
