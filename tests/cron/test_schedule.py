"""cron.yaml in EB's format: what loads, and the exact error for every mistake (file:line: field: ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.cron import CronTask, schedule_problem
from conveyor.cron.cronfile import load_cron_yaml
from conveyor.errors import ConfigError

HINT = "use 5 fields 'minute hour day-of-month month day-of-week', e.g. '*/5 * * * *'."
TASK = "version: 1\ncron:\n  - name: b\n    url: /b\n"


def write(tmp_path: Path, text: str, name: str = "cron.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_eb_documentation_sample(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """version: 1
cron:
 - name: "backup-job"
   url: "/backup"
   schedule: "0 */12 * * *"
 - name: "audit"
   url: "/audit"
   schedule: "0 23 * * *"
""",
    )
    assert load_cron_yaml(path) == (
        CronTask("backup-job", "/backup", "0 */12 * * *", "UTC", True, "cron.yaml:3"),
        CronTask("audit", "/audit", "0 23 * * *", "UTC", True, "cron.yaml:6"),
    )


def test_eb_sample_with_description_comments_and_query_string(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """# Periodic tasks for the worker tier
version: 1
cron:
  - name: "task1"            # EB tolerated descriptions in practice
    url: "/scheduled?job=task1"
    schedule: "*/10 * * * *"
    description: >
      Runs every ten minutes,
      on every instance's clock.
""",
    )
    (task,) = load_cron_yaml(path)
    assert task == CronTask("task1", "/scheduled?job=task1", "*/10 * * * *", "UTC", True, "cron.yaml:4")


def test_conveyor_extensions_timezone_and_enabled(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """version: 1
cron:
  - name: report
    url: /report
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    enabled: false
  - name: cleanup
    url: /cleanup
    schedule: "@hourly"
    enabled: yes
""",
    )
    assert load_cron_yaml(path) == (
        CronTask("report", "/report", "30 2 * * *", "Europe/Berlin", False, "cron.yaml:3"),
        CronTask("cleanup", "/cleanup", "@hourly", "UTC", True, "cron.yaml:8"),
    )


@pytest.mark.parametrize(
    ("written", "enabled"),
    [("'yes'", True), ("'no'", False), ("on", True), ("'off'", False), ("'true'", True), ("0", False), ("1", True)],
)
def test_enabled_is_a_flag_as_every_other_flag(tmp_path: Path, written: str, enabled: bool) -> None:
    """The one flag rule of ``config.values`` (as ``scaling: {count_in_flight: "yes"}``), quoted or not."""
    (task,) = load_cron_yaml(write(tmp_path, TASK + f"    schedule: '* * * * *'\n    enabled: {written}\n"))
    assert task.enabled is enabled


@pytest.mark.parametrize(
    "text",
    ["version: 1\ncron:\n", "version: 1\ncron: []\n", "version: '1'\ncron: []\n", "version: 1\ncron:\n# - name: x\n"],
)
def test_no_tasks(tmp_path: Path, text: str) -> None:
    assert load_cron_yaml(write(tmp_path, text)) == ()


def test_label_is_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_cron_yaml(write(tmp_path, "version: 3\n", name="other-cron.yaml"))
    assert caught.value.message.startswith("other-cron.yaml:1: version:")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cron.yaml: cannot be read"):
        load_cron_yaml(tmp_path / "cron.yaml")


ERRORS = [
    ("empty file", "", "cron.yaml:1: version: missing; cron.yaml starts with 'version: 1' and a 'cron:' list."),
    (
        "not YAML",
        "version: 1\ncron:\n  - name: [\n",
        "cron.yaml:4: not valid YAML (expected the node content, but found '<stream end>').",
    ),
    ("top level list", "- a\n", "cron.yaml:1: top level: must be a mapping with keys version, cron."),
    (
        "no version",
        "cron: []\n",
        "cron.yaml:1: version: missing; add 'version: 1' (the only version EB defines).",
    ),
    ("version 2", "version: 2\ncron: []\n", "cron.yaml:1: version: must be 1 (the only version EB defines), not 2."),
    (
        "version 1.0",
        "version: 1.0\ncron: []\n",
        "cron.yaml:1: version: must be 1 (the only version EB defines), not 1.0.",
    ),
    (
        "version list",
        "version: [1]\ncron: []\n",
        "cron.yaml:1: version: must be 1 (the only version EB defines), not a list or mapping.",
    ),
    (
        "no cron",
        "version: 1\n",
        "cron.yaml:1: cron: missing; add a 'cron:' list of tasks with name, url and schedule.",
    ),
    (
        "cron scalar",
        "version: 1\ncron: backup\n",
        "cron.yaml:2: cron: must be a list of tasks ('- name: ...'), not a single value.",
    ),
    (
        "unknown top key",
        "version: 1\ncron: []\ncrons: []\n",
        "cron.yaml:3: unknown key 'crons' in cron.yaml; did you mean 'cron'? Valid keys: version, cron.",
    ),
    ("top key twice", "version: 1\nversion: 1\ncron: []\n", "cron.yaml:2: version: given twice (first on line 1)."),
    (
        "entry not a mapping",
        "version: 1\ncron:\n  - backup\n",
        "cron.yaml:3: cron: each task must be a mapping with name, url and schedule.",
    ),
    (
        "no name",
        "version: 1\ncron:\n  - url: /b\n    schedule: '* * * * *'\n",
        "cron.yaml:3: name: missing; every task needs name, url and schedule, e.g. name: backup-job.",
    ),
    (
        "no url",
        "version: 1\ncron:\n  - name: b\n    schedule: '* * * * *'\n",
        "cron.yaml:3: url: missing in task 'b'; every task needs name, url and schedule, e.g. url: /backup.",
    ),
    (
        "no schedule",
        TASK,
        "cron.yaml:3: schedule: missing in task 'b'; every task needs name, url and schedule, "
        "e.g. schedule: '*/5 * * * *'.",
    ),
    (
        "empty name",
        "version: 1\ncron:\n  - name: ''\n    url: /b\n    schedule: '* * * * *'\n",
        "cron.yaml:3: name: must not be empty; e.g. backup-job.",
    ),
    (
        "null name",
        "version: 1\ncron:\n  - name:\n    url: /b\n    schedule: '* * * * *'\n",
        "cron.yaml:3: name: must not be empty; e.g. backup-job.",
    ),
    (
        "list name",
        "version: 1\ncron:\n  - name: [a]\n    url: /b\n    schedule: '* * * * *'\n",
        "cron.yaml:3: name: must be a single value, e.g. backup-job.",
    ),
    (
        "line break in name",
        "version: 1\ncron:\n  - name: \"a\\nb\"\n    url: /b\n    schedule: '* * * * *'\n",
        "cron.yaml:3: name: must not contain control characters or line breaks.",
    ),
    (
        "relative url",
        TASK.replace("/b", "backup") + "    schedule: '* * * * *'\n",
        "cron.yaml:4: url: 'backup' in task 'b' must be a path on the worker starting with one '/' "
        "and without spaces, e.g. /backup.",
    ),
    (
        "url to another host",
        TASK.replace("/b", "//evil.example/x") + "    schedule: '* * * * *'\n",
        "cron.yaml:4: url: '//evil.example/x' in task 'b' must be a path on the worker starting with one '/' "
        "and without spaces, e.g. /backup.",
    ),
    (
        "url with a space",
        TASK.replace("/b", "'/a b'") + "    schedule: '* * * * *'\n",
        "cron.yaml:4: url: '/a b' in task 'b' must be a path on the worker starting with one '/' "
        "and without spaces, e.g. /backup.",
    ),
    (
        "empty schedule",
        TASK + "    schedule: ''\n",
        "cron.yaml:5: schedule: must not be empty in task 'b'; e.g. '*/5 * * * *'.",
    ),
    (
        "minute out of range",
        TASK + "    schedule: '61 * * * *'\n",
        "cron.yaml:5: schedule: '61 * * * *' is not a valid cron expression "
        f"([61 * * * *] is not acceptable, out of range); {HINT}",
    ),
    (
        "zero step",
        TASK + "    schedule: '*/0 * * * *'\n",
        "cron.yaml:5: schedule: '*/0 * * * *' is not a valid cron expression "
        f"([*/0 * * * *] step '0' in field 0 is not acceptable); {HINT}",
    ),
    (
        "unknown letters",
        TASK + "    schedule: '0 0 LW * *'\n",
        f"cron.yaml:5: schedule: '0 0 LW * *' is not a valid cron expression ([0 0 lw * *] is not acceptable); {HINT}",
    ),
    (
        "seconds field",
        TASK + "    schedule: '0 0 * * * *'\n",
        f"cron.yaml:5: schedule: '0 0 * * * *' has 6 fields (seconds and years are not supported); {HINT}",
    ),
    ("three fields", TASK + "    schedule: '* * *'\n", f"cron.yaml:5: schedule: '* * *' has 3 fields; {HINT}"),
    ("a number", TASK + "    schedule: 5\n", f"cron.yaml:5: schedule: '5' has 1 field; {HINT}"),
    (
        "hashed field",
        TASK + "    schedule: 'H * * * *'\n",
        "cron.yaml:5: schedule: 'H * * * *' uses a hashed or random field (H, R); "
        f"every scheduler must agree on the slots; {HINT}",
    ),
    (
        "random field",
        TASK + "    schedule: 'R 3 * * *'\n",
        "cron.yaml:5: schedule: 'R 3 * * *' uses a hashed or random field (H, R); "
        f"every scheduler must agree on the slots; {HINT}",
    ),
    (
        "never matches",
        TASK + "    schedule: '0 0 31 2 *'\n",
        f"cron.yaml:5: schedule: '0 0 31 2 *' is not a valid cron expression (it never matches any date); {HINT}",
    ),
    (
        "at reboot",
        TASK + "    schedule: '@reboot'\n",
        f"cron.yaml:5: schedule: '@reboot' has no time to schedule; {HINT}",
    ),
    (
        "misspelt zone",
        TASK + "    schedule: '* * * * *'\n    timezone: Europe/Berln\n",
        "cron.yaml:6: timezone: 'Europe/Berln' is not an IANA time zone name; "
        "e.g. UTC, Europe/Berlin, America/New_York.",
    ),
    (
        "zone folder",
        TASK + "    schedule: '* * * * *'\n    timezone: Europe\n",
        "cron.yaml:6: timezone: 'Europe' is not an IANA time zone name; e.g. UTC, Europe/Berlin, America/New_York.",
    ),
    (
        "zone path",
        TASK + "    schedule: '* * * * *'\n    timezone: ../etc/passwd\n",
        "cron.yaml:6: timezone: '../etc/passwd' is not an IANA time zone name; "
        "e.g. UTC, Europe/Berlin, America/New_York.",
    ),
    (
        "enabled not a flag",
        TASK + "    schedule: '* * * * *'\n    enabled: maybe\n",
        "cron.yaml:6: enabled in task 'b' must be true or false, not 'maybe'.",
    ),
    (
        "enabled a list",
        TASK + "    schedule: '* * * * *'\n    enabled: [true]\n",
        "cron.yaml:6: enabled in task 'b' must be a single value, not a list or mapping.",
    ),
    (
        "misspelt key",
        TASK + "    shedule: '* * * * *'\n",
        "cron.yaml:5: unknown key 'shedule' in task 'b'; did you mean 'schedule'? "
        "Valid keys: name, url, schedule, timezone, enabled, description.",
    ),
    (
        "key twice in a task",
        TASK + "    url: /c\n    schedule: '* * * * *'\n",
        "cron.yaml:5: url: given twice in task 'b' (first on line 4).",
    ),
    (
        "duplicate names",
        TASK
        + "    schedule: '* * * * *'\n  - name: c\n    url: /c\n    schedule: '* * * * *'\n"
        + "  - name: b\n    url: /d\n    schedule: '* * * * *'\n",
        "cron.yaml:9: name: 'b' is used by two tasks (lines 3 and 9); task names must be unique.",
    ),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in ERRORS], ids=[c for c, _, _ in ERRORS])
def test_every_mistake_names_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_cron_yaml(write(tmp_path, text))
    assert caught.value.message == message


@pytest.mark.parametrize(
    "schedule",
    ["*/5 * * * *", "0 0 L * *", "0 9 * * MON-FRI", "0 0 * JAN-MAR SUN", "0 0 * * 1#2", "0 0 15W * *", "0 0 29 2 *"]
    + ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", " 0  0 * * * ", "0 0 * * 7"],
)
def test_valid_schedules(schedule: str) -> None:
    assert schedule_problem(schedule) is None
