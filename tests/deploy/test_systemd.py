"""The systemd units of ``deploy/systemd/``: their rules, ``systemd-analyze verify``, and what they run, run for real.

Each unit is parsed (systemd's syntax: sections, repeated keys, comments, backslash continuations) and checked:
the dedicated user, the state dir /var/lib/conveyor (0700), env files under /etc/conveyor, ExecStart with the one
install path and a command line the real CLI accepts (in the unit's environment and with the example env file),
SIGTERM with a TimeoutStopSec longer than the drain, KillMode=mixed for ``up``, Restart=on-failure and the
hardening. Each rule is shown to fail on a broken copy. ``systemd-analyze verify`` checks each unit (ExecStart
pointed at this virtualenv's conveyor) and is shown to fail on an unknown key and on a missing program; the
sysusers and tmpfiles files are applied to a scratch root.

Then the units' commands run as systemd would run them, as far as a test can without systemd: ExecStart's
arguments, Environment= and the example env file, the working directory, umask 0077, and NoNewPrivileges,
MemoryDenyWriteExecute and RestrictAddressFamilies enforced by a seccomp filter like the one systemd installs for
them (``SANDBOX``). The server answers /health, sqsd delivers a message to an app, ``up`` announces its
environment, and each stops on KillSignal with 0 within TimeoutStopSec.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import signal
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from conveyor.scale.process import STOP_GRACE_S
from conveyor.sqsd.options import OPTIONS
from tests.deploy.cli_check import parse_command
from tests.processes import Process, Processes, child_env, conveyor, free_port, run, start_server
from tests.support import sqs_client, wait_until

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
#: Where the units expect conveyor: a virtualenv of its own (the image's path too). The one place to change it.
CONVEYOR_BIN = "/opt/conveyor/bin/conveyor"
#: Each unit, the conveyor command it runs, and the example env file beside it.
UNIT_FILES = {
    "conveyor-server.service": ("server", "server.env"),
    "conveyor-sqsd@.service": ("sqsd", "sqsd.env"),
    "conveyor-up@.service": ("up", "up.env"),
}
INSTANCE = "example"
#: The seconds each command needs to stop after SIGTERM at most, by default: the server's open requests get 2 s;
#: sqsd's in-flight POSTs get DrainTimeout; up stops the web process, drains the daemons, then stops the apps.
DRAIN_TIMEOUT_S = next(o.default for o in OPTIONS if o.name == "DrainTimeout")
STOP_NEEDS_S = {"server": 10.0, "sqsd": DRAIN_TIMEOUT_S + 10.0, "up": STOP_GRACE_S + DRAIN_TIMEOUT_S + STOP_GRACE_S}
#: [Service] settings every unit has, with these values.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}
#: MemoryDenyWriteExecute=yes where only conveyor runs; not for up, whose worker apps may be JIT runtimes.
MEMORY_DENY_WRITE_EXECUTE = {"server": True, "sqsd": True, "up": False}


# -- a small unit parser -----------------------------------------------------------------------------------------


@dataclass
class Unit:
    name: str
    text: str
    sections: dict[str, list[tuple[str, str]]]

    @property
    def command(self) -> str:
        return UNIT_FILES[self.name][0]

    def values(self, key: str, section: str = "Service") -> list[str]:
        return [value for k, value in self.sections.get(section, []) if k == key]

    def get(self, key: str, section: str = "Service") -> str | None:
        found = self.values(key, section)
        return found[-1] if found else None


def parse_unit(name: str, text: str) -> Unit:
    """Sections of key=value lines; a key may repeat; # and ; start comments; a trailing backslash continues."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, equals, value = line.partition("=")
        assert equals and current is not None, f"{name}: not a setting: {line!r}"
        current.append((key.strip(), value.strip()))
    return Unit(name, text, sections)


def load(name: str) -> Unit:
    return parse_unit(name, (UNITS / name).read_text())


def seconds(value: str) -> float:
    """A systemd time span: ``90``, ``90s``, ``1min 30s``, ``2m``."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@dataclass(frozen=True)
class Places:
    """Where the test puts what the units name: systemd's state root (%S, /var/lib) and /srv/conveyor."""

    state: Path
    srv: Path

    def expand(self, value: str) -> str:
        expanded = value.replace("%S", str(self.state)).replace("%i", INSTANCE).replace("%%", "%")
        assert "%" not in expanded, f"a specifier the test does not know: {value!r}"
        return expanded.replace("/srv/conveyor", str(self.srv))


def env_file(path: Path, *, commented: bool = False) -> dict[str, str]:
    """KEY=VALUE lines of an EnvironmentFile (with ``commented``: also the ``#KEY=VALUE`` examples)."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if commented:
            line = line.lstrip("#")
        match = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def exec_start(unit: Unit, places: Places) -> list[str]:
    """ExecStart's words with the specifiers expanded and the install path replaced by this virtualenv's conveyor."""
    line = unit.get("ExecStart")
    assert line is not None
    assert "$" not in line, "ExecStart uses a variable: the test's CLI check would not see its value"
    words = [places.expand(word) for word in shlex.split(line)]
    return [str(Path(sys.executable).parent / "conveyor"), *words[1:]] if words[0] == CONVEYOR_BIN else words


def unit_environment(unit: Unit, places: Places, overrides: Mapping[str, str] = {}) -> dict[str, str]:
    """The process's environment as systemd gives it: Environment= first, then the example env file (which wins),
    then the test's ``overrides``."""
    env = child_env()
    for value in unit.values("Environment"):
        for word in shlex.split(value):
            key, _, setting = word.partition("=")
            env[key] = places.expand(setting)
    env |= env_file(UNITS / UNIT_FILES[unit.name][1])
    return env | dict(overrides)


@pytest.fixture
def places(tmp_path: Path) -> Places:
    """The state dir the unit's StateDirectory= would make (0700), and the project folder conveyor init writes."""
    made = Places(tmp_path / "state", tmp_path / "srv")
    (made.state / "conveyor").mkdir(parents=True, mode=0o700)
    run(conveyor("init", str(made.srv / INSTANCE)), env=child_env()).check_returncode()
    return made


# -- the rules ---------------------------------------------------------------------------------------------------


def check_user(unit: Unit) -> None:
    assert unit.get("User") == "conveyor" and unit.get("Group") == "conveyor", "runs as conveyor:conveyor"


def check_state_directory(unit: Unit) -> None:
    """/var/lib/conveyor made by systemd, private; nothing else writable (no ReadWritePaths)."""
    assert unit.get("StateDirectory") == "conveyor"
    assert unit.get("StateDirectoryMode") == "0700"
    assert not unit.values("ReadWritePaths"), "ReadWritePaths: the state dir is the only place conveyor writes"


def check_environment_file(unit: Unit) -> None:
    files = unit.values("EnvironmentFile")
    assert files and all(re.match(r"^-?/etc/conveyor/", f) for f in files), f"EnvironmentFile {files}"
    if unit.command == "sqsd":
        assert files == ["/etc/conveyor/sqsd/%i.env"], "sqsd@NAME reads /etc/conveyor/sqsd/NAME.env, required"


def check_exec_start(unit: Unit) -> None:
    """One ExecStart: the install path, the unit's conveyor command; the path named nowhere else."""
    starts = unit.values("ExecStart")
    assert len(starts) == 1, f"ExecStart {starts}"
    words = shlex.split(starts[0])
    assert words[:2] == [CONVEYOR_BIN, unit.command], f"ExecStart {words[:2]}"
    settings = "\n".join(line for line in unit.text.splitlines() if not line.lstrip().startswith("#"))
    assert settings.count(CONVEYOR_BIN) == 1, f"{CONVEYOR_BIN} appears in more than ExecStart"
    assert unit.get("Type") == "exec", "Type=exec: a conveyor that cannot start fails the start"


def check_stop(unit: Unit) -> None:
    """SIGTERM drains; TimeoutStopSec lets the drain finish; up gets the signal alone (its apps must not)."""
    assert unit.get("KillSignal") == "SIGTERM"
    timeout = unit.get("TimeoutStopSec")
    assert timeout is not None and seconds(timeout) > STOP_NEEDS_S[unit.command], f"TimeoutStopSec={timeout}"
    if unit.command == "up":
        assert unit.get("KillMode") == "mixed", "KillMode=mixed: up drains its instances before its apps stop"
    else:
        assert unit.get("KillMode") in (None, "control-group", "mixed")
    assert unit.get("Restart") == "on-failure"


def check_hardening(unit: Unit) -> None:
    for key, value in HARDENING.items():
        assert unit.get(key) == value, f"{key}={unit.get(key)}, not {value!r}"
    if MEMORY_DENY_WRITE_EXECUTE[unit.command]:
        assert unit.get("MemoryDenyWriteExecute") == "yes"
    else:
        assert unit.get("MemoryDenyWriteExecute") is None
        assert "No MemoryDenyWriteExecute" in unit.text, "say why MemoryDenyWriteExecute is left out"


def check_install(unit: Unit) -> None:
    assert unit.get("WantedBy", "Install") == "multi-user.target"


RULES: list[Callable[[Unit], None]] = [
    check_user,
    check_state_directory,
    check_environment_file,
    check_exec_start,
    check_stop,
    check_hardening,
    check_install,
]


@pytest.mark.parametrize("name", UNIT_FILES)
@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_unit_keeps_the_rule(name: str, rule: Callable[[Unit], None]) -> None:
    rule(load(name))


#: For each rule, an edit that breaks it (old text, new text) and the unit it is made in.
BREAKS: list[tuple[Callable[[Unit], None], str, str, str]] = [
    (check_user, "conveyor-server.service", "User=conveyor", "User=root"),
    (check_state_directory, "conveyor-sqsd@.service", "StateDirectoryMode=0700", "StateDirectoryMode=0755"),
    (check_state_directory, "conveyor-up@.service", "UMask=0077", "UMask=0077\nReadWritePaths=/srv"),
    (
        check_environment_file,
        "conveyor-sqsd@.service",
        "EnvironmentFile=/etc/conveyor/sqsd/%i.env",
        "EnvironmentFile=-/etc/conveyor/sqsd.env",
    ),
    (
        check_exec_start,
        "conveyor-server.service",
        "ExecStart=/opt/conveyor/bin/conveyor server",
        "ExecStart=/usr/bin/conveyor server",
    ),
    (check_exec_start, "conveyor-up@.service", "Type=exec", "Type=simple"),
    (check_stop, "conveyor-sqsd@.service", "TimeoutStopSec=60", "TimeoutStopSec=30s"),
    (check_stop, "conveyor-up@.service", "KillMode=mixed", "KillMode=control-group"),
    (check_stop, "conveyor-server.service", "KillSignal=SIGTERM", "KillSignal=SIGINT"),
    (check_stop, "conveyor-server.service", "Restart=on-failure", "Restart=no"),
    (check_hardening, "conveyor-server.service", "ProtectSystem=strict", "ProtectSystem=full"),
    (check_hardening, "conveyor-sqsd@.service", "MemoryDenyWriteExecute=yes", "MemoryDenyWriteExecute=no"),
    (check_hardening, "conveyor-up@.service", "CapabilityBoundingSet=", "CapabilityBoundingSet=CAP_NET_ADMIN"),
    (check_install, "conveyor-server.service", "WantedBy=multi-user.target", "WantedBy=default.target"),
]


def test_every_rule_has_a_break() -> None:
    assert {rule for rule, *_ in BREAKS} == set(RULES)


@pytest.mark.parametrize(("rule", "name", "old", "new"), BREAKS, ids=lambda v: v.__name__ if callable(v) else None)
def test_each_rule_fails_on_a_broken_copy(rule: Callable[[Unit], None], name: str, old: str, new: str) -> None:
    text = (UNITS / name).read_text()
    assert f"\n{old}" in text, f"the break {old!r} no longer applies to {name}"
    with pytest.raises(AssertionError):
        rule(parse_unit(name, text.replace(f"\n{old}", f"\n{new}", 1)))


# -- the command lines against the real CLI ----------------------------------------------------------------------


def known_variables(command: click.Command) -> set[str]:
    """The variables ``command`` reads: its options' (click's, and sqsd's own table), and PORT and friends."""
    names = {p.envvar for p in command.params if isinstance(getattr(p, "envvar", None), str)}
    if command.name == "sqsd":
        names |= {o.env for o in OPTIONS} | {alias for o in OPTIONS for alias in o.aliases} | {"PORT"}
    return {str(name) for name in names}


@pytest.mark.parametrize("name", UNIT_FILES)
def test_exec_start_and_env_file_are_accepted_by_the_cli(name: str, places: Places) -> None:
    """ExecStart's arguments parse in the unit's environment with its example env file; every variable the env
    file names (examples in comments too) is one the command reads, or libpq's or AWS's."""
    unit = load(name)
    args = exec_start(unit, places)[1:]
    command, params = parse_command(args, unit_environment(unit, places))
    known = known_variables(command)
    for variable in env_file(UNITS / UNIT_FILES[name][1], commented=True):
        assert variable in known or variable.startswith(("PG", "AWS_")), f"{name}: {variable} is read by nothing"
    if unit.command == "server":
        assert params["data_dir"] == places.state / "conveyor", "the server's data dir is not the state dir"
    if unit.command == "up":
        assert params["data_dir"] == places.state / "conveyor" / "up" / INSTANCE
        assert params["directory"] == places.srv / INSTANCE


def test_the_cli_check_fails_on_a_made_up_flag(places: Places) -> None:
    unit = load("conveyor-server.service")
    with pytest.raises(click.ClickException):
        parse_command([*exec_start(unit, places)[1:], "--data-dri", "/x"], unit_environment(unit, places))
    with pytest.raises(click.ClickException):
        parse_command(exec_start(unit, places)[1:], unit_environment(unit, places, {"CONVEYOR_PORT": "ninety"}))


def test_sqsd_takes_every_option_from_the_env_file(places: Places) -> None:
    """``conveyor sqsd --print-config`` in the sqsd unit's environment: each variable of the example env file is
    the source of its option."""
    unit = load("conveyor-sqsd@.service")
    env = unit_environment(unit, places)
    result = run([*exec_start(unit, places), "--print-config"], env=env, cwd=places.srv / INSTANCE)
    assert result.returncode == 0, result.stderr
    sources = re.findall(r"env (\w+)", result.stdout)
    file_variables = set(env_file(UNITS / "sqsd.env"))
    assert file_variables <= set(sources), f"not taken from the env file: {file_variables - set(sources)}"


# -- systemd's own checks ----------------------------------------------------------------------------------------


def systemd_tool(name: str) -> str:
    """The path of a systemd program; skipped outside CI when missing, a failure under CI."""
    found = shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/bin/{name}") if os.access(p, os.X_OK)), "")
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; under CI the systemd checks must run (apt-get install systemd)")
        pytest.skip(f"{name} is not installed (apt-get install systemd): the systemd checks skip outside CI")
    return found


def verify(folder: Path, name: str, text: str) -> tuple[int, str]:
    """``systemd-analyze verify`` on a copy of the unit (an instance of a template) in ``folder``: its exit status
    and the lines it printed about this unit (warnings such as an unknown key leave the status 0)."""
    (folder / name).write_text(text)
    target = folder / name.replace("@.", f"@{INSTANCE}.")
    result = run([systemd_tool("systemd-analyze"), "verify", "--man=no", str(target)], cwd=folder)
    stem = name.split("@")[0].removesuffix(".service")
    lines = [line for line in (result.stdout + result.stderr).splitlines() if stem in line]
    return result.returncode, "\n".join(lines)


def with_venv_conveyor(text: str) -> str:
    return text.replace(CONVEYOR_BIN, str(Path(sys.executable).parent / "conveyor"))


@pytest.mark.parametrize("name", UNIT_FILES)
def test_systemd_analyze_verify_accepts_the_unit(name: str, tmp_path: Path) -> None:
    status, said = verify(tmp_path, name, with_venv_conveyor((UNITS / name).read_text()))
    assert status == 0 and not said, said


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("UMask=0077", "UMask=0077\nProtectEverything=yes", "Unknown key"),
        ("KillSignal=SIGTERM", "KillSignal=SIGTERMINATE", "Failed to parse"),
        (f"ExecStart={CONVEYOR_BIN}", "ExecStart=/nonexistent/bin/conveyor", "is not executable"),
    ],
)
@pytest.mark.parametrize("name", UNIT_FILES)
def test_systemd_analyze_verify_fails_on_a_broken_unit(
    name: str, old: str, new: str, complaint: str, tmp_path: Path
) -> None:
    text = (UNITS / name).read_text()
    assert old in text
    broken = with_venv_conveyor(text.replace(old, new, 1))
    status, said = verify(tmp_path, name, broken)
    assert complaint in said, said


def test_sysusers_creates_the_conveyor_user(tmp_path: Path) -> None:
    """conveyor.sysusers on a scratch root: a system user conveyor, no login, home /var/lib/conveyor."""
    (tmp_path / "etc").mkdir()
    result = run([systemd_tool("systemd-sysusers"), f"--root={tmp_path}", str(UNITS / "conveyor.sysusers")])
    assert result.returncode == 0, result.stderr
    entry = next(line for line in (tmp_path / "etc/passwd").read_text().splitlines() if line.startswith("conveyor:"))
    _, _, uid, gid, _, home, shell = entry.split(":")
    assert int(uid) < 1000 and home == "/var/lib/conveyor" and shell == "/usr/sbin/nologin", entry
    assert any(line.startswith(f"conveyor:x:{gid}:") for line in (tmp_path / "etc/group").read_text().splitlines())


def test_tmpfiles_makes_the_configuration_folders(tmp_path: Path) -> None:
    tool = systemd_tool("systemd-tmpfiles")
    result = run([tool, f"--root={tmp_path}", "--create", str(UNITS / "conveyor.tmpfiles")])
    assert result.returncode == 0, result.stderr
    for folder, mode in [("etc/conveyor", 0o755), ("etc/conveyor/sqsd", 0o750), ("srv/conveyor", 0o755)]:
        assert (tmp_path / folder).stat().st_mode & 0o777 == mode, folder


# -- the units' commands, run as systemd runs them ---------------------------------------------------------------

#: Run ARGV after installing what systemd installs for NoNewPrivileges=yes, RestrictAddressFamilies=AF_INET
#: AF_INET6 AF_UNIX and (with --mdwe) MemoryDenyWriteExecute=yes: a seccomp filter that refuses socket() for other
#: families (EAFNOSUPPORT), and mmap with PROT_WRITE|PROT_EXEC, mprotect/pkey_mprotect with PROT_EXEC and shmat
#: with SHM_EXEC (EPERM), as systemd's own filters do (systemd.exec(5)). Also UMask=0077.
SANDBOX = textwrap.dedent(
    """
    import ctypes, os, platform, struct, sys
    NR = {"x86_64": (0xC000003E, 9, 10, 329, 30, 41), "aarch64": (0xC00000B7, 222, 226, 288, 196, 198)}
    arch, mmap_nr, mprotect_nr, pkey_nr, shmat_nr, socket_nr = NR[platform.machine()]
    mdwe = sys.argv[1] == "--mdwe"
    argv = sys.argv[2:]
    ALLOW, EPERM, EAFNOSUPPORT = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 97
    LD, JEQ, JSET, AND, RET = 0x20, 0x15, 0x45, 0x54, 0x06
    prog = []  # (code, jt, jf, k); jumps are filled in as offsets to labels
    def op(code, k=0, jt=0, jf=0):
        prog.append([code, jt, jf, k])
    op(LD, 4); op(JEQ, arch, 1, 0); op(RET, ALLOW)  # another ABI: not ours to judge
    op(LD, 0)
    checks = [(socket_nr, "socket")] + ([(mmap_nr, "mmap"), (mprotect_nr, "mprot"), (pkey_nr, "mprot"),
                                        (shmat_nr, "shmat")] if mdwe else [])
    jumps = []
    for nr, label in checks:
        jumps.append((len(prog), label)); op(JEQ, nr)
    op(RET, ALLOW)
    labels = {}
    labels["socket"] = len(prog)
    op(LD, 16)
    for family in (1, 2, 10):
        op(JEQ, family, 0, 0); prog[-1][1] = "allow"
    op(RET, EAFNOSUPPORT)
    labels["mmap"] = len(prog)
    op(LD, 32); op(AND, 6); op(JEQ, 6, 0, 1); op(RET, EPERM); op(RET, ALLOW)
    labels["mprot"] = len(prog)
    op(LD, 32); op(JSET, 4, 0, 1); op(RET, EPERM); op(RET, ALLOW)
    labels["shmat"] = len(prog)
    op(LD, 32); op(JSET, 0o100000, 0, 1); op(RET, EPERM); op(RET, ALLOW)
    labels["allow"] = len(prog)
    op(RET, ALLOW)
    for at, label in jumps:
        prog[at][1] = labels[label] - at - 1
    for at, ins in enumerate(prog):
        if ins[1] == "allow":
            ins[1] = labels["allow"] - at - 1
    code = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS"
    assert libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) == 0, os.strerror(ctypes.get_errno())
    os.umask(0o077)
    os.execv(argv[0], argv)
    """
)


def sandboxed(unit: Unit, argv: list[str]) -> list[str]:
    """``argv`` under the unit's NoNewPrivileges, RestrictAddressFamilies and MemoryDenyWriteExecute (``SANDBOX``)."""
    if platform.machine() not in ("x86_64", "aarch64"):
        if os.environ.get("CI"):
            pytest.fail(f"SANDBOX knows no system call numbers for {platform.machine()}")
        pytest.skip(f"SANDBOX knows no system call numbers for {platform.machine()}")
    assert (
        unit.get("NoNewPrivileges") == "yes"
        and unit.get("RestrictAddressFamilies") == HARDENING["RestrictAddressFamilies"]
    )
    mdwe = "--mdwe" if unit.get("MemoryDenyWriteExecute") == "yes" else "--no-mdwe"
    return [sys.executable, "-c", SANDBOX, mdwe, *argv]


def test_the_sandbox_refuses_what_systemd_refuses() -> None:
    """Under SANDBOX (as for the server's unit) memory both writable and executable, and a netlink socket, are
    refused, while the allowed families work: so the runs below can fail."""
    probe = textwrap.dedent(
        """
        import mmap, socket
        socket.socket(socket.AF_INET6).close(); socket.socket(socket.AF_UNIX).close()
        for make in (lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC),
                     lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)):
            try:
                make()
            except OSError as error:
                print("refused", error.errno)
            else:
                print("allowed")
        """
    )
    unit = load("conveyor-server.service")
    result = run(sandboxed(unit, [sys.executable, "-c", probe]), env=child_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["refused 1", "refused 97"], result.stdout
    without_mdwe = run(sandboxed(load("conveyor-up@.service"), [sys.executable, "-c", probe]), env=child_env())
    assert without_mdwe.stdout.split("\n")[:2] == ["allowed", "refused 97"], without_mdwe.stdout


def start_unit(processes: Processes, unit: Unit, places: Places, overrides: Mapping[str, str]) -> Process:
    """The unit's ExecStart, sandboxed, in its environment and working directory."""
    workdir = unit.get("WorkingDirectory")
    assert workdir is not None
    cwd = Path(places.expand(workdir.lstrip("-")))
    argv = sandboxed(unit, exec_start(unit, places))
    return processes.start(unit.command, argv, env=unit_environment(unit, places, overrides), cwd=cwd)


def stop_unit(unit: Unit, process: Process) -> None:
    """KillSignal to the main process (what KillMode=mixed sends; the others have no children): 0 within
    TimeoutStopSec."""
    kill_signal = unit.get("KillSignal")
    timeout = unit.get("TimeoutStopSec")
    assert kill_signal is not None and timeout is not None
    process.signal(signal.Signals[kill_signal])
    assert process.wait(seconds(timeout)) == 0, process.output()


def test_server_unit_serves_and_stops_in_time(processes: Processes, places: Places) -> None:
    unit = load("conveyor-server.service")
    port = free_port()
    server = start_unit(processes, unit, places, {"CONVEYOR_PORT": str(port)})
    server.wait_for(rf"listening on http://127\.0\.0\.1:{port}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        assert answer.status == 200
    stop_unit(unit, server)
    data = places.state / "conveyor"
    assert (data / "conveyor.db").exists(), "the store is not in the state dir"
    assert all(p.stat().st_mode & 0o077 == 0 for p in data.iterdir()), "a file of the store is readable by others"


APP = textwrap.dedent(
    """
    import os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    class App(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            print("got", self.path, body.decode(), flush=True)
            self.send_response(200); self.end_headers()
        def log_message(self, *args):
            pass
    server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), App)
    print("app ready", flush=True)
    server.serve_forever()
    """
)


def test_sqsd_unit_delivers_and_drains_in_time(processes: Processes, places: Places) -> None:
    """sqsd@example with the example env file, pointed at a server and an app of the test's own: a message sent
    reaches the app at the env file's path, and SIGTERM stops the daemon with 0 within TimeoutStopSec."""
    unit = load("conveyor-sqsd@.service")
    server = start_server(processes, "--store", "memory", "--port", "0")
    app_port = free_port()
    app = processes.start("app", [sys.executable, "-c", APP], env=child_env(PORT=str(app_port)))
    app.wait_for("app ready")
    queue_url = f"{server.url}/000000000000/{INSTANCE}"
    daemon = start_unit(processes, unit, places, {"SQS_QUEUE_URL": queue_url, "PORT": str(app_port)})
    sqs = sqs_client(server.url)
    wait_until(lambda: _queue_exists(sqs, INSTANCE), 20, lambda: f"the queue is created\n{daemon.output()}")
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello from the unit")
    app.wait_for(r"got /work hello from the unit")
    stop_unit(unit, daemon)


def _queue_exists(sqs: Any, name: str) -> bool:
    """Whether the queue itself is there (the daemon makes its DLQ first)."""
    try:
        sqs.get_queue_url(QueueName=name)
    except sqs.exceptions.QueueDoesNotExist:
        return False
    return True


def test_up_unit_runs_the_environment_and_drains_in_time(processes: Processes, places: Places) -> None:
    """up@example on the project conveyor init writes, its data in the state dir, its ports from the env file
    replaced by free ones: it announces the environment, and SIGTERM to it alone drains and stops it with 0."""
    unit = load("conveyor-up@.service")
    overrides = {"CONVEYOR_PORT": str(free_port()), "CONVEYOR_CONSOLE_PORT": "0"}
    up = start_unit(processes, unit, places, overrides)
    up.wait_for(r" is up\b", timeout_s=60)
    assert (places.state / "conveyor" / "up" / INSTANCE).is_dir(), "the data dir is not in the state dir"
    assert not (places.srv / INSTANCE / ".conveyor").exists(), "up wrote into the project folder"
    stop_unit(unit, up)
