"""The container image's recipe (``Dockerfile``) and what ``docker build`` sends (``.dockerignore``).

No container engine runs here, so the rules are checked on the parsed Dockerfile: two named stages, the final one
on the pinned slim Python 3.11 base with only the build stage's virtualenv, a non-root user created in the image,
the data dir a volume, ``conveyor server`` in exec form as PID 1, a HEALTHCHECK in exec form on ``/health``, port
9324, no ``ADD`` of URLs, no secrets in ``ENV``. Each rule is a function; ``test_each_rule_fails_on_a_broken_copy``
runs it on a deliberately broken copy to show it can fail. Then what the image runs is run for real, outside a
container: ``conveyor server`` in the image's environment (data dir, host and port made the test's own), the
HEALTHCHECK's exact command against it (0 on 200, not 0 otherwise), and SIGTERM stops it with 0.

There is no test that builds the image: ``docker build`` needs a daemon, which neither this machine nor CI runs,
and a test may not skip under CI; the static rules here stand in for it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from conveyor.cli.main import cli
from tests.deploy.cli_check import parse_command
from tests.processes import Processes, child_env, free_port, run

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: The virtualenv the build stage makes and the final stage copies; its bin/ is where ``conveyor`` is found.
VENV = "/opt/conveyor"
USER_ID = "10001"
#: The final stage's base: slim Python 3.11 pinned to a patch release (a Debian release and a digest optional).
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")
#: ENV or ARG names that would put a secret into every layer and `docker inspect`.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY|DATABASE_URL", re.I)
#: How long the server may take to stop after SIGTERM (it finishes open requests, then closes the store).
STOP_TIMEOUT_S = 10.0


# -- a small Dockerfile parser ---------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    value: str  # the rest of the logical line, continuations joined
    line: int  # where it starts

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form value, or None for the shell form."""
        try:
            parsed = json.loads(self.value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None

    def flags(self) -> tuple[dict[str, str], str]:
        """Leading ``--name=value`` flags (COPY --from, HEALTHCHECK --interval) and what follows them."""
        rest = self.value
        found: dict[str, str] = {}
        while match := re.match(r"--([a-z-]+)(?:=(\S*))?\s+", rest):
            found[match.group(1)] = match.group(2) or ""
            rest = rest[match.end() :]
        return found, rest


@dataclass
class Stage:
    base: str  # ARGs resolved
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """Every ENV of the stage, later ones winning (``KEY=VALUE ...`` or the old ``KEY VALUE``)."""
        variables: dict[str, str] = {}
        for instruction in self.all("ENV"):
            words = shlex.split(instruction.value)
            if words and "=" not in words[0]:
                variables[words[0]] = instruction.value.split(None, 1)[1] if len(words) > 1 else ""
                continue
            for word in words:
                key, _, value = word.partition("=")
                variables[key] = value
        return variables


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def instructions(text: str) -> Iterator[Instruction]:
    """The logical instructions: comment lines dropped (inside a continuation too), a trailing backslash joins the
    next line, blank lines ignored."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        logical = " ".join(pending)
        pending = []
        keyword, _, value = logical.partition(" ")
        yield Instruction(keyword.upper(), value.strip(), start)
    assert not pending, "the Dockerfile ends inside a continuation"


def substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), value)


def parse_dockerfile(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            flags, rest = instruction.flags()
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(substitute(words[0], global_args), name))
        elif not stages:
            assert instruction.keyword == "ARG", f"line {instruction.line}: only ARG may come before the first FROM"
            key, _, default = instruction.value.partition("=")
            global_args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


# -- the rules ---------------------------------------------------------------------------------------------------


def check_multi_stage(df: Dockerfile) -> None:
    """Two or more stages, each named; the final one copies only from an earlier stage (no source, no tools)."""
    assert len(df.stages) >= 2, "one stage: the build tools and the source end up in the image"
    assert all(stage.name for stage in df.stages), "every stage is named (FROM ... AS name)"
    earlier = {stage.name for stage in df.stages[:-1]}
    copies = df.final.all("COPY") + df.final.all("ADD")
    assert copies, "the final stage copies the virtualenv from the build stage"
    for instruction in copies:
        source = instruction.flags()[0].get("from")
        assert source in earlier, f"line {instruction.line}: the final stage copies from the context, not a stage"


def check_build_stage_makes_the_virtualenv(df: Dockerfile) -> None:
    """The build stage builds the wheel and installs it into the virtualenv the final stage copies and runs."""
    build = df.stages[0]
    commands = " && ".join(i.value for i in build.all("RUN"))
    assert "python -m build --wheel" in commands, "the build stage builds the wheel"
    assert f"python -m venv {VENV}" in commands, f"the build stage makes the virtualenv {VENV}"
    assert re.search(rf"{VENV}/bin/pip install \S*\.whl", commands), "the wheel is installed into the virtualenv"
    copied = [i.flags()[1].split() for i in df.final.all("COPY")]
    assert [VENV, VENV] in copied, f"the final stage copies {VENV} as it is (its scripts name their interpreter)"
    assert df.final.env().get("PATH", "").startswith(f"{VENV}/bin:"), "conveyor is found on the PATH, in the virtualenv"


def check_base(df: Dockerfile) -> None:
    """The final stage is on python:3.11.N-slim (pinned, not a moving tag); the build stage on the same base, so the
    virtualenv's interpreter exists in the image."""
    assert PINNED_BASE.match(df.final.base), f"final base {df.final.base!r} is not a pinned python:3.11.N-slim"
    assert df.stages[0].base == df.final.base, "the build stage uses another base than the final one"


def user_of(stage: Stage) -> tuple[str, int]:
    instruction = stage.last("USER")
    return instruction.value.split(":")[0], instruction.line


def check_non_root_user(df: Dockerfile) -> None:
    """The final stage switches to the conveyor user (uid 10001, numeric so Kubernetes' runAsNonRoot can verify it)
    before ENTRYPOINT and CMD; the user is created in the image."""
    user, line = user_of(df.final)
    assert user not in ("root", "0", ""), f"USER {user!r} is root"
    assert user == USER_ID, f"USER is {user!r}, not the numeric uid {USER_ID}"
    for keyword in ("ENTRYPOINT", "CMD"):
        assert line < df.final.last(keyword).line, f"USER comes after {keyword}"
    created = " ".join(i.value for i in df.final.all("RUN"))
    assert re.search(rf"useradd\b.*--uid {USER_ID}\b", created), "the user is not created (useradd --uid 10001)"
    assert re.search(rf"groupadd\b.*--gid {USER_ID}\b", created), "the group is not created (groupadd --gid 10001)"


def check_data_volume(df: Dockerfile) -> None:
    """CONVEYOR_DATA_DIR is a VOLUME, owned by the user (made in a RUN), and the WORKDIR."""
    data_dir = df.final.env().get("CONVEYOR_DATA_DIR")
    assert data_dir, "ENV CONVEYOR_DATA_DIR is not set"
    volumes: list[str] = []
    for instruction in df.final.all("VOLUME"):
        volumes += instruction.exec_form() or instruction.value.split()
    assert data_dir in volumes, f"the data dir {data_dir} is not a VOLUME ({volumes})"
    created = " ".join(i.value for i in df.final.all("RUN"))
    owned = rf"install -d -m 0700 -o conveyor -g conveyor {data_dir}\b|chown\b.*(conveyor|{USER_ID})\S* {data_dir}\b"
    assert re.search(owned, created), f"{data_dir} is not made owned by the user"
    assert df.final.last("WORKDIR").value == data_dir, "WORKDIR is not the data dir"


def check_environment(df: Dockerfile) -> None:
    """Listening beyond loopback, unbuffered, no bytecode written; no secret baked into the image."""
    env = df.final.env()
    assert env.get("CONVEYOR_HOST") == "0.0.0.0", "CONVEYOR_HOST=0.0.0.0: in a container, loopback is unreachable"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    for stage in df.stages:
        for name in [*stage.env(), *(i.value.split("=")[0] for i in stage.all("ARG"))]:
            assert not SECRET_NAME.search(name), f"{name} in ENV/ARG: a secret would be in every layer"


def conveyor_args(df: Dockerfile) -> list[str]:
    """What the image runs: ENTRYPOINT then CMD, both exec form, the first word ``conveyor``."""
    entrypoint = df.final.last("ENTRYPOINT").exec_form()
    cmd = df.final.last("CMD").exec_form()
    assert entrypoint is not None, "ENTRYPOINT is not in exec form: a shell would be PID 1 and keep SIGTERM"
    assert cmd is not None, "CMD is not in exec form"
    assert entrypoint[:1] == ["conveyor"], f"ENTRYPOINT {entrypoint} does not run conveyor itself"
    return [*entrypoint[1:], *cmd]


def check_entrypoint_runs_conveyor_server(df: Dockerfile) -> None:
    """ENTRYPOINT ["conveyor"] and CMD ["server"] in exec form (no shell: conveyor is PID 1 and SIGTERM drains it),
    arguments the real CLI accepts, and SIGTERM as the stop signal."""
    args = conveyor_args(df)
    assert args[:1] == ["server"], f"CMD runs {args}, not conveyor server"
    parse_command(args)
    assert df.final.last("STOPSIGNAL").value == "SIGTERM"


def healthcheck_command(df: Dockerfile) -> list[str]:
    flags, rest = df.final.last("HEALTHCHECK").flags()
    assert rest.startswith("CMD "), "HEALTHCHECK has no command (NONE?)"
    command = Instruction("CMD", rest[4:].strip(), 0).exec_form()
    assert command is not None, "HEALTHCHECK CMD is not in exec form"
    return command


def check_healthcheck(df: Dockerfile) -> None:
    """An exec-form HEALTHCHECK that asks /health on 127.0.0.1, port 9324 unless CONVEYOR_PORT says otherwise, with
    Python (the slim base has no curl), timing out before Docker's own --timeout."""
    command = healthcheck_command(df)
    assert command[:2] == ["python", "-c"], f"HEALTHCHECK runs {command[:2]}, not python -c"
    code = command[2]
    for part in ("127.0.0.1", "9324", "/health", "urllib"):
        assert part in code, f"the HEALTHCHECK does not use {part}"
    flags = df.final.last("HEALTHCHECK").flags()[0]
    assert "timeout" in flags and "interval" in flags
    inner = re.search(r"timeout=(\d+)", code)
    assert inner and int(inner.group(1)) < int(flags["timeout"].rstrip("s")), "urllib's timeout exceeds Docker's"


def check_expose(df: Dockerfile) -> None:
    """EXPOSE the port ``conveyor server`` listens on by default."""
    server = cli.get_command(click.Context(cli), "server")
    assert server is not None
    default = next(p.default for p in server.params if p.name == "port")
    exposed = [word.split("/")[0] for i in df.final.all("EXPOSE") for word in i.value.split()]
    assert str(default) in exposed, f"EXPOSE {exposed} lacks the server's port {default}"


def check_no_remote_add(df: Dockerfile) -> None:
    """Nothing fetched by ADD (unpinned, unchecked); COPY only."""
    for stage in df.stages:
        for instruction in stage.all("ADD"):
            sources = instruction.exec_form() or instruction.flags()[1].split()
            for source in sources[:-1]:
                assert not re.match(r"(https?|git)://|git@", source), f"line {instruction.line}: ADD {source}"


RULES: list[Callable[[Dockerfile], None]] = [
    check_multi_stage,
    check_build_stage_makes_the_virtualenv,
    check_base,
    check_non_root_user,
    check_data_volume,
    check_environment,
    check_entrypoint_runs_conveyor_server,
    check_healthcheck,
    check_expose,
    check_no_remote_add,
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_dockerfile_keeps_the_rule(dockerfile: Dockerfile, rule: Callable[[Dockerfile], None]) -> None:
    rule(dockerfile)


#: For each rule, edits of the real Dockerfile (old text, new text) that break it.
BREAKS: dict[str, list[tuple[str, str]]] = {
    "check_multi_stage": [(" AS runtime", ""), ("COPY --from=build /opt", "COPY /opt")],
    "check_build_stage_makes_the_virtualenv": [("python -m build --wheel", "pip wheel"), ("PATH=/opt/", "P=/opt/")],
    "check_base": [
        ("python:3.11.14-slim-bookworm", "python:3.11-slim"),
        ("FROM ${PYTHON_IMAGE} AS build", "FROM python:3.12-slim AS build"),
    ],
    "check_non_root_user": [("USER 10001:10001", "USER root"), ("USER 10001:10001", "USER conveyor")],
    "check_data_volume": [('VOLUME ["/var/lib/conveyor"]', 'VOLUME ["/data"]'), ("-o conveyor -g conveyor", "")],
    "check_environment": [
        ("CONVEYOR_HOST=0.0.0.0", "CONVEYOR_HOST=127.0.0.1"),
        ("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0"),
        ("CONVEYOR_HOST=0.0.0.0", "CONVEYOR_HOST=0.0.0.0 CONVEYOR_CONSOLE_TOKEN=abc"),
    ],
    "check_entrypoint_runs_conveyor_server": [
        ('ENTRYPOINT ["conveyor"]', "ENTRYPOINT conveyor"),
        ('CMD ["server"]', 'CMD ["server", "--hots", "0.0.0.0"]'),
        ('CMD ["server"]', 'CMD ["sqsd"]'),
        ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL"),
    ],
    "check_healthcheck": [('CMD ["python", "-c",', "CMD python -c ["), ("'/health'", "'/'")],
    "check_expose": [("EXPOSE 9324", "EXPOSE 8080")],
    "check_no_remote_add": [("COPY src ./src", "ADD https://example.com/conveyor.tar.gz ./src")],
}


def test_every_rule_has_breaks() -> None:
    assert sorted(BREAKS) == sorted(rule.__name__ for rule in RULES)


@pytest.mark.parametrize(
    ("rule", "old", "new"),
    [(rule, old, new) for rule in RULES for old, new in BREAKS[rule.__name__]],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_each_rule_fails_on_a_broken_copy(
    tmp_path: Path, rule: Callable[[Dockerfile], None], old: str, new: str
) -> None:
    text = DOCKERFILE.read_text()
    assert old in text, f"the break {old!r} no longer applies to the Dockerfile"
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(old, new))
    with pytest.raises((AssertionError, click.ClickException)):
        rule(parse_dockerfile(broken.read_text()))


# -- .dockerignore -------------------------------------------------------------------------------------------------


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """The patterns of a .dockerignore as Docker reads them: relative to the context root (a leading / is dropped,
    the path cleaned), ``*`` and ``?`` within one path segment, ``**`` across any number of them, ``!`` an
    exception; (is_exception, regex)."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in text.splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        exception = pattern.startswith("!")
        pattern = os.path.normpath(pattern.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            char = pattern[i]
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                regex += ".*" if i >= len(pattern) else "(.*/)?"
                continue
            regex += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            i += 1
        rules.append((exception, re.compile(f"^{regex}$")))
    return rules


def ignored(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the context root) out: the last pattern that matches it or one of
    its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for exception, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            verdict = not exception
    return verdict


#: What must stay out of the image's build context: tests, the virtualenv, git, caches at any depth, build output,
#: data dirs, and what the image does not need.
MUST_BE_IGNORED = [
    "tests/deploy/test_dockerfile.py",
    ".venv/bin/python",
    ".git/HEAD",
    "__pycache__/x.pyc",
    "src/conveyor/__pycache__",
    "src/conveyor/__pycache__/main.cpython-311.pyc",
    "src/conveyor/cli/__pycache__/server.cpython-311.pyc",
    ".mypy_cache/3.11/x.json",
    "src/.mypy_cache/x",
    ".ruff_cache/x",
    ".pytest_cache/v/x",
    "tests/.pytest_cache/x",
    ".hypothesis/examples/x",
    "src/.hypothesis/examples/x",
    "build/lib/conveyor/x.py",
    "test-artifacts/x.log",
    ".conveyor/conveyor.db",
    "examples/image-pipeline/.conveyor/conveyor.db",
    "bench/results/x.json",
    "docs/deploy.md",
    "src/conveyor.egg-info/PKG-INFO",
]
#: What the build stage copies: the package's metadata, its readme, its source.
MUST_BE_SENT = ["pyproject.toml", "README.md", "src/conveyor/__init__.py", "src/conveyor/cli/main.py"]


def check_dockerignore(text: str) -> None:
    rules = ignore_rules(text)
    leaked = [path for path in MUST_BE_IGNORED if not ignored(rules, path)]
    assert not leaked, f"sent to docker build: {leaked}"
    dropped = [path for path in MUST_BE_SENT if ignored(rules, path)]
    assert not dropped, f"left out of the build context but needed: {dropped}"


def test_dockerignore_keeps_tests_caches_and_data_out() -> None:
    check_dockerignore(DOCKERIGNORE.read_text())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("**/__pycache__\n", "__pycache__\n"),  # at the root only: src/conveyor/__pycache__ is sent
        ("**/.hypothesis\n", ".hypothesis\n"),
        ("\ntests\n", "\n"),
        ("\n.venv\n", "\n"),
        ("\n.git\n", "\n"),
        ("\nbuild\n", "\n"),
        ("\ndocs\n", "\ndocs\n*.md\n"),  # README.md is the package's readme
        ("\n.git\n", "\n.git\nsrc\n"),  # the source itself
    ],
)
def test_dockerignore_check_fails_on_a_broken_copy(old: str, new: str) -> None:
    text = DOCKERIGNORE.read_text()
    assert old in text, f"the break {old!r} no longer applies to .dockerignore"
    with pytest.raises(AssertionError):
        check_dockerignore(text.replace(old, new))


def test_every_copy_source_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    """What the Dockerfile copies from the context exists and is not ignored, and every source file of the package
    is sent; the pyproject's readme is among them."""
    rules = ignore_rules(DOCKERIGNORE.read_text())
    for stage in dockerfile.stages:
        for instruction in stage.all("COPY"):
            flags, rest = instruction.flags()
            if "from" in flags:
                continue
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"line {instruction.line}: COPY {source}: no such file"
                assert not ignored(rules, source), f"line {instruction.line}: COPY {source}: .dockerignore drops it"
    sources = [
        p.relative_to(ROOT).as_posix() for p in (ROOT / "src/conveyor").rglob("*") if "__pycache__" not in p.parts
    ]
    assert sources and not [path for path in sources if ignored(rules, path)]
    assert 'readme = "README.md"' in (ROOT / "pyproject.toml").read_text()


# -- what the image runs, run for real -------------------------------------------------------------------------------


def image_environment(df: Dockerfile, data_dir: Path, port: int) -> dict[str, str]:
    """The final stage's ENV as the container gets it, with the test's data dir, loopback, an ephemeral port, and
    the virtualenv's bin/ replaced by this interpreter's (where the ``conveyor`` script is)."""
    env = child_env()
    for key, value in df.final.env().items():
        env[key] = substitute(value, env)
    env["PATH"] = env["PATH"].replace(f"{VENV}/bin", str(Path(sys.executable).parent))
    env |= {"CONVEYOR_DATA_DIR": str(data_dir), "CONVEYOR_HOST": "127.0.0.1", "CONVEYOR_PORT": str(port)}
    return env


def test_the_image_command_serves_health_and_drains_on_sigterm(
    dockerfile: Dockerfile, processes: Processes, tmp_path: Path
) -> None:
    """ENTRYPOINT + CMD in the image's environment: the HEALTHCHECK's exact command exits 0 against it, and not 0
    for a path that is not 200; SIGTERM, as ``docker stop`` sends it, stops it with 0."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    env = image_environment(dockerfile, data_dir, free_port())
    entrypoint = dockerfile.final.last("ENTRYPOINT").exec_form()
    cmd = dockerfile.final.last("CMD").exec_form()
    assert entrypoint is not None and cmd is not None
    health = healthcheck_command(dockerfile)
    assert run(health, env=env).returncode != 0, "the HEALTHCHECK passes with no server running"

    server = processes.start("server", [*entrypoint, *cmd], env=env, cwd=data_dir)
    server.wait_for(r"listening on http://127\.0\.0\.1:" + env["CONVEYOR_PORT"])
    checked = run(health, env=env)
    assert checked.returncode == 0, f"HEALTHCHECK failed: {checked.stdout}{checked.stderr}\n{server.output()}"
    not_found = run(health, env=env | {"CONVEYOR_HEALTH_PATH": "/no-such-path"})
    assert not_found.returncode != 0, "the HEALTHCHECK passes on an answer that is not 200"
    assert re.search(r"/no-such-path: 4\d\d ", not_found.stderr), "the health log does not say what was answered"
    assert (data_dir / "conveyor.db").exists(), "the server did not keep its store in CONVEYOR_DATA_DIR"

    server.signal(signal.SIGTERM)
    assert server.wait(STOP_TIMEOUT_S) == 0, server.output()


def documented_commands(text: str) -> list[list[str]]:
    """The conveyor commands the Dockerfile's comments show: ``docker run ... IMAGE ARGS`` and ``CMD [...]``."""
    found: list[list[str]] = []
    for line in text.splitlines():
        comment = line.strip()
        if not comment.startswith("#"):
            continue
        if match := re.search(r"docker run .*\bconveyor:\S+(?: (.*))?$", comment):
            found.append(shlex.split(match.group(1) or "server"))
        elif match := re.search(r"\bCMD (\[.*\])$", comment):
            found.append(json.loads(match.group(1)))
    return found


def test_the_commands_in_the_comments_are_accepted_by_the_cli() -> None:
    """What the comments tell a user to run (sqsd as a sidecar, up in an image built FROM this one) parses."""
    commands = documented_commands(DOCKERFILE.read_text())
    assert {args[0] for args in commands} >= {"server", "sqsd", "up"}, commands
    for args in commands:
        parse_command(args)
    with pytest.raises(click.ClickException):
        parse_command(documented_commands("#   docker run conveyor:0.1.0 sqsd --worker-queue http://q\n")[0])
