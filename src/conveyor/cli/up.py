"""``conveyor up`` and ``conveyor init``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from conveyor.cli.common import allow_host_option, fail, run_async, tls_cert_option, tls_key_option
from conveyor.config import DEFAULT_CONSOLE_PORT, DEFAULT_SERVER_PORT, parse_allow_hosts
from conveyor.config.secrets import without_url_secrets
from conveyor.config.values import Setting
from conveyor.console.auth import TOKEN_ENV, address, choose_token
from conveyor.env.examples import write_example
from conveyor.env.project import load_project, with_queue_url
from conveyor.env.run import run_environment
from conveyor.env.running import Running, UpOptions
from conveyor.env.serving import console_urls
from conveyor.errors import ConveyorError

#: ``conveyor up --help`` ends with the project file's keys (docs/up.md has the whole story).
PROJECT_FILE_HELP = """\b
DIRECTORY/conveyor.yaml (every key optional but the worker command; EB's Procfile,
.ebextensions/*.config and env.yaml are read too, conveyor.yaml wins):
  name: images                        environment and queue name (default: the folder's)
  worker: {command: python worker.py} started once per instance, with its own PORT
  web: {command: python web.py, port: 8000}   a web tier that reaches the queue with any AWS SDK
  instances: {min: 1, max: 4, cooldown: 360, max_per_host: 4}
  scaling: {target_backlog_per_instance: 20, max_age_s: 300, interval_s: 10, ...}
  health: {restart_window_s: 300, ...} thresholds of the health rules
  sqsd: {HttpPath: /work, HttpConnections: 10, ...}   EB's sqsd options, same names
  queue: {MessageRetentionPeriod: 86400, ...}         SQS attributes of the worker queue
  queue: {fifo: true, content_based_deduplication: true}   a FIFO worker queue, <name>.fifo
  queue: {database_url: postgresql://...}   the queue in PostgreSQL; every host that runs
                                      the project on it joins one environment
  queue: {url: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME}   the worker queue on
                                      Amazon SQS (or any SQS endpoint)
  environment: {GREETING: hello}      variables for the worker and web processes
  link: WORKERQUEUE                   variable that holds the queue URL
  metrics: {retention_days: 14}       history kept this long
A periodic-task file, cron.yaml, is EB's. The whole reference: docs/up.md.
"""


@click.command(epilog=PROJECT_FILE_HELP)
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: DIRECTORY/.conveyor")
@click.option("--port", default=DEFAULT_SERVER_PORT, show_default=True, envvar="CONVEYOR_PORT", help="SQS API port.")
@click.option("--control-port", default=0, show_default=True, help="Control API port (0: any free port).")
@click.option(
    "--console-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_CONSOLE_PORT,
    show_default=True,
    envvar="CONVEYOR_CONSOLE_PORT",
    help="Web console port (0: any free port).",
)
@click.option(
    "--console-host",
    default="127.0.0.1",
    show_default=True,
    envvar="CONVEYOR_CONSOLE_HOST",
    help=f"Web console address; any other than loopback requires a token (${TOKEN_ENV}, or one is generated).",
)
@click.option("--no-console", is_flag=True, help="Run without the web console.")
@click.option(
    "--database-url",
    envvar="CONVEYOR_DATABASE_URL",
    show_envvar=True,
    metavar="URL",
    help="Keep the queue in this PostgreSQL database (postgresql://USER@HOST:PORT/DBNAME; libpq's PG* variables and "
    "~/.pgpass fill in the rest) instead of the sqlite file in the data dir.",
)
@click.option(
    "--queue-url",
    envvar="CONVEYOR_QUEUE_URL",
    show_envvar=True,
    metavar="URL",
    help="The worker queue is this SQS queue (Amazon SQS with the standard AWS credential chain, or any SQS "
    "endpoint), created with its DLQ if missing; wins over conveyor.yaml's queue: {url: ...}.",
)
@click.option(
    "--host-name",
    envvar="CONVEYOR_HOST_NAME",
    metavar="NAME",
    help="This host's name in an environment that spans several hosts (with --database-url). "
    "Default: the machine's hostname.",
)
@click.option(
    "--max-instances-per-host",
    type=click.IntRange(1, 100),
    metavar="N",
    help="Instances this host runs at most when the environment spans several hosts "
    "(default: conveyor.yaml's instances max_per_host, else instances max).",
)
@allow_host_option
@tls_cert_option("the queue API, the console and the control API (the certificate must cover 127.0.0.1)")
@tls_key_option
@click.option(
    "--tls-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CONVEYOR_TLS_CA",
    show_envvar=True,
    metavar="PEM",
    help="The CA that issued --tls-cert: the worker and web processes get it as AWS_CA_BUNDLE, so their SDKs "
    "verify the queue (omit it for a certificate the SDKs already trust).",
)
def up(
    directory: Path,
    data_dir: Path | None,
    port: int,
    control_port: int,
    console_port: int,
    console_host: str,
    no_console: bool,
    database_url: str | None,
    queue_url: str | None,
    host_name: str | None,
    max_instances_per_host: int | None,
    allow_hosts: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
) -> None:
    """Run the worker environment of the project in DIRECTORY: queue, workers, autoscaler, health, console."""
    token = choose_token(console_host, os.environ.get(TOKEN_ENV))
    try:
        project = load_project(directory)
        if queue_url:
            project = with_queue_url(project, Setting(queue_url, "--queue-url (or CONVEYOR_QUEUE_URL)"))
        options = UpOptions(
            data_dir=data_dir or directory / ".conveyor",
            queue_port=port,
            control_port=control_port,
            console_host=console_host,
            console_port=None if no_console else console_port,
            console_token=token,
            allow_hosts=parse_allow_hosts(allow_hosts),
            database_url=database_url or (str(project.database_url.value) if project.database_url else None),
            host_name=host_name or None,
            max_per_host=max_instances_per_host,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
        )
        status = run_async(run_environment(project, options, _announce, _waiting))
    except ConveyorError as error:
        fail(error.message)
    sys.exit(status)


def _waiting(env: Running) -> None:
    states = []
    for view in env.supervisor.views():
        exited = f", exited with code {view.exit_code}" if view.exit_code is not None else ""
        states.append(f"{view.name} {view.state}{exited}{f' ({view.exit_cause})' if view.exit_cause else ''}")
    click.echo(
        f"environment {env.project.name} started, but no worker instance is ready yet ({'; '.join(states)}). "
        "It is announced when one accepts connections; meanwhile: conveyor health, conveyor logs."
    )


def _announce(env: Running) -> None:
    at = env.addresses
    lines = [
        f"environment {env.project.name} is up",
        f"  queue      {at.queue_url}   (DLQ {env.dlq_name}; {_kept(env)})",
        f"  instances  {env.supervisor.active} "
        f"(min {env.project.min_instances.value}, max {env.project.max_instances.value})",
        f"  control    {at.control_url}",
    ]
    if at.console_url:
        lines.append(f"  console    {address(at.console_url, env.options.console_token)}")
        host = env.options.console_host
        urls = console_urls(host, _port(at.console_url), urlsplit(at.console_url).scheme)
        others = [address(url, env.options.console_token) for url in urls[1:]]
        if others:  # a wildcard --console-host: the addresses other machines may use
            lines.append(f"             on every interface (--console-host {host}): also {', '.join(others)}")
    if at.web_url:
        lines.append(f"  web        {at.web_url}")
    lines.append("  a web tier elsewhere reaches the queue with:")
    lines += [f"    export {k}={v}" for k, v in env.sdk_environment.items()]
    send = "conveyor send " + _send_flags(env) + '\'{"hello": "world"}\''
    lines.append(f"  enqueue:   {send}     status: conveyor status     stop: Ctrl-C")
    click.echo("\n".join(lines))


def _send_flags(env: Running) -> str:
    """What ``conveyor send`` needs for the worker queue: on a FIFO queue a group (and a deduplication id unless the
    queue deduplicates by content)."""
    if not env.project.fifo:
        return ""
    if env.project.queue_settings.get("ContentBasedDeduplication") == "true":
        return "--group demo "
    return "--group demo --dedup-id hello-1 "


def _kept(env: Running) -> str:
    options = env.options
    database = f"PostgreSQL: {without_url_secrets(options.database_url)}" if options.database_url else ""
    if env.external is not None:  # the history, leases and hosts stay in the store
        return env.external.describe() + (f"; hosts coordinate in {database}" if database else "")
    return f"in {database}" if database else f"in {options.data_dir}"


def _port(url: str) -> int:
    return urlsplit(url).port or 80


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write a working example project into DIRECTORY (conveyor.yaml, a worker app, a sender script)."""
    try:
        written = write_example(directory)
    except ConveyorError as error:
        fail(error.message)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: conveyor up {directory}")
