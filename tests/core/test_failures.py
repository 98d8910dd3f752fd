"""Failed deliveries grouped by cause (``core/failures.py``): one bad deploy is one group."""

from __future__ import annotations

from conveyor.core.failures import cause_of, group_failures
from conveyor.core.history import DeliveryAttempt


def failed(message_id: str, at_ms: int, status: int | None, kind: str, body: str | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(message_id, "work", "instance-1", at_ms, 5.0, status, kind, body)


def test_a_cause_is_the_status_and_the_first_line_of_the_answer_with_ids_blanked() -> None:
    assert cause_of(failed("a", 0, 500, "http-5xx", "\n  order 123456 failed \nTraceback")) == (
        "HTTP 500: order N failed"
    )
    same = cause_of(failed("b", 0, 500, "http-5xx", "order 123457 failed"))
    assert same == "HTTP 500: order N failed"
    uuid = "8f14e45f-ceea-467f-a0e6-1f2c3b4d5e6f"
    assert cause_of(failed("c", 0, 422, "http-4xx", f"message {uuid} is invalid")) == "HTTP 422: message … is invalid"
    assert cause_of(failed("d", 0, 502, "http-5xx", "")) == "HTTP 502"
    assert cause_of(failed("e", 0, 500, "http-5xx", "status 500 on port 8081")) == "HTTP 500: status 500 on port N"
    assert cause_of(failed("f", 0, None, "refused")) == "connection refused: nothing listens on the app's port"
    assert cause_of(failed("g", 0, None, "inactivity-timeout")) == "no answer within the inactivity timeout"
    assert cause_of(failed("h", 0, None, "something-new")) == "something-new"
    assert "x" * 121 not in cause_of(failed("i", 0, 500, "http-5xx", "x" * 500))


def test_groups_count_time_and_give_the_latest_examples() -> None:
    attempts = [failed(f"m{n}", n * 1000, 500, "http-5xx", f"db down ({10_000 + n})") for n in range(500)]
    attempts += [failed("t1", 600_000, None, "connect-timeout"), failed("t1", 601_000, None, "connect-timeout")]
    attempts.append(DeliveryAttempt("ok", "work", "instance-2", 700_000, 1.0, 200, None))
    db, timeout = sorted(group_failures(attempts), key=lambda g: g.count, reverse=True)
    assert (db.cause, db.count, db.status, db.kind) == ("HTTP 500: db down (N)", 500, 500, "http-5xx")
    assert (db.first_at_s, db.last_at_s) == (0.0, 499.0)
    assert db.message_ids == ("m499", "m498", "m497")
    assert (timeout.count, timeout.message_ids, timeout.status) == (2, ("t1",), None)  # one message, twice
    assert [g.cause for g in group_failures(attempts)][0] == timeout.cause  # the latest failure first
    assert group_failures([attempts[-1]]) == []
