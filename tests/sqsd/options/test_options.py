"""The daemon's options: EB's names, defaults and ranges, every source, and the errors a user sees.

``resolve`` merges defaults < ``.ebextensions/*.config`` option_settings (namespace
``aws:elasticbeanstalk:sqsd``) < environment < flags and remembers where each value came from;
``describe`` is what ``conveyor sqsd --print-config`` prints. Each test builds its own project folder
and passes an explicit environ, so nothing here depends on the machine it runs on.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import EbOption, Setting, read_option_settings
from conveyor.errors import ConfigError
from conveyor.sqsd.options import BY_NAME, NAMESPACE, OPTIONS, Option, Resolved, SqsdConfig, describe, resolve

#: EB's documented defaults (reference/eb-worker-facts.md section 1). WorkerQueueURL has none: EB makes one.
EB_DEFAULTS: dict[str, Any] = {
    "WorkerQueueURL": "",
    "HttpPath": "/",
    "MimeType": "application/json",
    "HttpConnections": 50,
    "ConnectTimeout": 5,
    "InactivityTimeout": 299,
    "VisibilityTimeout": 300,
    "ErrorVisibilityTimeout": 2,
    "RetentionPeriod": 345600,
    "MaxRetries": 10,
}
#: EB's allowed ranges for the numeric options.
EB_RANGES: dict[str, tuple[int, int]] = {
    "HttpConnections": (1, 100),
    "ConnectTimeout": (1, 60),
    "InactivityTimeout": (1, 36000),
    "VisibilityTimeout": (0, 43200),
    "ErrorVisibilityTimeout": (0, 43200),
    "RetentionPeriod": (60, 1209600),
    "MaxRetries": (1, 100),
}
RANGED = [option for option in OPTIONS if option.low is not None]


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project folder whose ``.ebextensions`` holds ``files`` (name -> text, dedented)."""
    folder = tmp_path / ".ebextensions"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return tmp_path


def sqsd_config(*lines: str) -> str:
    """A .config in the mapping form: line 1 ``option_settings:``, line 2 the namespace, options from line 3."""
    return "option_settings:\n  aws:elasticbeanstalk:sqsd:\n" + "".join(f"    {line}\n" for line in lines)


def resolved(
    tmp_path: Path | None = None, environ: dict[str, str] | None = None, flags: dict[str, object] | None = None
) -> Resolved:
    return resolve(tmp_path, environ or {}, flags or {}, require_queue=False)


def refused(
    tmp_path: Path | None = None, environ: dict[str, str] | None = None, flags: dict[str, object] | None = None
) -> str:
    with pytest.raises(ConfigError) as caught:
        resolved(tmp_path, environ, flags)
    return caught.value.message


# -- defaults -------------------------------------------------------------------------------------


def test_eb_has_exactly_ten_options_and_conveyor_marks_its_own() -> None:
    assert [o.name for o in OPTIONS if o.eb] == list(EB_DEFAULTS)
    assert len({o.name.lower() for o in OPTIONS}) == len(OPTIONS) == len(BY_NAME)
    assert len({o.field for o in OPTIONS}) == len(OPTIONS)


@pytest.mark.parametrize("name", list(EB_DEFAULTS))
def test_every_default_is_ebs(tmp_path: Path, name: str) -> None:
    result = resolved(tmp_path)
    assert BY_NAME[name.lower()].default == EB_DEFAULTS[name]
    assert getattr(result.config, BY_NAME[name.lower()].field) == EB_DEFAULTS[name]
    assert result.sources[name] == "default"


@pytest.mark.parametrize("name", list(EB_RANGES))
def test_every_range_is_ebs(name: str) -> None:
    option = BY_NAME[name.lower()]
    assert (option.low, option.high) == EB_RANGES[name]


def test_every_number_has_a_range() -> None:
    for option in OPTIONS:
        if isinstance(option.default, int) and not isinstance(option.default, bool):
            assert option.low is not None and option.high is not None, option.name


def test_conveyor_additions_have_the_documented_defaults() -> None:
    config = resolved().config
    assert config.port == 80  # EB's sqsd always POSTs to port 80
    assert config.http_host == "127.0.0.1"
    assert (config.heartbeat, config.error_backoff, config.honor_retry_after) == (True, True, True)
    assert (config.hmac_secret, config.log_file, config.log_format, config.create_queue) == ("", "", "text", False)
    assert config.app_url == "http://127.0.0.1:80"


def test_sqsd_config_defaults_cannot_drift_from_the_options_table() -> None:
    """SqsdConfig() (used by code that builds a config directly) must equal what resolve gives with no input."""
    fields = {f.name: f for f in dataclasses.fields(SqsdConfig)}
    assert set(fields) == {o.field for o in OPTIONS}, "an option without a field, or a field without an option"
    bare = SqsdConfig()
    for option in OPTIONS:
        assert getattr(bare, option.field) == option.default, option.name
        assert type(getattr(bare, option.field)) is type(option.default), option.name
    assert resolved().config == bare


def test_every_source_is_default_without_input(tmp_path: Path) -> None:
    result = resolved(tmp_path)
    assert result.sources == {o.name: "default" for o in OPTIONS}


def test_a_queue_url_is_required_unless_told_otherwise(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, {}, {}, require_queue=True)
    message = caught.value.message
    for way in ("--worker-queue-url", "SQS_QUEUE_URL", "CONVEYOR_SQSD_WORKER_QUEUE_URL"):
        assert way in message
    assert resolve(tmp_path, {"SQS_QUEUE_URL": "http://127.0.0.1:1/0/q"}, {}).config.worker_queue_url


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "env", "flag"),
    [
        ("WorkerQueueURL", "CONVEYOR_SQSD_WORKER_QUEUE_URL", "--worker-queue-url"),
        ("HttpPath", "CONVEYOR_SQSD_HTTP_PATH", "--http-path"),
        ("MimeType", "CONVEYOR_SQSD_MIME_TYPE", "--mime-type"),
        ("HttpConnections", "CONVEYOR_SQSD_HTTP_CONNECTIONS", "--http-connections"),
        ("ConnectTimeout", "CONVEYOR_SQSD_CONNECT_TIMEOUT", "--connect-timeout"),
        ("InactivityTimeout", "CONVEYOR_SQSD_INACTIVITY_TIMEOUT", "--inactivity-timeout"),
        ("VisibilityTimeout", "CONVEYOR_SQSD_VISIBILITY_TIMEOUT", "--visibility-timeout"),
        ("ErrorVisibilityTimeout", "CONVEYOR_SQSD_ERROR_VISIBILITY_TIMEOUT", "--error-visibility-timeout"),
        ("RetentionPeriod", "CONVEYOR_SQSD_RETENTION_PERIOD", "--retention-period"),
        ("MaxRetries", "CONVEYOR_SQSD_MAX_RETRIES", "--max-retries"),
        ("HmacSecret", "CONVEYOR_SQSD_HMAC_SECRET", "--hmac-secret"),
    ],
)
def test_environment_and_flag_names(name: str, env: str, flag: str) -> None:
    option = BY_NAME[name.lower()]
    assert (option.env, option.flag) == (env, flag)


# -- precedence -----------------------------------------------------------------------------------


def test_each_level_overrides_the_one_below_and_says_so(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("HttpConnections: 10")})
    env = {"CONVEYOR_SQSD_HTTP_CONNECTIONS": "20"}

    from_file = resolved(tmp_path)
    assert from_file.config.http_connections == 10
    assert from_file.sources["HttpConnections"] == ".ebextensions/01.config:3"

    from_env = resolved(tmp_path, env)
    assert from_env.config.http_connections == 20
    assert from_env.sources["HttpConnections"] == "env CONVEYOR_SQSD_HTTP_CONNECTIONS"

    from_flag = resolved(tmp_path, env, {"HttpConnections": 30})
    assert from_flag.config.http_connections == 30
    assert from_flag.sources["HttpConnections"] == "flag --http-connections"

    # The other options keep their defaults and say so.
    assert from_flag.sources["VisibilityTimeout"] == "default"


def test_flags_left_unset_do_not_override(tmp_path: Path) -> None:
    """click passes None for every flag not given: None must leave the lower levels alone."""
    project(tmp_path, {"01.config": sqsd_config("HttpConnections: 10")})
    flags: dict[str, object] = {o.name: None for o in OPTIONS}
    result = resolved(tmp_path, {"CONVEYOR_SQSD_MAX_RETRIES": "7"}, flags)
    assert (result.config.http_connections, result.config.max_retries) == (10, 7)
    assert result.sources["HttpConnections"] == ".ebextensions/01.config:3"


def test_the_eb_guide_names_port_sqs_path_and_sqs_queue_url(tmp_path: Path) -> None:
    environ = {"PORT": "8080", "SQS_PATH": "/jobs", "SQS_QUEUE_URL": "http://127.0.0.1:9324/000000000000/q"}
    result = resolved(tmp_path, environ)
    assert (result.config.port, result.config.http_path) == (8080, "/jobs")
    assert result.config.worker_queue_url == "http://127.0.0.1:9324/000000000000/q"
    assert result.config.app_url == "http://127.0.0.1:8080"
    assert result.sources["Port"] == "env PORT"
    assert result.sources["HttpPath"] == "env SQS_PATH"
    assert result.sources["WorkerQueueURL"] == "env SQS_QUEUE_URL"


def test_conveyor_variables_win_over_the_eb_guide_names(tmp_path: Path) -> None:
    environ = {"PORT": "8080", "CONVEYOR_SQSD_PORT": "9090", "SQS_PATH": "/a", "CONVEYOR_SQSD_HTTP_PATH": "/b"}
    result = resolved(tmp_path, environ)
    assert (result.config.port, result.sources["Port"]) == (9090, "env CONVEYOR_SQSD_PORT")
    assert (result.config.http_path, result.sources["HttpPath"]) == ("/b", "env CONVEYOR_SQSD_HTTP_PATH")


def test_env_beats_the_file_and_flag_beats_env_for_the_eb_aliases(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("HttpPath: /from-file")})
    assert resolved(tmp_path).sources["HttpPath"] == ".ebextensions/01.config:3"
    result = resolved(tmp_path, {"SQS_PATH": "/from-env"})
    assert (result.config.http_path, result.sources["HttpPath"]) == ("/from-env", "env SQS_PATH")
    result = resolved(tmp_path, {"SQS_PATH": "/from-env"}, {"HttpPath": "/from-flag"})
    assert (result.config.http_path, result.sources["HttpPath"]) == ("/from-flag", "flag --http-path")


def test_empty_environment_variables_are_ignored(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 4")})
    result = resolved(tmp_path, {"CONVEYOR_SQSD_MAX_RETRIES": "", "PORT": "", "SQS_QUEUE_URL": ""})
    assert (result.config.max_retries, result.config.port, result.config.worker_queue_url) == (4, 80, "")
    assert result.sources["MaxRetries"] == ".ebextensions/01.config:3"


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    result = resolved(tmp_path, {"HTTP_CONNECTIONS": "3", "CONVEYOR_PORT": "1234", "VISIBILITY_TIMEOUT": "7"})
    assert result.config == SqsdConfig()


def test_later_config_files_override_earlier_ones_in_name_order(tmp_path: Path) -> None:
    # Written in reverse order, so a reader going by creation time would get it wrong.
    project(tmp_path, {"02-late.config": sqsd_config("# comment", "HttpConnections: 20")})
    project(tmp_path, {"01-early.config": sqsd_config("HttpConnections: 10", "MaxRetries: 3")})
    result = resolved(tmp_path)
    assert result.config.http_connections == 20
    assert result.sources["HttpConnections"] == ".ebextensions/02-late.config:4"
    assert (result.config.max_retries, result.sources["MaxRetries"]) == (3, ".ebextensions/01-early.config:4")


def test_name_order_is_lexical_like_eb(tmp_path: Path) -> None:
    project(tmp_path, {"9-sqsd.config": sqsd_config("MaxRetries: 9"), "10-sqsd.config": sqsd_config("MaxRetries: 10")})
    result = resolved(tmp_path)
    assert (result.config.max_retries, result.sources["MaxRetries"]) == (9, ".ebextensions/9-sqsd.config:3")


def test_within_one_file_the_last_setting_wins(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 3", "MaxRetries: 4")})
    result = resolved(tmp_path)
    assert (result.config.max_retries, result.sources["MaxRetries"]) == (4, ".ebextensions/01.config:4")


def test_only_dot_config_files_are_read(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "01.yaml": sqsd_config("MaxRetries: 3"),
            "02.config.bak": sqsd_config("MaxRetries: 4"),
            "03.json": sqsd_config("MaxRetries: 5"),
        },
    )
    assert resolved(tmp_path).sources["MaxRetries"] == "default"


def test_no_project_folder_or_no_ebextensions(tmp_path: Path) -> None:
    assert resolved(None).config == SqsdConfig()
    assert resolved(tmp_path).config == SqsdConfig()
    assert resolved(tmp_path / "missing").config == SqsdConfig()
    assert read_option_settings(tmp_path) == []


# -- the two option_settings forms ---------------------------------------------------------------


def test_list_form(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "01.config": """
                option_settings:
                  - namespace: aws:elasticbeanstalk:sqsd
                    option_name: HttpPath
                    value: /work
                  - option_name: VisibilityTimeout
                    namespace: aws:elasticbeanstalk:sqsd
                    value: 600
                  - namespace: aws:elasticbeanstalk:sqsd
                    option_name: MimeType
                    value: "text/plain"
            """
        },
    )
    result = resolved(tmp_path)
    assert (result.config.http_path, result.config.visibility_timeout_s, result.config.mime_type) == (
        "/work",
        600,
        "text/plain",
    )
    assert result.sources["HttpPath"] == ".ebextensions/01.config:2"
    assert result.sources["VisibilityTimeout"] == ".ebextensions/01.config:5"
    assert result.sources["MimeType"] == ".ebextensions/01.config:8"


def test_mapping_form(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "01.config": """
                option_settings:
                  aws:elasticbeanstalk:sqsd:
                    WorkerQueueURL: http://127.0.0.1:9324/000000000000/jobs
                    InactivityTimeout: 1800
                    ErrorVisibilityTimeout: 0
            """
        },
    )
    result = resolved(tmp_path)
    assert result.config.worker_queue_url == "http://127.0.0.1:9324/000000000000/jobs"
    assert (result.config.inactivity_timeout_s, result.config.error_visibility_timeout_s) == (1800, 0)
    assert result.sources["WorkerQueueURL"] == ".ebextensions/01.config:3"
    assert result.sources["InactivityTimeout"] == ".ebextensions/01.config:4"
    assert result.sources["ErrorVisibilityTimeout"] == ".ebextensions/01.config:5"


def test_json_config_files_are_read(tmp_path: Path) -> None:
    """EB accepts .config files written in JSON."""
    text = (
        '{\n  "option_settings": [\n'
        '    {"namespace": "aws:elasticbeanstalk:sqsd", "option_name": "HttpConnections", "value": "75"}\n  ]\n}\n'
    )
    (tmp_path / ".ebextensions").mkdir()
    (tmp_path / ".ebextensions" / "01.config").write_text(text)
    result = resolved(tmp_path)
    assert (result.config.http_connections, result.sources["HttpConnections"]) == (75, ".ebextensions/01.config:3")


def test_the_other_keys_of_a_config_file_do_not_matter(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "01.config": """
                packages:
                  yum:
                    git: []
                Resources:
                  Bucket:
                    Type: AWS::S3::Bucket
                    Properties:
                      BucketName: !Ref AWS::StackName
                commands:
                  01_hello:
                    command: echo hello
                option_settings:
                  aws:elasticbeanstalk:sqsd:
                    MaxRetries: 5
            """
        },
    )
    result = resolved(tmp_path)
    assert (result.config.max_retries, result.sources["MaxRetries"]) == (5, ".ebextensions/01.config:14")


def test_other_namespaces_are_ignored(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "01.config": """
                option_settings:
                  aws:elasticbeanstalk:application:environment:
                    PORT: 8080
                    HttpConnections: 3
                  aws:autoscaling:asg:
                    MinSize: 1
                    NoSuchThing: whatever
            """,
            "02.config": """
                option_settings:
                  - namespace: aws:elasticbeanstalk:environment
                    option_name: EnvironmentType
                    value: SingleInstance
                  - namespace: aws:elasticbeanstalk:sqsd:extra
                    option_name: Bogus
                    value: "1"
            """,
        },
    )
    result = resolved(tmp_path)
    assert result.config == SqsdConfig()
    assert set(result.sources.values()) == {"default"}
    # read_option_settings without a namespace sees them all, with where each was written.
    every = read_option_settings(tmp_path)
    assert EbOption("aws:autoscaling:asg", "MinSize", Setting("1", ".ebextensions/01.config:6")) in every
    assert EbOption("aws:elasticbeanstalk:sqsd:extra", "Bogus", Setting("1", ".ebextensions/02.config:5")) in every
    assert read_option_settings(tmp_path, NAMESPACE) == []


def test_read_option_settings_keeps_file_order_and_values_as_text(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "b.config": sqsd_config("MaxRetries: 3"),
            "a.config": """
                option_settings:
                  - namespace: aws:elasticbeanstalk:sqsd
                    option_name: VisibilityTimeout
                    value: 60
                  - namespace: aws:elasticbeanstalk:sqsd
                    option_name: HttpPath
                    value: '/x'
            """,
        },
    )
    assert read_option_settings(tmp_path, NAMESPACE) == [
        EbOption(NAMESPACE, "VisibilityTimeout", Setting("60", ".ebextensions/a.config:2")),
        EbOption(NAMESPACE, "HttpPath", Setting("/x", ".ebextensions/a.config:5")),
        EbOption(NAMESPACE, "MaxRetries", Setting("3", ".ebextensions/b.config:3")),
    ]


def test_empty_and_comment_only_files_are_fine(tmp_path: Path) -> None:
    project(tmp_path, {"00.config": "", "01.config": "# nothing yet\n", "02.config": "option_settings: []\n"})
    assert resolved(tmp_path).config == SqsdConfig()


def test_a_byte_order_mark_and_crlf_line_ends_are_fine(tmp_path: Path) -> None:
    """Editors on Windows write both."""
    (tmp_path / ".ebextensions").mkdir()
    text = "\ufeffoption_settings:\r\n  aws:elasticbeanstalk:sqsd:\r\n    MaxRetries: 6\r\n"
    (tmp_path / ".ebextensions" / "01.config").write_bytes(text.encode("utf-8"))
    result = resolved(tmp_path)
    assert (result.config.max_retries, result.sources["MaxRetries"]) == (6, ".ebextensions/01.config:3")


# -- refused values -------------------------------------------------------------------------------


def _bounds(option: Option) -> tuple[int, int]:
    assert option.low is not None and option.high is not None
    return option.low, option.high


@pytest.mark.parametrize("end", ["low", "high"])
@pytest.mark.parametrize("option", RANGED, ids=lambda o: o.name)
def test_every_range_is_enforced_at_both_ends_from_env_and_flags(option: Option, end: str) -> None:
    low, high = _bounds(option)
    outside = low - 1 if end == "low" else high + 1
    inside = low if end == "low" else high
    message = refused(environ={option.env: str(outside)})
    assert message.startswith(f"env {option.env}: ")
    assert f"{option.name} must be an integer from {low} to {high}" in message
    assert repr(str(outside)) in message
    message = refused(flags={option.name: outside})
    assert message.startswith(f"flag {option.flag}: ") and f"from {low} to {high}" in message
    # The ends themselves are allowed.
    assert getattr(resolved(environ={option.env: str(inside)}).config, option.field) == inside
    assert getattr(resolved(flags={option.name: inside}).config, option.field) == inside


@pytest.mark.parametrize("end", ["low", "high"])
@pytest.mark.parametrize("option", [o for o in RANGED if o.eb], ids=lambda o: o.name)
def test_every_eb_range_is_enforced_at_both_ends_in_config_files(tmp_path: Path, option: Option, end: str) -> None:
    low, high = _bounds(option)
    outside = low - 1 if end == "low" else high + 1
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 5", f"{option.name}: {outside}")})
    message = refused(tmp_path)
    assert message.startswith(".ebextensions/01.config:4: ")
    assert f"{option.name} must be an integer from {low} to {high}, not '{outside}'" in message
    inside = low if end == "low" else high
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 5", f"{option.name}: {inside}")})
    assert getattr(resolved(tmp_path).config, option.field) == inside


@pytest.mark.parametrize("value", ["ten", "1.5", "", "5s", "true"])
def test_numbers_must_be_integers(tmp_path: Path, value: str) -> None:
    project(tmp_path, {"01.config": sqsd_config(f"HttpConnections: '{value}'")})
    message = refused(tmp_path)
    assert message == (
        f".ebextensions/01.config:3: HttpConnections must be an integer from 1 to 100, not {value.strip()!r}."
    )


def test_an_empty_value_in_a_config_file_is_refused(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("MaxRetries:")})
    assert refused(tmp_path).startswith(".ebextensions/01.config:3: MaxRetries must be an integer from 1 to 100")


@pytest.mark.parametrize("value", ["maybe", "2", "yess", "enabled"])
def test_bad_booleans_are_refused(value: str) -> None:
    message = refused(environ={"CONVEYOR_SQSD_VISIBILITY_HEARTBEAT": value})
    expected = f"VisibilityHeartbeat must be true or false, not {value!r}."
    assert message == f"env CONVEYOR_SQSD_VISIBILITY_HEARTBEAT: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True)]
    + [("false", False), ("False", False), ("0", False), ("no", False), ("off", False)],
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    result = resolved(environ={"CONVEYOR_SQSD_ERROR_BACKOFF": text})
    assert result.config.error_backoff is expected
    assert result.sources["ErrorBackoff"] == "env CONVEYOR_SQSD_ERROR_BACKOFF"


def test_boolean_flags_from_click_are_taken_as_they_are() -> None:
    result = resolved(flags={"VisibilityHeartbeat": False, "CreateQueue": True})
    assert (result.config.heartbeat, result.config.create_queue) == (False, True)
    assert result.sources["VisibilityHeartbeat"] == "flag --visibility-heartbeat"


def test_bad_choices_are_refused_with_the_valid_ones() -> None:
    message = refused(environ={"CONVEYOR_SQSD_LOG_FORMAT": "xml"})
    assert message == "env CONVEYOR_SQSD_LOG_FORMAT: LogFormat must be one of text, json, not 'xml'."
    assert resolved(environ={"CONVEYOR_SQSD_LOG_FORMAT": "json"}).config.log_format == "json"


@pytest.mark.parametrize("path", ["work", "", " ", "http://localhost/work", "work/"])
def test_http_path_needs_a_leading_slash(tmp_path: Path, path: str) -> None:
    project(tmp_path, {"01.config": sqsd_config(f"HttpPath: '{path}'")})
    message = refused(tmp_path)
    assert message.startswith(".ebextensions/01.config:3: HttpPath must start with '/'")
    assert refused(environ={"SQS_PATH": "jobs"}).startswith("env SQS_PATH: HttpPath must start with '/'")


def test_any_mime_type_is_allowed_as_eb_does() -> None:
    result = resolved(environ={"CONVEYOR_SQSD_MIME_TYPE": "application/vnd.custom+json"})
    assert result.config.mime_type == "application/vnd.custom+json"


def test_an_unknown_option_in_the_sqsd_namespace_lists_the_valid_names(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 5", "HttpConnection: 5")})
    message = refused(tmp_path)
    assert message.startswith(
        f".ebextensions/01.config:4: unknown option 'HttpConnection' in {NAMESPACE}; did you mean 'HttpConnections'? "
    )
    valid = message.split("Valid options: ", 1)[1].rstrip(".").split(", ")
    assert valid == list(EB_DEFAULTS)


def test_conveyor_only_options_are_not_in_ebs_namespace(tmp_path: Path) -> None:
    """Port, DrainTimeout and the rest are conveyor's: EB would refuse them in its namespace, so do we."""
    project(
        tmp_path,
        {
            "01.config": """
                option_settings:
                  - namespace: aws:elasticbeanstalk:sqsd
                    option_name: DrainTimeout
                    value: 5
            """
        },
    )
    message = refused(tmp_path)
    assert message.startswith(".ebextensions/01.config:2: unknown option 'DrainTimeout' in aws:elasticbeanstalk:sqsd")
    assert "HttpConnections" in message


def test_the_first_bad_value_stops_everything_even_if_a_later_file_fixes_it(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 0"), "02.config": sqsd_config("MaxRetries: 5")})
    assert refused(tmp_path).startswith(".ebextensions/01.config:3: MaxRetries must be an integer from 1 to 100")


# -- malformed files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("option_settings:\n  aws:elasticbeanstalk:sqsd:\n    MaxRetries: [1, 2\n", 4),
        ("option_settings:\n  aws:elasticbeanstalk:sqsd:\n\tMaxRetries: 3\n", 3),
        ("option_settings:\n  - namespace: a\n   option_name: b\n", 3),
        ('{"option_settings": [\n  {"namespace": "x"}\n  {"namespace": "y"}\n]}\n', 3),
        ("a: 1\n---\nb: 2\n", 2),
    ],
    ids=["unclosed-list", "tab", "bad-indent", "bad-json", "two-documents"],
)
def test_malformed_yaml_names_the_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    project(tmp_path, {"01.config": sqsd_config("MaxRetries: 3"), "02-broken.config": text})
    message = refused(tmp_path)
    assert re.match(rf"\.ebextensions/02-broken\.config:{line}: not valid YAML or JSON \(.+\)\.$", message), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- option_settings\n", ".ebextensions/01.config:1: expected a mapping with option_settings at the top."),
        ("just words\n", ".ebextensions/01.config:1: expected a mapping with option_settings at the top."),
        (
            "option_settings: 5\n",
            ".ebextensions/01.config: option_settings must be a list or a mapping of namespaces.",
        ),
        (
            "option_settings:\n  - just-a-string\n",
            ".ebextensions/01.config:2: each option setting needs namespace, option_name and value.",
        ),
        (
            "option_settings:\n  - namespace: aws:elasticbeanstalk:sqsd\n    option_name: MaxRetries\n",
            ".ebextensions/01.config:2: option setting without value.",
        ),
        (
            "option_settings:\n  - value: 3\n",
            ".ebextensions/01.config:2: option setting without namespace, option_name.",
        ),
        (
            "option_settings:\n  aws:elasticbeanstalk:sqsd:\n    - MaxRetries: 3\n",
            ".ebextensions/01.config:3: the options of aws:elasticbeanstalk:sqsd must be a mapping of name: value.",
        ),
        (
            "option_settings:\n  aws:elasticbeanstalk:sqsd:\n    MaxRetries: [3]\n",
            ".ebextensions/01.config:3: a value must be a single value, not a list or mapping.",
        ),
        (
            "option_settings:\n  - namespace: aws:elasticbeanstalk:sqsd\n"
            "    option_name: MaxRetries\n    value: {a: 1}\n",
            ".ebextensions/01.config:4: value must be a single value, not a list or mapping.",
        ),
    ],
)
def test_malformed_option_settings_name_the_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    project(tmp_path, {"01.config": text})
    assert refused(tmp_path) == expected


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".ebextensions").mkdir()
    (tmp_path / ".ebextensions" / "01.config").write_bytes(b"option_settings:\n  \xff\xfe: 1\n")
    assert refused(tmp_path).startswith(".ebextensions/01.config: cannot be read (")


# -- describe -------------------------------------------------------------------------------------


def test_describe_lists_every_option_in_table_order_with_value_and_source(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("HttpConnections: 10")})
    result = resolved(tmp_path, {"PORT": "8080"}, {"VisibilityHeartbeat": False})
    rows = describe(result)
    assert [name for name, _, _ in rows] == [o.name for o in OPTIONS]
    by_name = {name: (value, source) for name, value, source in rows}
    assert by_name["HttpConnections"] == ("10", ".ebextensions/01.config:3")
    assert by_name["Port"] == ("8080", "env PORT")
    assert by_name["VisibilityHeartbeat"] == ("false", "flag --visibility-heartbeat")
    assert by_name["ErrorBackoff"] == ("true", "default")
    assert by_name["WorkerQueueURL"] == ("", "default")
    assert by_name["RetentionPeriod"] == ("345600", "default")


@pytest.mark.parametrize(
    ("environ", "flags", "source"),
    [
        ({"CONVEYOR_SQSD_HMAC_SECRET": "s3cr3t-value"}, {}, "env CONVEYOR_SQSD_HMAC_SECRET"),
        ({}, {"HmacSecret": "s3cr3t-value"}, "flag --hmac-secret"),
    ],
)
def test_describe_masks_secrets(environ: dict[str, str], flags: dict[str, object], source: str) -> None:
    result = resolved(None, environ, flags)
    assert result.config.hmac_secret == "s3cr3t-value"
    rows = describe(result)
    assert ("HmacSecret", "***", source) in rows
    assert not any("s3cr3t" in value for _, value, _ in rows)
    assert ("HmacSecret", "", "default") in describe(resolved())


def test_only_the_secret_is_masked() -> None:
    assert [o.name for o in OPTIONS if o.secret] == ["HmacSecret"]


# -- a project's own overrides (conveyor.yaml) ----------------------------------------------------


def test_project_overrides_sit_between_ebextensions_and_the_environment(tmp_path: Path) -> None:
    project(tmp_path, {"01.config": sqsd_config("HttpConnections: 10", "MaxRetries: 3")})
    overrides = [("HttpConnections", 15, "conveyor.yaml:4"), ("DrainTimeout", "7", "conveyor.yaml:5")]
    result = resolve(tmp_path, {}, {}, require_queue=False, overrides=overrides)
    assert (result.config.http_connections, result.sources["HttpConnections"]) == (15, "conveyor.yaml:4")
    # conveyor's own options are allowed there (the file is conveyor's, not EB's namespace).
    assert (result.config.drain_timeout_s, result.sources["DrainTimeout"]) == (7, "conveyor.yaml:5")
    assert result.sources["MaxRetries"] == ".ebextensions/01.config:4"
    env = {"CONVEYOR_SQSD_HTTP_CONNECTIONS": "20"}
    result = resolve(tmp_path, env, {}, require_queue=False, overrides=overrides)
    assert (result.config.http_connections, result.sources["HttpConnections"]) == (
        20,
        "env CONVEYOR_SQSD_HTTP_CONNECTIONS",
    )


def test_project_overrides_are_checked_like_every_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, {}, {}, require_queue=False, overrides=[("HttpConections", 5, "conveyor.yaml:2")])
    assert caught.value.message.startswith(
        "conveyor.yaml:2: unknown option 'HttpConections' in sqsd; did you mean 'HttpConnections'? "
    )
    assert "HttpConnections" in caught.value.message and "DrainTimeout" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, {}, {}, require_queue=False, overrides=[("MaxRetries", 0, "conveyor.yaml:3")])
    assert caught.value.message == "conveyor.yaml:3: MaxRetries must be an integer from 1 to 100, not 0."
