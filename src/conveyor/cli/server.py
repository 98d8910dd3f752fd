"""``conveyor server``: run the SQS-compatible queue service."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from conveyor.api.server import Server, serve
from conveyor.config import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DEFAULT_SERVER_PORT, ServerConfig
from conveyor.errors import ConveyorError
from conveyor.log import configure

RECIPE = """\
conveyor server is listening on {url} (store: {store}, data: {data_dir})

Try it with the AWS CLI (any credentials work; `make` installed the CLI in .venv/bin):

  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION={region}
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
    default="sqlite",
    show_default=True,
    type=click.Choice(["sqlite", "memory"]),
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
@click.option("--demo", is_flag=True, hidden=True, help="Print an AWS CLI recipe when ready.")
def server(
    host: str, port: int, data_dir: Path, store: str, region: str, account_id: str, log_level: str, demo: bool
) -> None:
    """Run the SQS-compatible queue service (AWS JSON and Query protocols).

    Every option can also be set as an environment variable, e.g. CONVEYOR_PORT=9400.
    """
    configure(log_level)
    config = ServerConfig(host, port, data_dir, store, region, account_id)

    def ready(running: Server) -> None:
        url = f"http://{host}:{running.port}" if ":" not in host else f"http://[{host}]:{running.port}"
        if demo:
            click.echo(RECIPE.format(url=url, store=store, data_dir=data_dir, region=region, account=account_id))
        else:
            click.echo(f"conveyor server listening on {url} (store: {store}, data: {data_dir})")

    try:
        from conveyor.metrics.prometheus import render

        _run(serve(config, ready, metrics=render))
    except ConveyorError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(2)


def _run(main: object) -> None:
    try:
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
