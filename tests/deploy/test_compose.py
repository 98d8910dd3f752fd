"""deploy/compose: the Compose file for local EB-worker development, checked so it cannot rot.

No container engine runs here, so the file is checked in two ways. Statically: its structure (what ``docker compose``
would refuse or silently get wrong: a ``depends_on`` on a service without a health check, a port published beyond
loopback, an undeclared volume), every command and ``CONVEYOR_*`` variable of a service running the conveyor image
parsed by the real CLI, and what the services must agree on (the queue URL sqsd reads names the ``queue`` service and
its port, the health checks ask the ports and paths the commands open, sqsd's grace period outlasts its drain). Then
for real: the processes the file describes, started on loopback with ephemeral ports, carry a message from the web
tier to the worker app, and the health checks' own commands pass against them.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import sys
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import click
import pytest
import yaml

from conveyor.cli.server import parse_retention_days, server_cron
from conveyor.config import parse_allow_hosts
from conveyor.errors import ConveyorError
from conveyor.sqsd.options import BY_NAME, OPTIONS, SqsdConfig, resolve
from tests.deploy.cli_check import parse_command
from tests.processes import Processes, child_env, conveyor, free_port, run, start_server
from tests.support import get_json, wait_until

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
#: The image repository whose services run ``conveyor``: its entry point, so ``command`` is ``SUB ARGS``.
CONVEYOR_IMAGE = "conveyor"
LOOPBACK = ("127.0.0.1", "localhost")
#: Variables sqsd reads besides its CONVEYOR_SQSD_* ones: the names EB's guides use.
EB_VARIABLES = {alias for option in OPTIONS for alias in option.aliases}

Compose = dict[str, Any]
Service = dict[str, Any]


def load(path: Path = COMPOSE_FILE) -> Compose:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def services(compose: Compose) -> dict[str, Service]:
    found = compose.get("services")
    return found if isinstance(found, dict) else {}


def runs_conveyor(service: Service) -> bool:
    image = str(service.get("image", ""))
    return image.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == CONVEYOR_IMAGE


def subcommand(service: Service) -> str | None:
    command = service.get("command")
    return str(command[0]) if runs_conveyor(service) and isinstance(command, list) and command else None


def of_subcommand(compose: Compose, name: str) -> dict[str, Service]:
    return {key: service for key, service in services(compose).items() if subcommand(service) == name}


def environment(service: Service) -> dict[str, Any]:
    """The service's variables (map or list syntax), values as the YAML gives them."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(entry.split("=", 1) if "=" in entry else (entry, "") for entry in env)
    return dict(env)


def bind_mounts(service: Service) -> dict[str, tuple[Path, bool]]:
    """Container path -> (host path, read-only) of the service's bind mounts (short syntax, relative to the file)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        source, target, *mode = str(volume).split(":")
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_DIR / source, "ro" in mode)
    return mounts


def named_volumes(service: Service) -> dict[str, str]:
    """Volume name -> container path of the service's named volumes."""
    named = {}
    for volume in service.get("volumes") or []:
        source, target, *_ = str(volume).split(":")
        if not source.startswith((".", "/")):
            named[source] = target
    return named


def on_host(service: Service, args: list[str]) -> list[str]:
    """``args`` with each path the service mounts from this folder replaced by the file it mounts."""
    mounts = bind_mounts(service)
    return [str(mounts[arg][0]) if arg in mounts else arg for arg in args]


def parse(service: Service) -> tuple[click.Command, dict[str, Any]]:
    """The service's conveyor command parsed by the real CLI, in the service's environment."""
    args = on_host(service, [str(arg) for arg in service["command"]])
    return parse_command(args, {k: str(v) for k, v in environment(service).items()})


def option_value(command: click.Command, params: Mapping[str, Any], flag: str, default: Any = None) -> Any:
    """The parsed value of ``flag`` (a flag the command may not have: then ``default``)."""
    for param in command.params:
        if flag in param.opts and param.name is not None:
            return params[param.name]
    return default


def known_variables(command: click.Command) -> set[str]:
    known = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        known |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    return known


def sqsd_config(command: click.Command, service: Service, params: Mapping[str, Any]) -> SqsdConfig:
    """sqsd's effective options, merged as ``conveyor sqsd`` merges them (flags over the environment)."""
    flags = {name: value for name, value in params.items() if name.lower() in BY_NAME}
    env = {k: str(v) for k, v in environment(service).items()}
    return resolve(None, env, flags).config


def health_url(service: Service) -> SplitResult | None:
    test = (service.get("healthcheck") or {}).get("test")
    text = " ".join(map(str, test)) if isinstance(test, list) else str(test or "")
    found = re.search(r"https?://[^\s'\"]+", text)
    return urlsplit(found.group(0)) if found else None


def duration_s(text: object) -> float:
    """A Compose duration ("40s", "1m30s") in seconds; Docker's default stop grace when absent."""
    if text is None:
        return 10.0
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", str(text))
    assert parts and "".join(a + b for a, b in parts) == str(text), f"not a Compose duration: {text!r}"
    return sum(float(value) * units[unit] for value, unit in parts)


def structure_problems(compose: Compose) -> list[str]:
    """What ``docker compose`` would refuse, or run other than meant."""
    problems = []
    declared = set(compose.get("volumes") or {})
    all_services = services(compose)
    if not all_services:
        return ["no services"]
    for name, service in all_services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        build = service.get("build")
        context = build.get("context", ".") if isinstance(build, dict) else build
        dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        if context is not None and not (COMPOSE_DIR / context / dockerfile).is_file():
            problems.append(f"{name}: build: no {dockerfile} in {context}")
        depends = service.get("depends_on") or {}
        for other, how in depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends):
            if other not in all_services:
                problems.append(f"{name}: depends_on {other}: no such service")
            elif (how or {}).get("condition") == "service_healthy" and "healthcheck" not in all_services[other]:
                problems.append(f"{name}: depends_on {other} service_healthy, but {other} has no healthcheck")
        for port in service.get("ports") or []:
            parts = str(port).split(":")  # short syntax: [HOST_IP:]HOST_PORT:CONTAINER_PORT, or a bare port
            host_ip = port.get("host_ip") if isinstance(port, dict) else parts[0] if len(parts) == 3 else None
            if host_ip not in LOOPBACK:
                problems.append(f"{name}: port {port} is published beyond loopback (bind it to 127.0.0.1)")
        for volume in named_volumes(service):
            if volume not in declared:
                problems.append(f"{name}: volume {volume} is not declared under the top-level volumes")
        for target, (source, _) in bind_mounts(service).items():
            if not source.exists():
                problems.append(f"{name}: mounts {source} at {target}, which does not exist")
        network = str(service.get("network_mode", ""))
        if network.startswith("service:"):
            if network.removeprefix("service:") not in all_services:
                problems.append(f"{name}: network_mode {network}: no such service")
            if service.get("ports"):
                problems.append(f"{name}: publishes ports in another service's network namespace")
        if not all(isinstance(v, str) for v in environment(service).values()):
            problems.append(f"{name}: environment values must be quoted strings (YAML reads 8080 or true otherwise)")
    return problems


def cli_problems(name: str, service: Service) -> list[str]:
    """Whether the real CLI accepts the service's command and its conveyor variables."""
    command_line = service.get("command")
    if not isinstance(command_line, list) or not all(isinstance(arg, str) for arg in command_line):
        return [f"{name}: command must be a list of quoted strings (YAML reads off and true otherwise)"]
    try:
        command, params = parse(service)
    except click.ClickException as error:
        return [f"{name}: conveyor {' '.join(command_line)}: {error.format_message()}"]
    known = known_variables(command) | ({o.env for o in OPTIONS} | EB_VARIABLES if command.name == "sqsd" else set())
    problems = [
        f"{name}: {variable} is not a variable of conveyor {command.name}"
        for variable in environment(service)
        if (variable.startswith("CONVEYOR_") or variable in EB_VARIABLES) and variable not in known
    ]
    try:  # what the commands check once parsed
        if command.name == "server":
            parse_allow_hosts(params["allow_hosts"])
            parse_retention_days(params["retention_days"])
            server_cron(params["cron_yaml"], params["cron_queue"])
        elif command.name == "sqsd":
            sqsd_config(command, service, params)
    except ConveyorError as error:
        problems.append(f"{name}: conveyor {' '.join(command_line)}: {error.message}")
    return problems


def meaning_problems(compose: Compose) -> list[str]:
    """What the services must agree on, from the values the CLI parsed."""
    all_services = services(compose)
    servers = of_subcommand(compose, "server")
    if len(servers) != 1:
        return [f"one service runs conveyor server, not {len(servers)}"]
    ((queue_name, queue),) = servers.items()
    command, params = parse(queue)
    port, account = params["port"], params["account_id"]
    problems = []
    if params["host"] in LOOPBACK:
        problems.append(f"{queue_name}: listens on {params['host']}: the other containers cannot reach it")
    if not {queue_name, "*"} & set(parse_allow_hosts(params["allow_hosts"])):
        problems.append(f"{queue_name}: clients call it {queue_name!r}, which is not an allowed host")
    if str(params["data_dir"]) not in named_volumes(queue).values():
        problems.append(f"{queue_name}: the data dir {params['data_dir']} is not a volume: the queues die with it")
    health = health_url(queue)
    health_path = option_value(command, params, "--health-path", "/health")
    if health is None or (health.hostname, health.port, health.path) != ("127.0.0.1", port, health_path):
        problems.append(f"{queue_name}: the healthcheck must GET http://127.0.0.1:{port}{health_path}, not {health}")
    cron_file = option_value(command, params, "--cron-yaml")
    cron_queue = option_value(command, params, "--cron-queue")
    mounted = {str(source): read_only for source, read_only in bind_mounts(queue).values()}
    if cron_file is not None and not mounted.get(str(cron_file)):
        problems.append(f"{queue_name}: --cron-yaml {cron_file} is not a file mounted read-only from this folder")

    daemons = of_subcommand(compose, "sqsd")
    if not daemons:
        problems.append("no service runs conveyor sqsd")
    queue_names = set()
    for name, daemon in daemons.items():
        sqsd, sqsd_params = parse(daemon)
        config = sqsd_config(sqsd, daemon, sqsd_params)
        url = urlsplit(config.worker_queue_url)
        queue_names.add(url.path.rsplit("/", 1)[-1])
        if (url.scheme, url.hostname, url.port) != ("http", queue_name, port):
            problems.append(f"{name}: WorkerQueueURL {config.worker_queue_url} is not the {queue_name} service's")
        if not url.path.startswith(f"/{account}/"):
            problems.append(f"{name}: WorkerQueueURL {config.worker_queue_url}: the account is not {account}")
        if cron_file is not None and config.cron_table != "off":
            problems.append(f"{name}: the server runs cron.yaml; sqsd must run with --cron-table off")
        if "service_healthy" != ((daemon.get("depends_on") or {}).get(queue_name) or {}).get("condition"):
            problems.append(f"{name}: must wait for {queue_name} to be healthy")
        health = health_url(daemon)
        health_port = option_value(sqsd, sqsd_params, "--health-port")
        if health is None or (health.hostname, health.port, health.path) != ("127.0.0.1", health_port, "/health"):
            problems.append(f"{name}: the healthcheck must GET http://127.0.0.1:{health_port}/health, not {health}")
        if duration_s(daemon.get("stop_grace_period")) <= config.drain_timeout_s:
            problems.append(f"{name}: stop_grace_period must be longer than DrainTimeout ({config.drain_timeout_s} s)")
        app_name = str(daemon.get("network_mode", "")).removeprefix("service:")
        app = all_services.get(app_name)
        if app is None:
            problems.append(f"{name}: network_mode must be service:<the worker app> (sqsd POSTs to localhost)")
            continue
        if environment(app).get("PORT") != str(config.port):
            problems.append(f"{name}: POSTs to port {config.port}, the app {app_name} listens on its PORT")
        app_health = health_url(app)
        if app_health is not None and app_health.port != config.port:
            problems.append(
                f"{app_name}: the healthcheck asks port {app_health.port}, the app listens on {config.port}"
            )
    if cron_queue is not None and queue_names and cron_queue not in queue_names:
        problems.append(f"{queue_name}: --cron-queue {cron_queue} is read by no sqsd ({', '.join(queue_names)})")

    for name, service in all_services.items():
        endpoint = environment(service).get("AWS_ENDPOINT_URL_SQS")
        if endpoint is not None:
            url = urlsplit(str(endpoint))
            if (url.hostname, url.port) != (queue_name, port):
                problems.append(f"{name}: AWS_ENDPOINT_URL_SQS {endpoint} is not http://{queue_name}:{port}")
            wanted = environment(service).get("QUEUE_NAME")
            if wanted is not None and wanted not in queue_names:
                problems.append(f"{name}: QUEUE_NAME {wanted} is read by no sqsd")
    return problems


def problems(compose: Compose) -> list[str]:
    found = structure_problems(compose)
    for name, service in services(compose).items():
        if runs_conveyor(service):
            found += cli_problems(name, service)
    return found or meaning_problems(compose)


def test_the_compose_file_has_no_problems() -> None:
    assert problems(load()) == []


def compose_parser() -> Any:
    """compose_spec's strict parser of the Compose Specification (PyPI compose-spec, a dev dependency)."""
    try:
        from compose_spec import PyCompose
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("compose-spec is not installed; under CI the Compose file must be checked (make installs it)")
        pytest.skip("compose-spec is not installed (pip install compose-spec): this check skips outside CI")
    return PyCompose


def test_the_file_follows_the_compose_specification() -> None:
    """Every key and value is one the Compose Specification defines. PyYAML reads the file first: Compose applies
    its ``<<`` merge keys, that parser does not."""
    compose_parser().from_json(json.dumps(load()))


SPEC_BREAKAGES: dict[str, Callable[[Compose], None]] = {
    "a misspelled key": lambda compose: compose["services"]["sqsd"].update(stop_grace_perod="40s"),
    "a duration without a unit": lambda compose: compose["services"]["queue"]["healthcheck"].update(interval="5"),
    "an unknown condition": lambda compose: compose["services"]["web"]["depends_on"]["queue"].update(condition="up"),
    "a port out of range": lambda compose: compose["services"]["web"].update(ports=["127.0.0.1:8000:80000"]),
}


@pytest.mark.parametrize("breakage", list(SPEC_BREAKAGES))
def test_a_file_outside_the_compose_specification_is_caught(breakage: str) -> None:
    parser = compose_parser()
    compose = copy.deepcopy(load())
    SPEC_BREAKAGES[breakage](compose)
    with pytest.raises(ValueError):
        parser.from_json(json.dumps(compose))


def test_the_cron_yaml_it_mounts_is_valid() -> None:
    from conveyor.cron.cronfile import load_cron_yaml

    assert [task.name for task in load_cron_yaml(COMPOSE_DIR / "cron.yaml")] == ["cleanup"]


def test_the_example_images_build_from_python_slim() -> None:
    for app in ("worker", "web"):
        lines = (COMPOSE_DIR / app / "Dockerfile").read_text(encoding="utf-8").splitlines()
        assert "FROM python:3.11-slim" in lines
        assert any(line.startswith("USER ") and line != "USER root" for line in lines)


def _command(service: str, edit: Callable[[list[str]], None]) -> Callable[[Compose], None]:
    return lambda compose: edit(compose["services"][service]["command"])


def _set(service: str, path: str, value: Any) -> Callable[[Compose], None]:
    """Set ``services.SERVICE.<path>`` (dotted; None deletes it)."""

    def edit(compose: Compose) -> None:
        *parents, last = path.split(".")
        node = compose["services"][service]
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            del node[last]
        else:
            node[last] = value

    return edit


def _replace(service: str, old: str, new: str) -> Callable[[Compose], None]:
    def edit(compose: Compose) -> None:
        command = compose["services"][service]["command"]
        command[command.index(old)] = new

    return edit


BREAKAGES: dict[str, tuple[Callable[[Compose], None], str]] = {
    "a made-up server flag": (_command("queue", lambda c: c.append("--made-up-flag")), "No such option"),
    "a made-up sqsd flag": (_command("sqsd", lambda c: c.append("--made-up-flag")), "No such option"),
    "a bad sqsd value": (_replace("sqsd", "true", "perhaps"), "perhaps"),
    "a bad server value": (_replace("queue", "9324", "ninety"), "ninety"),
    "an unknown variable": (_set("queue", "environment.CONVEYOR_ALLOWED_HOSTS", "queue"), "CONVEYOR_ALLOWED_HOSTS"),
    "a bad sqsd variable": (_set("sqsd", "environment.CONVEYOR_SQSD_DRAIN_TIMEOUT", "soon"), "soon"),
    "an unquoted off": (_replace("sqsd", "off", False), "quoted strings"),  # type: ignore[arg-type]
    "an unquoted port": (_set("worker", "environment.PORT", 8080), "quoted strings"),
    "a missing cron.yaml": (_set("queue", "volumes", ["queue-data:/var/lib/conveyor"]), "cron.yaml"),
    "a writable cron.yaml": (
        _set("queue", "volumes", ["queue-data:/var/lib/conveyor", "./cron.yaml:/etc/conveyor/cron.yaml"]),
        "read-only",
    ),
    "a port on every interface": (_set("web", "ports", ["8000:8000"]), "beyond loopback"),
    "a port on 0.0.0.0": (_set("queue", "ports", ["0.0.0.0:9324:9324"]), "beyond loopback"),
    "no image": (_set("web", "build", None), "neither image nor build"),
    "a missing build context": (_set("worker", "build", "./nowhere"), "no Dockerfile"),
    "an undeclared volume": (_set("queue", "volumes", ["data:/var/lib/conveyor"]), "not declared"),
    "no volume for the data": (_set("queue", "volumes", ["./cron.yaml:/etc/conveyor/cron.yaml:ro"]), "not a volume"),
    "depends_on a missing service": (_set("web", "depends_on", {"db": {"condition": "service_started"}}), "no such"),
    "service_healthy without a healthcheck": (_set("worker", "healthcheck", None), "has no healthcheck"),
    "a missing network_mode service": (_set("sqsd", "network_mode", "service:app"), "no such service"),
    "sqsd not beside the app": (_set("sqsd", "network_mode", None), "network_mode"),
    "listening on loopback": (_replace("queue", "0.0.0.0", "127.0.0.1"), "cannot reach"),
    "the service name not allowed": (_set("queue", "environment.CONVEYOR_ALLOW_HOSTS", "conveyor"), "allowed host"),
    "sqsd reading another host": (
        _replace("sqsd", "http://queue:9324/000000000000/work", "http://localhost:9324/000000000000/work"),
        "WorkerQueueURL",
    ),
    "sqsd reading another port": (
        _replace("sqsd", "http://queue:9324/000000000000/work", "http://queue:9325/000000000000/work"),
        "WorkerQueueURL",
    ),
    "sqsd reading another account": (
        _replace("sqsd", "http://queue:9324/000000000000/work", "http://queue:9324/123456789012/work"),
        "account",
    ),
    "the server on another port": (_replace("queue", "9324", "9400"), "WorkerQueueURL"),
    "sqsd running cron too": (_replace("sqsd", "off", "my-table"), "--cron-table off"),
    "cron to a queue nobody reads": (_replace("queue", "work", "jobs"), "read by no sqsd"),
    "the queue healthcheck on another port": (
        _set("queue", "healthcheck.test", ["CMD", "python", "-c", "urlopen('http://127.0.0.1:9325/health')"]),
        "healthcheck",
    ),
    "the queue healthcheck on another path": (
        _set("queue", "healthcheck.test", ["CMD", "python", "-c", "urlopen('http://127.0.0.1:9324/healthz')"]),
        "healthcheck",
    ),
    "the sqsd healthcheck on the server's port": (
        _set("sqsd", "healthcheck.test", ["CMD", "python", "-c", "urlopen('http://127.0.0.1:9324/health')"]),
        "healthcheck",
    ),
    "sqsd without a health port": (_command("sqsd", lambda c: c.__delitem__(slice(-2, None))), "healthcheck"),
    "a grace period under the drain": (_set("sqsd", "stop_grace_period", "30s"), "stop_grace_period"),
    "the default grace period": (_set("sqsd", "stop_grace_period", None), "stop_grace_period"),
    "sqsd POSTing to another port": (_set("sqsd", "environment.PORT", "8090"), "listens on its PORT"),
    "the worker healthcheck on another port": (
        _set("worker", "healthcheck.test", ["CMD", "python", "-c", "urlopen('http://127.0.0.1:8090/')"]),
        "healthcheck asks port",
    ),
    "sqsd not waiting for the queue": (_set("sqsd", "depends_on.queue", None), "healthy"),
    "the web tier on another endpoint": (
        _set("web", "environment.AWS_ENDPOINT_URL_SQS", "http://localhost:9324"),
        "AWS_ENDPOINT_URL_SQS",
    ),
    "the web tier sending to another queue": (_set("web", "environment.QUEUE_NAME", "jobs"), "QUEUE_NAME"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_compose_file_is_caught(breakage: str) -> None:
    """Each check fails on a copy of the file broken in the way it guards against."""
    edit, expected = BREAKAGES[breakage]
    compose = copy.deepcopy(load())
    edit(compose)
    found = problems(compose)
    assert any(expected in problem for problem in found), found


# --- the processes the file describes, run for real on loopback ------------------------------------------------------


def replaced(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with the value after ``flag`` replaced (the flag must be there)."""
    at = args.index(flag) + 1
    return [*args[:at], value, *args[at + 1 :]]


def healthcheck(service: Service, port: int) -> list[str]:
    """The service's healthcheck command run by this interpreter, asking ``port`` on loopback instead."""
    kind, program, *args = service["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    url = health_url(service)
    assert url is not None
    return [sys.executable, *(arg.replace(url.netloc, f"127.0.0.1:{port}") for arg in args)]


def healthy(service: Service, port: int) -> bool:
    return run(healthcheck(service, port), env=child_env(), timeout_s=30).returncode == 0


def post(url: str, body: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read().decode().strip()


def test_the_stack_runs_outside_a_container(processes: Processes, tmp_path: Path) -> None:
    """The file's queue, worker app, sqsd and web tier, each with its own arguments and variables (addresses, ports
    and the data dir made local): a POST to the web tier reaches the worker app, and every healthcheck passes."""
    compose = load()
    queue, worker, sqsd, web = (compose["services"][name] for name in ("queue", "worker", "sqsd", "web"))

    server_args = on_host(queue, queue["command"])[1:]
    server_args = replaced(replaced(server_args, "--host", "127.0.0.1"), "--port", "0")
    server_args = replaced(replaced(server_args, "--console-host", "127.0.0.1"), "--console-port", "0")
    server_env = environment(queue) | {"CONVEYOR_DATA_DIR": str(tmp_path / "data")}
    server = start_server(processes, *server_args, env=child_env(**server_env))
    assert healthy(queue, server.port), server.process.output()
    console = server.process.wait_for(r"console\s+(http://\S+/)").group(1)  # the queue's web console, at once
    assert get_json(console + "health")[1]["status"] in ("Info", "Ok"), server.process.output()

    app_port = free_port()
    app = processes.start(
        "worker", [sys.executable, str(COMPOSE_DIR / "worker" / "app.py")], env=child_env(PORT=str(app_port))
    )
    app.wait_for("listening on")
    assert healthy(worker, app_port), app.output()

    health_port = free_port()
    worker_queue_url = sqsd["command"][sqsd["command"].index("--worker-queue-url") + 1]
    queue_url = urlsplit(worker_queue_url)._replace(netloc=f"127.0.0.1:{server.port}")  # queue:9324 here
    sqsd_args = replaced(sqsd["command"][1:], "--worker-queue-url", queue_url.geturl())
    sqsd_args = replaced(sqsd_args, "--health-port", str(health_port))
    grace_s = duration_s(sqsd["stop_grace_period"])
    daemon = processes.start(
        "sqsd",
        conveyor("sqsd", *sqsd_args),
        env=child_env(**environment(sqsd) | {"PORT": str(app_port)}),
        cwd=tmp_path,
        stop_grace_s=grace_s,
    )
    wait_until(lambda: healthy(sqsd, health_port), 30, daemon.output, interval_s=0.1)

    web_port = free_port()
    aws_free = {k: v for k, v in child_env().items() if not k.startswith("AWS_")}
    web_env = aws_free | environment(web) | {"AWS_ENDPOINT_URL_SQS": server.url, "HOST": "127.0.0.1"}
    web_env |= {"PORT": str(web_port), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    tier = processes.start("web", [sys.executable, str(COMPOSE_DIR / "web" / "app.py")], env=web_env)
    tier.wait_for("listening on")

    body = f"hello from the web tier {uuid.uuid4()}"
    status, message_id = post(f"http://127.0.0.1:{web_port}/", body)
    assert status == 202, (message_id, tier.output())
    app.wait_for(re.escape(f"POST / message {message_id}: {body}"))

    # docker compose stop: SIGTERM, then SIGKILL after stop_grace_period. sqsd drains and exits in time.
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(grace_s) == 0, daemon.output()
    assert not healthy(sqsd, health_port)  # the healthcheck fails when nothing answers
    for process in (app, tier):
        process.signal(signal.SIGTERM)
        assert process.wait(10) == 0, process.output()
