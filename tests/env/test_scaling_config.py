"""The autoscaler's policy as a project configures it: ``scaling:`` and ``instances:`` of conveyor.yaml, EB's asg."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.env.policies import DEFAULT_INTERVAL_S, DEFAULT_TARGET_BACKLOG
from conveyor.env.project import load_project
from conveyor.errors import ConfigError
from conveyor.scale import OldestAgeScaling, ScalingPolicy, StepScaling, TargetTracking


def policy_of(tmp_path: Path, yaml: str, **files: str) -> tuple[ScalingPolicy, float]:
    (tmp_path / "conveyor.yaml").write_text("worker: python w.py\n" + yaml)
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    project = load_project(tmp_path)
    return project.policy, project.scaling_interval_s


def test_defaults_are_target_tracking_every_ten_seconds(tmp_path: Path) -> None:
    policy, interval_s = policy_of(tmp_path, "")
    assert policy.target_tracking == TargetTracking(float(DEFAULT_TARGET_BACKLOG), count_in_flight=True)
    assert DEFAULT_TARGET_BACKLOG == 20
    assert policy.step is None and policy.oldest_age is None
    assert interval_s == DEFAULT_INTERVAL_S == 10.0
    # EB's aws:autoscaling:asg defaults: 1 to 4 instances, a 360 s cooldown.
    assert (policy.bounds.min_instances, policy.bounds.max_instances) == (1, 4)
    assert policy.scale_out_cooldown_s == policy.scale_in_cooldown_s == 360.0


def test_bounds_and_cooldown_come_from_instances(tmp_path: Path) -> None:
    policy, _ = policy_of(tmp_path, "instances:\n  min: 0\n  max: 7\n  cooldown: 45\n")
    assert (policy.bounds.min_instances, policy.bounds.max_instances) == (0, 7)
    assert policy.scale_out_cooldown_s == policy.scale_in_cooldown_s == 45.0


def test_bounds_and_cooldown_from_ebextensions_asg(tmp_path: Path) -> None:
    asg = "option_settings:\n  aws:autoscaling:asg:\n    MinSize: 2\n    MaxSize: 5\n    Cooldown: 90\n"
    policy, _ = policy_of(tmp_path, "", **{".ebextensions__asg.config": asg})
    assert (policy.bounds.min_instances, policy.bounds.max_instances) == (2, 5)
    assert policy.scale_in_cooldown_s == 90.0
    # conveyor.yaml wins over the EB file.
    policy, _ = policy_of(tmp_path, "instances:\n  cooldown: 3\n")
    assert policy.scale_out_cooldown_s == 3.0 and policy.bounds.max_instances == 5


def test_single_instance_environment(tmp_path: Path) -> None:
    policy, _ = policy_of(tmp_path, "instances: {min: 1, max: 1}\n")
    assert (policy.bounds.min_instances, policy.bounds.max_instances) == (1, 1)


def test_target_backlog_and_in_flight(tmp_path: Path) -> None:
    policy, _ = policy_of(tmp_path, "scaling:\n  target_backlog_per_instance: 50\n  count_in_flight: false\n")
    assert policy.target_tracking == TargetTracking(50.0, count_in_flight=False)


def test_latency_keys_derive_the_target_as_aws_does(tmp_path: Path) -> None:
    policy, _ = policy_of(tmp_path, "scaling:\n  acceptable_latency_s: 10\n  avg_processing_time_s: 0.1\n")
    assert policy.target_tracking is not None
    assert policy.target_tracking.target_backlog_per_instance == pytest.approx(100.0)


def test_step_policy_alone(tmp_path: Path) -> None:
    policy, _ = policy_of(
        tmp_path,
        "scaling:\n  step_upper_threshold: 100\n  step_lower_threshold: 5\n"
        "  breach_duration_s: 60\n  out_increment: 2\n",
    )
    assert policy.step == StepScaling(upper_threshold=100, lower_threshold=5, breach_duration_s=60.0, out_increment=2)
    assert policy.target_tracking is None


def test_step_policy_with_target_tracking_and_age(tmp_path: Path) -> None:
    policy, _ = policy_of(
        tmp_path,
        "scaling:\n  step_upper_threshold: 100\n  target_backlog_per_instance: 30\n  max_age_s: 120\n",
    )
    assert policy.step == StepScaling(upper_threshold=100)
    assert policy.target_tracking == TargetTracking(30.0)
    assert policy.oldest_age == OldestAgeScaling(120.0)


def test_age_policy_with_its_increment(tmp_path: Path) -> None:
    policy, _ = policy_of(tmp_path, "scaling:\n  max_age_s: 30\n  out_increment: 3\n")
    assert policy.oldest_age == OldestAgeScaling(30.0, out_increment=3)
    assert policy.target_tracking == TargetTracking(20.0)


def test_interval(tmp_path: Path) -> None:
    assert policy_of(tmp_path, "scaling:\n  interval_s: 0.5\n")[1] == 0.5


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("scaling:\n  colour: red\n", "conveyor.yaml:3: unknown key 'colour' in scaling. Valid keys: target_backlog"),
        ("scaling:\n  interval_s: 0.5\n  acceptable_latency_s: 10\n", "conveyor.yaml:4: scaling.acceptable_latency_s "),
        ("scaling:\n  avg_processing_time_s: 0.1\n", "conveyor.yaml:3: scaling.avg_processing_time_s needs"),
        (
            "scaling:\n  acceptable_latency_s: 10\n  avg_processing_time_s: 1\n  target_backlog_per_instance: 5\n",
            "conveyor.yaml:5: give either scaling.target_backlog_per_instance or acceptable_latency_s",
        ),
        ("scaling:\n  target_backlog_per_instance: lots\n", "conveyor.yaml:3: scaling.target_backlog_per_instance"),
        ("scaling:\n  target_backlog_per_instance: 0\n", "conveyor.yaml:3: TargetTracking.target_backlog_per_instance"),
        ("scaling:\n  target_backlog_per_instance: true\n", "conveyor.yaml:3: scaling.target_backlog_per_instance m"),
        ("scaling:\n  target_backlog_per_instance: [1]\n", "conveyor.yaml:3: scaling.target_backlog_per_instance must"),
        ("scaling:\n  acceptable_latency_s: -1\n  avg_processing_time_s: 1\n", "conveyor.yaml:3: target_backlog_from"),
        ("scaling:\n  count_in_flight: maybe\n", "conveyor.yaml:3: scaling.count_in_flight must be true or false"),
        ("scaling:\n  step_upper_threshold: 5\n  step_lower_threshold: 10\n", "conveyor.yaml:3: StepScaling.lower"),
        ("scaling:\n  step_upper_threshold: 2.5\n", "conveyor.yaml:3: scaling.step_upper_threshold must be an integer"),
        (
            "scaling:\n  max_age_s: 30\n  out_increment: 1.5\n",
            "conveyor.yaml:4: scaling.out_increment must be an integer",
        ),
        ("scaling:\n  breach_duration_s: 60\n", "conveyor.yaml:3: scaling.breach_duration_s is for the step policy"),
        ("scaling:\n  max_age_s: -1\n", "conveyor.yaml:3: OldestAgeScaling.max_age_s must be"),
        ("scaling:\n  interval_s: 0.01\n", "conveyor.yaml:3: scaling.interval_s must be a number from 0.1 to 3600"),
        ("scaling:\n  interval_s: .nan\n", "conveyor.yaml:3: scaling.interval_s must be a number from 0.1 to 3600"),
        ("scaling:\n  interval_s: soon\n", "conveyor.yaml:3: scaling.interval_s must be a number"),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        policy_of(tmp_path, yaml)
    assert message in excinfo.value.message
