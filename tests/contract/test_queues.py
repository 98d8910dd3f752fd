"""Queues: create, get, list, attributes, tags, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.models import MoveTask, VisibilityChange
from conveyor.store.protocol import Store

from .helpers import counts, create_queue, receive, redrive_policy, send, set_attributes

AWS_DEFAULTS = {
    "VisibilityTimeout": "30",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
    "MessageRetentionPeriod": "345600",
    "MaximumMessageSize": "1048576",
}


async def test_create_queue_fills_in_aws_defaults(store: Store) -> None:
    info = await store.create_queue("q", {}, {})
    assert info.name == "q"
    assert info.attributes.items() >= AWS_DEFAULTS.items()
    assert "RedrivePolicy" not in info.attributes


async def test_create_queue_keeps_given_attributes_and_defaults_the_rest(store: Store) -> None:
    info = await create_queue(store, "q", VisibilityTimeout=45, DelaySeconds=5)
    assert info.attributes["VisibilityTimeout"] == "45"
    assert info.attributes["DelaySeconds"] == "5"
    assert info.attributes["MessageRetentionPeriod"] == "345600"
    assert info.attributes["MaximumMessageSize"] == "1048576"


async def test_create_queue_records_tags_and_creation_time(store: Store, clock: FakeClock) -> None:
    info = await store.create_queue("q", {}, {"team": "core"})
    assert info.tags == {"team": "core"}
    assert info.created_at_s == int(clock.now())
    assert info.modified_at_s == int(clock.now())


async def test_get_queue_returns_what_create_returned(store: Store) -> None:
    created = await store.create_queue("q", {"VisibilityTimeout": "12"}, {"a": "1"})
    assert await store.get_queue("q") == created


async def test_create_existing_queue_raises_queue_name_exists(store: Store) -> None:
    await store.create_queue("q", {}, {})
    with pytest.raises(errors.QueueNameExists):
        await store.create_queue("q", {}, {})


async def test_create_existing_queue_leaves_it_unchanged(store: Store) -> None:
    before = await create_queue(store, "q", VisibilityTimeout=7)
    await send(store, "q", "kept")
    with pytest.raises(errors.QueueNameExists):
        await create_queue(store, "q", VisibilityTimeout=99)
    assert await store.get_queue("q") == before
    assert await counts(store, "q") == (1, 0, 0)


async def test_get_missing_queue_raises_queue_does_not_exist(store: Store) -> None:
    with pytest.raises(errors.QueueDoesNotExist):
        await store.get_queue("missing")


async def test_delete_missing_queue_raises_queue_does_not_exist(store: Store) -> None:
    with pytest.raises(errors.QueueDoesNotExist):
        await store.delete_queue("missing")


async def test_list_queues_is_sorted(store: Store) -> None:
    for name in ["b", "ab", "c", "a"]:
        await store.create_queue(name, {}, {})
    assert await store.list_queues() == ["a", "ab", "b", "c"]


async def test_list_queues_filters_by_prefix(store: Store) -> None:
    for name in ["orders-dlq", "billing", "orders", "order"]:
        await store.create_queue(name, {}, {})
    assert await store.list_queues("orders") == ["orders", "orders-dlq"]
    assert await store.list_queues("zzz") == []


async def test_list_queues_is_empty_without_queues(store: Store) -> None:
    assert await store.list_queues() == []


async def test_list_queues_omits_deleted_queues(store: Store) -> None:
    await store.create_queue("a", {}, {})
    await store.create_queue("b", {}, {})
    await store.delete_queue("a")
    assert await store.list_queues() == ["b"]


async def test_set_queue_attributes_merges_with_existing_ones(store: Store) -> None:
    await create_queue(store, "q", VisibilityTimeout=45, DelaySeconds=5)
    info = await set_attributes(store, "q", VisibilityTimeout=60)
    assert info.attributes["VisibilityTimeout"] == "60"
    assert info.attributes["DelaySeconds"] == "5"
    assert info.attributes["MessageRetentionPeriod"] == "345600"
    assert await store.get_queue("q") == info


async def test_set_queue_attributes_updates_modified_time_only(store: Store, clock: FakeClock) -> None:
    created = await store.create_queue("q", {}, {})
    clock.advance(100)
    info = await set_attributes(store, "q", DelaySeconds=3)
    assert info.modified_at_s == int(clock.now())
    assert info.created_at_s == created.created_at_s
    assert (await store.get_queue("q")).modified_at_s == int(clock.now())


async def test_set_queue_attributes_on_missing_queue_raises(store: Store) -> None:
    with pytest.raises(errors.QueueDoesNotExist):
        await set_attributes(store, "missing", DelaySeconds=3)


async def test_changed_visibility_timeout_applies_to_later_receives(store: Store, clock: FakeClock) -> None:
    await create_queue(store, "q", VisibilityTimeout=30)
    await set_attributes(store, "q", VisibilityTimeout=5)
    await send(store, "q", "m")
    assert len(await receive(store, "q")) == 1
    clock.advance(5)
    assert len(await receive(store, "q")) == 1


async def test_changed_delay_seconds_applies_to_later_sends(store: Store, clock: FakeClock) -> None:
    await create_queue(store, "q")
    await set_attributes(store, "q", DelaySeconds=10)
    await send(store, "q", "m")
    assert await counts(store, "q") == (0, 0, 1)


async def test_set_redrive_policy_is_kept(store: Store) -> None:
    await store.create_queue("dlq", {}, {})
    await store.create_queue("q", {}, {})
    info = await set_attributes(store, "q", RedrivePolicy=redrive_policy("dlq", 3))
    assert info.attributes["RedrivePolicy"] == (await store.get_queue("q")).attributes["RedrivePolicy"]
    assert '"maxReceiveCount":3' in info.attributes["RedrivePolicy"]


async def test_empty_redrive_policy_removes_it(store: Store) -> None:
    await store.create_queue("dlq", {}, {})
    await create_queue(store, "q", RedrivePolicy=redrive_policy("dlq", 3))
    info = await set_attributes(store, "q", RedrivePolicy="")
    assert "RedrivePolicy" not in info.attributes
    assert "RedrivePolicy" not in (await store.get_queue("q")).attributes


async def test_removed_redrive_policy_no_longer_moves_messages(store: Store) -> None:
    await store.create_queue("dlq", {}, {})
    await create_queue(store, "q", RedrivePolicy=redrive_policy("dlq", 1))
    await set_attributes(store, "q", RedrivePolicy="")
    await send(store, "q", "m")
    for expected_count in (1, 2, 3):
        [received] = await receive(store, "q", visibility_timeout_s=0)
        assert received.message.receive_count == expected_count
    assert await counts(store, "dlq") == (0, 0, 0)


async def test_tag_queue_adds_and_overwrites_tags(store: Store) -> None:
    await store.create_queue("q", {}, {"a": "1"})
    await store.tag_queue("q", {"b": "2"})
    await store.tag_queue("q", {"b": "3", "c": "4"})
    assert (await store.get_queue("q")).tags == {"a": "1", "b": "3", "c": "4"}


async def test_untag_queue_removes_given_keys_and_ignores_unknown_ones(store: Store) -> None:
    await store.create_queue("q", {}, {"a": "1", "b": "2", "c": "3"})
    await store.untag_queue("q", ["a", "c", "not-a-tag"])
    assert (await store.get_queue("q")).tags == {"b": "2"}


async def test_tags_do_not_change_attributes(store: Store) -> None:
    created = await create_queue(store, "q", VisibilityTimeout=9)
    await store.tag_queue("q", {"k": "v"})
    await store.untag_queue("q", ["k"])
    assert (await store.get_queue("q")).attributes == created.attributes


async def test_delete_queue_removes_it(store: Store) -> None:
    await store.create_queue("q", {}, {})
    await store.delete_queue("q")
    with pytest.raises(errors.QueueDoesNotExist):
        await store.get_queue("q")


async def test_a_name_deleted_less_than_60_s_ago_cannot_be_created_again(store: Store, clock: FakeClock) -> None:
    await store.create_queue("q", {}, {})
    await store.create_queue("other", {}, {})
    await store.delete_queue("q")
    clock.advance(59)
    with pytest.raises(errors.QueueDeletedRecently):
        await store.create_queue("q", {}, {})
    with pytest.raises(errors.QueueDoesNotExist):
        await store.get_queue("q")
    await store.create_queue("q2", {}, {})  # other names are free
    clock.advance(1)
    await store.create_queue("q", {}, {})
    await store.delete_queue("q")
    with pytest.raises(errors.QueueDeletedRecently):  # deleted again: 60 s again
        await store.create_queue("q", {}, {})


async def test_recreated_queue_is_empty(store: Store, clock: FakeClock) -> None:
    await store.create_queue("q", {}, {"old": "tag"})
    await send(store, "q", "a", "b")
    await send(store, "q", "delayed", delay_s=30)
    await receive(store, "q", 1)
    await store.delete_queue("q")
    clock.advance(60)
    info = await store.create_queue("q", {}, {})
    assert info.tags == {}
    assert await counts(store, "q") == (0, 0, 0)
    assert await receive(store, "q") == []


async def test_recreated_queue_has_fresh_attributes(store: Store, clock: FakeClock) -> None:
    await create_queue(store, "q", VisibilityTimeout=5)
    await store.delete_queue("q")
    clock.advance(60)
    info = await store.create_queue("q", {}, {})
    assert info.attributes["VisibilityTimeout"] == "30"


async def test_deleting_a_queue_leaves_other_queues_alone(store: Store) -> None:
    await store.create_queue("a", {}, {})
    await store.create_queue("b", {}, {})
    await send(store, "a", "a1")
    await send(store, "b", "b1", "b2")
    await store.delete_queue("a")
    assert await counts(store, "b") == (2, 0, 0)


OPERATIONS: dict[str, Callable[[Store], Awaitable[object]]] = {
    "get_queue": lambda s: s.get_queue("q"),
    "delete_queue": lambda s: s.delete_queue("q"),
    "set_queue_attributes": lambda s: s.set_queue_attributes("q", {"DelaySeconds": "1"}),
    "tag_queue": lambda s: s.tag_queue("q", {"a": "b"}),
    "untag_queue": lambda s: s.untag_queue("q", ["a"]),
    "purge_queue": lambda s: s.purge_queue("q"),
    "send_messages": lambda s: send(s, "q", "m"),
    "receive_messages": lambda s: s.receive_messages("q", 1, None, 0),
    "long_poll_receive": lambda s: s.receive_messages("q", 1, None, 0.2),
    "delete_messages": lambda s: s.delete_messages("q", ["not-a-handle"]),
    "change_visibility": lambda s: s.change_visibility("q", [VisibilityChange("not-a-handle", 0)]),
    "queue_counts": lambda s: s.queue_counts("q"),
    "move_messages_from": lambda s: s.move_messages("q", "other", 10),
    "move_messages_to": lambda s: s.move_messages("other", "q", 10),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_operations_on_a_deleted_queue_raise_queue_does_not_exist(store: Store, operation: str) -> None:
    await store.create_queue("other", {}, {})
    await store.create_queue("q", {}, {})
    await send(store, "q", "m")
    await store.delete_queue("q")
    with pytest.raises(errors.QueueDoesNotExist):
        await OPERATIONS[operation](store)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_operations_on_a_never_created_queue_raise_queue_does_not_exist(store: Store, operation: str) -> None:
    await store.create_queue("other", {}, {})
    with pytest.raises(errors.QueueDoesNotExist):
        await OPERATIONS[operation](store)


async def test_move_tasks_are_listed_newest_first(store: Store) -> None:
    older = MoveTask("t1", "dlq", None, None, "COMPLETED", 3, 3, 1_000)
    newest = MoveTask("t3", "dlq", "other", 100, "RUNNING", 0, 5, 3_000)
    middle = MoveTask("t2", "dlq", None, None, "CANCELLED", 1, 4, 2_000, failure_reason=None)
    for task in (older, newest, middle):
        await store.save_move_task(task)
    assert await store.list_move_tasks() == [newest, middle, older]


async def test_saving_a_move_task_again_replaces_it(store: Store) -> None:
    task = MoveTask("t1", "dlq", None, None, "RUNNING", 0, 5, 1_000)
    await store.save_move_task(task)
    done = MoveTask("t1", "dlq", None, None, "FAILED", 2, 5, 1_000, failure_reason="destination gone")
    await store.save_move_task(done)
    assert await store.list_move_tasks() == [done]


async def test_no_move_tasks_at_first(store: Store) -> None:
    assert await store.list_move_tasks() == []
