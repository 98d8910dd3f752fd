"""Reading a project folder: conveyor.yaml, Procfile, .ebextensions and env.yaml, with precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.env.project import DEFAULT_LINK, load_project
from conveyor.errors import ConfigError


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_procfile_alone_is_a_project(tmp_path: Path) -> None:
    write(tmp_path, "Procfile", "# processes\nworker: python worker.py\nweb: python web.py --port $PORT\n")
    project = load_project(tmp_path)
    assert project.worker_command == "python worker.py"
    assert project.web_command == "python web.py --port $PORT"
    assert (project.min_instances.value, project.max_instances.value, project.cooldown_s.value) == (1, 4, 360)
    assert project.link_name == DEFAULT_LINK


def test_conveyor_yaml_over_eb_files(tmp_path: Path) -> None:
    write(tmp_path, "Procfile", "worker: python old.py\n")
    write(
        tmp_path,
        ".ebextensions/01.config",
        "option_settings:\n"
        "  aws:autoscaling:asg:\n    MinSize: 2\n    MaxSize: 6\n    Cooldown: 120\n"
        "  aws:elasticbeanstalk:sqsd:\n    HttpPath: /eb\n"
        "  aws:elasticbeanstalk:application:environment:\n    COLOUR: blue\n",
    )
    write(
        tmp_path,
        "conveyor.yaml",
        "name: images\nworker:\n  command: python new.py\ninstances:\n  max: 8\nsqsd:\n  HttpPath: /work\n"
        "environment:\n  COLOUR: green\nqueue:\n  MessageRetentionPeriod: 86400\n",
    )
    project = load_project(tmp_path)
    assert project.name == "images"
    assert project.worker_command == "python new.py"
    assert project.min_instances.value == 2 and project.min_instances.where == ".ebextensions/01.config:3"
    assert project.max_instances.value == 8 and project.max_instances.where == "conveyor.yaml:5"
    assert project.cooldown_s.value == 120
    assert project.sqsd["HttpPath"].value == "/work"
    assert project.environment["COLOUR"].value == "green"
    assert project.queue_attributes["MessageRetentionPeriod"].value == 86400


def test_env_yaml_environment_links_name_the_variable(tmp_path: Path) -> None:
    write(tmp_path, "Procfile", "worker: w\n")
    write(tmp_path, "env.yaml", "EnvironmentName: front\nEnvironmentLinks:\n  JOBSQUEUE: worker-env\n")
    assert load_project(tmp_path).link_name == "JOBSQUEUE"
    write(tmp_path, "conveyor.yaml", "link: TASKS\n")
    assert load_project(tmp_path).link_name == "TASKS"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no worker process"),
        ({"Procfile": "worker python w.py\n"}, "Procfile:1: expected '<process>: <command>'"),
        ({"conveyor.yaml": "worker: w\ncolour: red\n"}, "conveyor.yaml:2: unknown key 'colour'"),
        # Every section refuses a key it does not have alike: the key, the file and line, a close match, the keys.
        (
            {"conveyor.yaml": "worker:\n  comand: python w.py\n"},
            "conveyor.yaml:2: unknown key 'comand' in worker; did you mean 'command'? Valid keys: command.",
        ),
        (
            {"conveyor.yaml": "worker: w\nweb:\n  command: python web.py\n  prot: 8000\n"},
            "conveyor.yaml:4: unknown key 'prot' in web; did you mean 'port'? Valid keys: command, port.",
        ),
        (
            {"conveyor.yaml": "worker: w\ninstances:\n  maximum: 3\n"},
            "conveyor.yaml:3: unknown key 'maximum' in instances; did you mean 'max'? "
            "Valid keys: min, max, cooldown, max_per_host.",
        ),
        (
            {"conveyor.yaml": "wroker: w\n"},
            "conveyor.yaml:1: unknown key 'wroker' in conveyor.yaml; did you mean 'worker'? Valid keys: name, worker,",
        ),
        (
            {"conveyor.yaml": "worker: w\nqueue:\n  VisibilityTimout: 60\n"},
            "conveyor.yaml:3: unknown key 'VisibilityTimout' in queue; did you mean 'VisibilityTimeout'? Valid keys: ",
        ),
        ({"conveyor.yaml": "worker:\n"}, "no worker process"),
        ({"conveyor.yaml": "worker: w\ninstances:\n  min: 5\n  max: 2\n"}, "instances min (5) is above max (2"),
        (
            {"conveyor.yaml": "worker: w\ninstances:\n  max: many\n"},
            "conveyor.yaml:3: instances max must be an integer from 1 to 100",
        ),
        ({"conveyor.yaml": "worker: w\nname: bad name!\n"}, "conveyor.yaml:2: environment name 'bad name!'"),
        ({"conveyor.yaml": "worker: [a\n"}, "conveyor.yaml:2: not valid YAML"),
        ({"conveyor.yaml": "worker: w\nsqsd: 5\n"}, "conveyor.yaml:2: sqsd must be a mapping"),
        (
            {
                "Procfile": "worker: w\n",
                ".ebextensions/a.config": "option_settings:\n  aws:autoscaling:asg:\n    MaxSize: 0\n",
            },
            ".ebextensions/a.config:3: instances max must be an integer from 1 to 100",
        ),
        (
            {
                "Procfile": "worker: w\n",
                ".ebextensions/a.config": "option_settings:\n  aws:autoscaling:asg:\n    MinSizee: 2\n",
            },
            ".ebextensions/a.config:3: unknown option 'MinSizee' in aws:autoscaling:asg; did you mean 'MinSize'? "
            "Valid options: MinSize, MaxSize, Cooldown, Availability Zones, Custom Availability Zones, "
            "EnableCapacityRebalancing.",
        ),
        (
            {
                "Procfile": "worker: w\n",
                ".ebextensions/a.config": "option_settings:\n"
                "  - namespace: aws:autoscaling:asg\n    option_name: cooldown\n    value: 60\n",
            },
            "unknown option 'cooldown' in aws:autoscaling:asg; did you mean 'Cooldown'?",
        ),
    ],
)
def test_mistakes_name_the_file_line_and_fix(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ConfigError) as excinfo:
        load_project(tmp_path)
    assert message in excinfo.value.message


def test_ebs_other_asg_options_are_accepted_and_ignored(tmp_path: Path) -> None:
    """A project made for EB keeps its zones and Spot settings: meaningless on one host, not a mistake."""
    write(tmp_path, "Procfile", "worker: w\n")
    write(
        tmp_path,
        ".ebextensions/a.config",
        "option_settings:\n  aws:autoscaling:asg:\n    Availability Zones: Any 2\n"
        "    Custom Availability Zones: us-east-1a\n    EnableCapacityRebalancing: true\n    MinSize: 2\n",
    )
    project = load_project(tmp_path)
    assert (project.min_instances.value, project.min_instances.where) == (2, ".ebextensions/a.config:6")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        load_project(tmp_path / "absent")


def test_web_process_with_a_fixed_port(tmp_path: Path) -> None:
    write(tmp_path, "conveyor.yaml", "worker: w\nweb:\n  command: python web.py\n  port: 8000\n")
    project = load_project(tmp_path)
    assert (project.web_command, project.web_port) == ("python web.py", 8000)
    write(tmp_path, "conveyor.yaml", "worker: w\nweb:\n  command: python web.py\n  port: 0\n")
    with pytest.raises(ConfigError, match="conveyor.yaml:4: web port must be an integer from 1 to 65535"):
        load_project(tmp_path)


def test_several_hosts_keys_capacity_and_the_database(tmp_path: Path) -> None:
    write(tmp_path, "conveyor.yaml", "worker: python w.py\ninstances: {max: 6}\n")
    project = load_project(tmp_path)
    assert (project.max_per_host.value, project.database_url) == (6, None)  # one host may run them all
    assert "instances max" in project.max_per_host.where
    url = "postgresql://conveyor@db.internal:5432/conveyor"
    write(
        tmp_path,
        "conveyor.yaml",
        f"worker: python w.py\ninstances: {{max_per_host: 2}}\nqueue: {{database_url: {url}}}\n",
    )
    project = load_project(tmp_path)
    assert project.max_per_host.value == 2 and project.database_url is not None
    assert project.database_url.value == url and project.queue_settings == {}  # not an SQS attribute


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("queue: {database_url: mysql://db/x}", "conveyor.yaml:2: queue.database_url must be a PostgreSQL URL"),
        ("instances: {max_per_host: 0}", "instances max_per_host"),
    ],
)
def test_several_hosts_mistakes(tmp_path: Path, yaml: str, message: str) -> None:
    write(tmp_path, "conveyor.yaml", f"worker: python w.py\n{yaml}\n")
    with pytest.raises(ConfigError) as raised:
        load_project(tmp_path)
    assert message in raised.value.message, raised.value.message
