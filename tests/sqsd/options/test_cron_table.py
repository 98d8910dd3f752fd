"""``CronTable``: the DynamoDB table the daemons' cron schedulers elect their leader in."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.sqsd.options import describe, resolve

QUEUE = {"SQS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"}


def test_cron_table_comes_from_the_environment_or_the_flag_and_is_printed_with_its_source() -> None:
    from_env = resolve(None, QUEUE | {"CONVEYOR_SQSD_CRON_TABLE": "env-stack-AWSEBWorkerCronLeaderRegistry-1"}, {})
    assert from_env.config.cron_table == "env-stack-AWSEBWorkerCronLeaderRegistry-1"
    row = next(r for r in describe(from_env) if r[0] == "CronTable")
    assert row == ("CronTable", "env-stack-AWSEBWorkerCronLeaderRegistry-1", "env CONVEYOR_SQSD_CRON_TABLE")
    from_flag = resolve(None, QUEUE | {"CONVEYOR_SQSD_CRON_TABLE": "a-table"}, {"CronTable": "off"})
    assert from_flag.config.cron_table == "off"
    assert resolve(None, QUEUE, {}).config.cron_table == ""


@pytest.mark.parametrize("bad", ["ab", "no spaces", "a/b", "x" * 256])
def test_a_bad_table_name_is_refused_with_what_is_valid(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"flag --cron-table: CronTable must be a DynamoDB table name \(3 to 255"):
        resolve(None, QUEUE, {"CronTable": bad})
