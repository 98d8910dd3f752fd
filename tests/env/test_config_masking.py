"""``conveyor config`` and the console's configuration page do not show secrets' values."""

from __future__ import annotations

from conveyor.config import shown_value
from conveyor.console.documents import ConfigSetting
from conveyor.env.project import Setting
from conveyor.env.views import masked
from conveyor.sqsd.options import describe, resolve

WHERE = ".ebextensions/env.config:4"


def setting(value: str) -> Setting:
    return Setting(value, WHERE)


def shown(value: str) -> ConfigSetting:
    return ConfigSetting(value, WHERE)


def test_values_of_variables_named_as_secrets_are_masked_where_they_came_from_stays() -> None:
    for name in (
        "DATABASE_PASSWORD",
        "stripe_api_key",
        "API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "SENTRY_DSN",
    ):
        assert masked(name, setting("hunter2")) == shown("***"), name
    for name in ("LOG_LEVEL", "THUMB_SIZES", "KEYBOARD_LAYOUT"):
        assert masked(name, setting("16,64")) == shown("16,64"), name
    assert masked("DB_PASSWORD", setting("")) == shown("")  # nothing to hide: shown as empty


def test_urls_keep_where_they_point_and_hide_what_they_carry() -> None:
    cases = {
        ("DATABASE_URL", "postgres://admin:hunter2@db:5432/app"): "postgres://admin:***@db:5432/***",
        ("REDIS_URL", "redis://:hunter2@redis:6379/0"): "redis://:***@redis:6379/***",
        ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/hunter2"): "https://hooks.slack.com/***",
        ("ORDERS_ENDPOINT", "https://orders.internal:8443"): "https://orders.internal:8443",
        ("HOME_PAGE_URL", "https://example.com/"): "https://example.com/",
        ("SLACK_WEBHOOK", "https://hooks.slack.com/services/T0/B0/hunter2"): "***",
        ("PAYMENTS_TOKEN", "hunter2"): "***",
        # A URL under any name: its password and its key-like query values are hidden, the rest is shown.
        ("UPSTREAM", "amqp://guest:hunter2@rabbit:5672/"): "amqp://guest:***@rabbit:5672/",
        ("CALLBACK", "https://x.example/cb?user=7&access_token=hunter2&sig=hunter2"): (
            "https://x.example/cb?user=7&access_token=***&sig=***"
        ),
        ("THUMB_SIZES", "16,64"): "16,64",
        # A password with an unencoded @ or / is hidden whole, not up to its first @ or /.
        ("BROKER", "amqp://u:p@ss@rabbit/vh"): "amqp://u:***@rabbit/vh",
        ("CACHE", "redis://:s3cr/et@cache:6379/0"): "redis://:***@cache:6379/0",
        ("DATABASE_URL", "postgres://admin:hun/ter2@db/app"): "postgres://admin:***@db/***",
    }
    for (name, value), hidden in cases.items():
        assert shown_value(name, value) == hidden, name
        assert masked(name, setting(value)) == shown(hidden), name


def test_sqsd_print_config_hides_a_queue_url_password_but_not_the_queue() -> None:
    environ = {"SQS_QUEUE_URL": "https://user:hunter2@sqs.example:9324/000000000000/jobs"}
    result = resolve(None, environ, {}, require_queue=False)
    rows = {option: value for option, value, _ in describe(result)}
    assert rows["WorkerQueueURL"] == "https://user:***@sqs.example:9324/000000000000/jobs"
