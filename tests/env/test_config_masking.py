"""``conveyor config`` and the console's configuration page do not show secrets' values."""

from __future__ import annotations

from conveyor.env.operations import _masked


def setting(value: str) -> dict[str, object]:
    return {"value": value, "where": ".ebextensions/env.config:4"}


def test_values_of_variables_named_as_secrets_are_masked_where_they_came_from_stays() -> None:
    for name in (
        "DATABASE_PASSWORD",
        "stripe_api_key",
        "API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "SENTRY_DSN",
    ):
        assert _masked(name, setting("hunter2")) == {"value": "***", "where": ".ebextensions/env.config:4"}, name
    for name in ("LOG_LEVEL", "THUMB_SIZES", "KEYBOARD_LAYOUT"):
        assert _masked(name, setting("16,64")) == setting("16,64"), name
    assert _masked("DB_PASSWORD", setting("")) == setting("")  # nothing to hide: shown as empty
