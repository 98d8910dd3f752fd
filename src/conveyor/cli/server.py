"""``conveyor server``: run the SQS-compatible queue service, and keep its queues' one-minute metric series.

The server is composed here: the SQS API (``api/server.py``) over a store, ``/metrics`` beside it, and the
metric sampler (``metrics/series.py``) as a companion over the same store, stopped with the server after its
last request (a last sample) and before the store closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conveyor.api.access import Access
from conveyor.api.addresses import reachable_urls
from conveyor.api.connections import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    MAX_DEFAULT_CONNECTIONS,
    ConnectionLimits,
    default_max_connections,
)
from conveyor.api.credentials import Keyring
from conveyor.api.server import CompanionFactory, Server, serve, server_tls
from conveyor.cli.common import allow_host_option, run_async, tls_cert_option, tls_key_option
from conveyor.clock import Clock, SystemClock
from conveyor.config import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DEFAULT_SERVER_PORT, ServerConfig, parse_allow_hosts
from conveyor.config.secrets import without_url_secrets
from conveyor.config.server import STORES
from conveyor.console.auth import TOKEN_ENV
from conveyor.core.history import DEFAULT_HISTORY_RETENTION_S
from conveyor.cron.in_server import CronSetup
from conveyor.env.server_console import Console
from conveyor.errors import ConfigError, ConveyorError
from conveyor.log import configure
from conveyor.store.duty import Duty, process_holder
from conveyor.store.protocol import Store

#: The lease of the server that samples the queues' metric series and prunes the history.
METRICS_DUTY = "conveyor-server-metrics"
#: The same bounds as ``metrics: {retention_days: N}`` under ``conveyor up``.
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 365
DAY_S = 86400

RECIPE = """\
conveyor server is listening on {url} ({kept}){also}

Try it with the AWS CLI (any credentials work; `make` installed the CLI in .venv/bin):

  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION={region}{trust}
  aws --endpoint-url {url} sqs create-queue --queue-name demo
  aws --endpoint-url {url} sqs send-message --queue-url {url}/{account}/demo --message-body 'hello'
  aws --endpoint-url {url} sqs receive-message --queue-url {url}/{account}/demo --wait-time-seconds 5

Or point any AWS SDK at it: endpoint_url={url}, or AWS_ENDPOINT_URL_SQS={url}.
Press Ctrl-C to stop.
"""


@click.command()
@click.option(
    "--host",
    envvar="CONVEYOR_HOST",
    show_envvar=True,
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    envvar="CONVEYOR_PORT",
    show_envvar=True,
    default=DEFAULT_SERVER_PORT,
    show_default=True,
    type=int,
    help="Port (0: any free port).",
)
@click.option(
    "--data-dir",
    envvar="CONVEYOR_DATA_DIR",
    show_envvar=True,
    default=".conveyor",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the durable store.",
)
@click.option(
    "--store",
    envvar="CONVEYOR_STORE",
    show_envvar=True,
    type=click.Choice(STORES),
    help="Where the queues live: sqlite (default: durable, one host, in --data-dir), postgres (several servers on "
    "one database; implied by --database-url) or memory (nothing kept).",
)
@click.option(
    "--database-url",
    envvar="CONVEYOR_DATABASE_URL",
    show_envvar=True,
    metavar="URL",
    help="The postgres store's database: postgresql://USER@HOST:PORT/DBNAME (or libpq's key=value form). libpq's "
    "PG* variables and ~/.pgpass fill in what it leaves out; put the password there, not on the command line.",
)
@click.option(
    "--region",
    envvar="CONVEYOR_REGION",
    show_envvar=True,
    default=DEFAULT_REGION,
    show_default=True,
    help="Region used in queue ARNs.",
)
@click.option(
    "--account-id",
    envvar="CONVEYOR_ACCOUNT_ID",
    show_envvar=True,
    default=DEFAULT_ACCOUNT_ID,
    show_default=True,
    help="Account id in queue URLs and ARNs.",
)
@click.option(
    "--log-level",
    envvar="CONVEYOR_LOG_LEVEL",
    show_envvar=True,
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--history-retention-days",
    "retention_days",
    metavar="DAYS",
    envvar="CONVEYOR_HISTORY_RETENTION_DAYS",
    show_envvar=True,
    default=str(DEFAULT_HISTORY_RETENTION_S // DAY_S),
    show_default=True,
    help=f"Days of the queues' one-minute metric series kept in the store ({MIN_RETENTION_DAYS} to "
    f"{MAX_RETENTION_DAYS}); older points are pruned once a minute.",
)
@allow_host_option
@click.option(
    "--max-connections",
    envvar="CONVEYOR_MAX_CONNECTIONS",
    show_envvar=True,
    type=click.IntRange(min=1),
    help="Open connections at most; more are closed at once, with a warning (default: a quarter of the "
    f"open-file limit, at most {MAX_DEFAULT_CONNECTIONS}). Requests must arrive within "
    f"{DEFAULT_READ_TIMEOUT_S:g} s; idle connections close after {DEFAULT_IDLE_TIMEOUT_S:g} s.",
)
@click.option(
    "--health-path",
    envvar="CONVEYOR_HEALTH_PATH",
    show_envvar=True,
    default="/health",
    show_default=True,
    help="GET here answers 200 while the store serves and 503 with the cause when it does not (probes, load "
    "balancers); '' for none.",
)
@click.option(
    "--cron-yaml",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CONVEYOR_CRON_YAML",
    show_envvar=True,
    help="Run this cron.yaml's periodic tasks here, enqueued to --cron-queue; one server leads by a lease in the "
    "store (the daemons then run with --cron-table off).",
)
@click.option(
    "--cron-queue",
    metavar="NAME",
    envvar="CONVEYOR_CRON_QUEUE",
    show_envvar=True,
    help="The queue --cron-yaml's tasks are sent to (the worker queue).",
)
@click.option(
    "--console-port",
    type=click.IntRange(0, 65535),
    envvar="CONVEYOR_CONSOLE_PORT",
    show_envvar=True,
    help="Serve the web console on this port (0: any free port): --console-queue and its DLQ, every queue, "
    "messages, cron. Off by default.",
)
@click.option(
    "--console-host",
    default="127.0.0.1",
    show_default=True,
    envvar="CONVEYOR_CONSOLE_HOST",
    show_envvar=True,
    help=f"The console's address; any other than loopback requires a token (${TOKEN_ENV}, or one is generated).",
)
@click.option(
    "--console-queue",
    metavar="NAME",
    envvar="CONVEYOR_CONSOLE_QUEUE",
    show_envvar=True,
    help="The worker queue the console's overview and DLQ pages show (default: --cron-queue).",
)
@tls_cert_option("the SQS API (and the console)")
@tls_key_option
@click.option(
    "--credentials",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CONVEYOR_CREDENTIALS",
    show_envvar=True,
    metavar="FILE",
    help="Answer only requests signed (SigV4) with a key of this file, and allowed by its principal's policy "
    "(docs/security.md); chmod 600. SIGHUP reads it again.",
)
@click.option("--demo", is_flag=True, hidden=True, help="Print an AWS CLI recipe when ready.")
def server(
    host: str,
    port: int,
    data_dir: Path,
    store: str | None,
    database_url: str | None,
    region: str,
    account_id: str,
    log_level: str,
    retention_days: str,
    allow_hosts: tuple[str, ...],
    max_connections: int | None,
    health_path: str,
    cron_yaml: Path | None,
    cron_queue: str | None,
    console_port: int | None,
    console_host: str,
    console_queue: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    credentials: Path | None,
    demo: bool,
) -> None:
    """Run the SQS-compatible queue service (AWS JSON and Query protocols).

    Prometheus metrics are served at /metrics on the same port, /health says whether the server can serve, and
    every queue's one-minute metric series (visible, in flight, delayed, oldest age, sent, received, deleted) are
    kept in the store for --history-retention-days.

    Every option can also be set as an environment variable, e.g. CONVEYOR_PORT=9400.
    """
    configure(log_level)
    store = store or ("postgres" if database_url else "sqlite")
    config = ServerConfig(
        host,
        port,
        data_dir,
        store,
        region,
        account_id,
        parse_allow_hosts(allow_hosts),
        database_url or None,
        health_path=health_path,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )

    hint = "raise it with --max-connections (CONVEYOR_MAX_CONNECTIONS)"
    limits = ConnectionLimits(max_connections or default_max_connections(), raise_hint=hint)

    console: Console | None = None

    def ready(running: Server) -> None:
        # For a wildcard host, loopback and the machine's others.
        url, *others = reachable_urls(host, running.port, scheme=config.scheme)
        kept = {
            "sqlite": f"store: sqlite, data: {data_dir}",
            "postgres": f"store: postgres, database: {without_url_secrets(database_url or '')}",
        }.get(store, f"store: {store}, nothing kept on disk")
        also = f"\n  on every interface (--host {host}): also {', '.join(others)}" if others else ""
        if demo:
            # Over HTTPS the SDKs and the AWS CLI verify the certificate: AWS_CA_BUNDLE names the CA that issued it.
            trust = "\n  export AWS_CA_BUNDLE=CA.pem   # the CA that issued --tls-cert" if tls_cert else ""
            click.echo(RECIPE.format(url=url, kept=kept, also=also, region=region, account=account_id, trust=trust))
        else:
            click.echo(f"conveyor server listening on {url} ({kept}){also}")
        if console is not None:
            click.echo(f"  console  {console.address}")

    try:
        from conveyor.metrics.prometheus import render

        companions: list[CompanionFactory] = [queue_history(parse_retention_days(retention_days) * DAY_S)]
        cron = server_cron(cron_yaml, cron_queue)
        if cron is not None:
            companions.append(cron.companion)
        tls = server_tls(config.validate())  # read once: the API's port and the console's serve it
        if console_port is not None:
            console = Console.open(config, console_host, console_port, console_queue or cron_queue, cron, tls)
            companions.append(console.companion)
        access = Access(Keyring(credentials), SystemClock()) if credentials is not None else None
        status = int(
            run_async(
                serve(config, ready, metrics=render, companions=companions, limits=limits, tls=tls, access=access)
            )
        )
    except ConveyorError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(2)
    sys.exit(status)


def parse_retention_days(text: str) -> int:
    """``--history-retention-days``: a whole number of days within the bounds, or a ConfigError that says so."""
    try:
        days = int(text.strip())
    except ValueError:
        days = None
    if days is None or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise ConfigError(
            f"--history-retention-days {text!r} is invalid: use a whole number of days from {MIN_RETENTION_DAYS} "
            f"to {MAX_RETENTION_DAYS} (also CONVEYOR_HISTORY_RETENTION_DAYS)."
        )
    return days


def server_cron(path: Path | None, queue: str | None) -> CronSetup | None:
    """``--cron-yaml``/``--cron-queue``: the scheduler of that file's tasks beside the API (None without them)."""
    if path is None and queue is None:
        return None
    if path is None or queue is None:
        given, missing = ("--cron-yaml", "--cron-queue NAME") if queue is None else ("--cron-queue", "--cron-yaml PATH")
        raise ConfigError(f"{given} needs {missing} too: the file of periodic tasks and the queue they are sent to.")
    if not path.is_file():
        raise ConfigError(f"--cron-yaml {path}: there is no such file; give the path of a cron.yaml.")
    from conveyor.cron.cronfile import load_cron_yaml

    return CronSetup(load_cron_yaml(path), queue, SystemClock())


def queue_history(retention_s: float, clock: Clock | None = None, tick_s: float | None = None) -> CompanionFactory:
    """The metric sampler over the server's store: the queues' series (a server has no worker instances)."""
    from conveyor.metrics.series import TICK_S, Sampler, SamplerTask

    def start(store: Store, _: str) -> SamplerTask:
        # Servers sharing one database sample it by turns (``store/duty.py``), so each minute is written once.
        sampler = Sampler(
            store,
            clock or SystemClock(),
            retention_s=retention_s,
            tick_s=TICK_S if tick_s is None else tick_s,
            duty=Duty(store, METRICS_DUTY, process_holder()),
        )
        return SamplerTask(sampler)

    return start
