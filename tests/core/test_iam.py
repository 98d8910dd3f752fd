"""IAM policies over SQS (``conveyor.core.iam``): parsing, matching, the evaluation order, the action mapping."""

from __future__ import annotations

import json
from typing import Any

import botocore.loaders
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor import errors
from conveyor.core import iam_actions, permissions
from conveyor.core.iam import Decision, Policy, decide, may_list, parse_policy
from conveyor.errors import ConfigError

ACCOUNT = "000000000000"
OTHER = "111122223333"
REGION = "us-east-1"
WEB = f"arn:aws:iam::{ACCOUNT}:user/web"
WORKER = f"arn:aws:iam::{ACCOUNT}:user/worker"
STRANGER = f"arn:aws:iam::{OTHER}:user/web"
JOBS = f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs"
JOBS_DLQ = f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs-dlq"
REPORTS = f"arn:aws:sqs:{REGION}:{ACCOUNT}:reports"
WHERE = "credentials file, principal web"


def statement(
    effect: str = "Allow", action: Any = "sqs:SendMessage", resource: Any = JOBS, **more: Any
) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **more}


def policy(*statements: dict[str, Any], kind: Any = None) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, where=WHERE, kind=kind)


def allowed(principal: str, action: str, resource: str, identity: list[Policy], queue: Policy | None = None) -> bool:
    return decide(principal, action, resource, identity, queue) is Decision.ALLOW


# --- parsing --------------------------------------------------------------------------------------------------

REFUSED = [
    ("not json {", "is not JSON"),
    ("[1, 2]", "not a JSON object"),
    ({"Statement": [], "Extra": 1}, "unknown element(s) Extra"),
    ({"Version": "2020-01-01", "Statement": []}, "Version '2020-01-01'"),
    ({"Version": "2012-10-17"}, "has no Statement"),
    ({"Statement": ["Allow"]}, "statement 1: it is str, not an object"),
    ({"Statement": [statement(Sid="a"), statement(Effect="allow", Sid="b")]}, "statement 2 (Sid 'b'): Effect 'allow'"),
    ({"Statement": [statement(Effect=None)]}, "Effect None is neither Allow nor Deny"),
    ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "it has no Action (nor NotAction)"),
    ({"Statement": [statement(NotAction="sqs:*")]}, "both Action and NotAction"),
    ({"Statement": [statement(action=[])]}, "Action is an empty list"),
    ({"Statement": [statement(action="SendMessage")]}, "Action 'SendMessage' is not an action"),
    ({"Statement": [statement(action=["sqs:SendMessage", 7])]}, "Action holds 7"),
    ({"Statement": [{"Effect": "Allow", "Action": "sqs:*"}]}, "it has no Resource (nor NotResource)"),
    ({"Statement": [statement(resource="jobs")]}, "Resource 'jobs' is neither * nor an ARN"),
    ({"Statement": [statement(resource="arn:aws:sqs:jobs")]}, "is neither * nor an ARN"),
    ({"Statement": [statement(resource=JOBS, NotResource="*")]}, "both Resource and NotResource"),
    ({"Statement": [statement(Principal="someone")]}, "Principal 'someone' is not"),
    ({"Statement": [statement(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/*"})]}, "no wildcards inside a name"),
    ({"Statement": [statement(Principal={"AWS": "12345"})]}, "Principal AWS '12345' is not a principal"),
    ({"Statement": [statement(Principal={"Users": "x"})]}, "Principal has the key 'Users'"),
    ({"Statement": [statement(Sid=3)]}, "Sid 3 is not a string"),
    ({"Statement": [statement(Sid="same"), statement(Sid="same")]}, "the Sid 'same' is used twice"),
    ({"Statement": [statement(Cond=1)]}, "unknown element(s) Cond"),
    ({"Statement": [statement(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]}, "operator 'IpAddress'"),
    ({"Statement": [statement(Condition={"Bool": {"aws:SecureTransport": "false"}})]}, "operator 'Bool'"),
    (
        {"Statement": [statement(Condition={"ForAnyValue:StringEquals": {"aws:username": "x"}})]},
        "operator 'ForAnyValue:StringEquals'",
    ),
    ({"Statement": [statement(Condition={"StringEquals": {"aws:SourceVpce": "v"}})]}, "key 'aws:SourceVpce'"),
    ({"Statement": [statement(Condition={"StringEquals": {"aws:username": ["a", {}]}})]}, "holds {}"),
    ({"Statement": [statement(Condition={"StringEquals": {"aws:username": []}})]}, "has no value"),
    ({"Statement": [statement(Condition={"Null": {"aws:SourceArn": "maybe"}})]}, "must be true or false"),
    ({"Statement": [statement(Condition=["x"])]}, "Condition ['x'] is not an object"),
    (
        {"Version": "2012-10-17", "Statement": [statement(resource="arn:aws:sqs:*:*:${aws:username}")]},
        "policy variable",
    ),
]


@pytest.mark.parametrize(("document", "what"), REFUSED)
def test_every_mistake_is_refused_naming_where_and_what(document: Any, what: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_policy(document if isinstance(document, str) else json.dumps(document), where=WHERE)
    assert refused.value.message.startswith(f"{WHERE}: the policy is invalid: ")
    assert what in refused.value.message


def test_an_identity_policy_names_no_principal_and_a_queue_policy_always_does() -> None:
    with pytest.raises(ConfigError, match="an identity policy names no Principal"):
        policy(statement(Principal="*"), kind="identity")
    with pytest.raises(ConfigError, match="queue jobs Policy attribute: .*statement 1: it has no Principal"):
        parse_policy({"Statement": [statement()]}, where="queue jobs Policy attribute", kind="resource")
    assert policy(statement(), kind="identity").kind == "identity"
    assert policy(statement(Principal="*"), kind="resource").kind == "resource"


def test_a_single_statement_object_and_a_missing_version_are_accepted() -> None:
    parsed = parse_policy(json.dumps({"Id": "p", "Statement": statement()}), where=WHERE)
    assert (parsed.version, parsed.id, len(parsed.statements)) == ("2008-10-17", "p", 1)
    assert allowed(WEB, "sqs:SendMessage", JOBS, [parsed])
    # Under 2008-10-17 a policy variable is plain text, as IAM reads it.
    literal = parse_policy({"Statement": statement(resource="arn:aws:sqs:*:*:${x}")}, where=WHERE)
    assert allowed(WEB, "sqs:SendMessage", "arn:aws:sqs:r:1:${x}", [literal])


# --- matching ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "match"),
    [
        ("sqs:SendMessage", "sqs:SendMessage", True),
        ("sqs:SendMessage", "sqs:SendMessageBatch", False),
        ("sqs:Send*", "sqs:SendMessage", True),
        ("sqs:Receive*", "sqs:SendMessage", False),
        ("sqs:*", "sqs:PurgeQueue", True),
        ("*", "sqs:PurgeQueue", True),
        ("sqs:?eceiveMessage", "sqs:ReceiveMessage", True),
        ("sqs:?eceiveMessage", "sqs:eceiveMessage", False),
        ("sqs:*Message", "sqs:DeleteMessage", True),
        ("sqs:*Message", "sqs:DeleteQueue", False),
        ("s3:*", "sqs:SendMessage", False),
        ("SQS:SENDMESSAGE", "sqs:SendMessage", True),  # actions match whatever their case
        ("sqs:sendmessage", "sqs:SendMessage", True),
        ("sqs:send*", "SQS:SendMessage", True),
    ],
)
def test_actions_match_with_wildcards_and_whatever_the_case(pattern: str, action: str, match: bool) -> None:
    assert allowed(WEB, action, JOBS, [policy(statement(action=pattern))]) is match


@pytest.mark.parametrize(
    ("pattern", "resource", "match"),
    [
        (JOBS, JOBS, True),
        (JOBS, JOBS_DLQ, False),
        ("*", JOBS, True),
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:*", REPORTS, True),
        (f"arn:aws:sqs:*:{ACCOUNT}:jobs", JOBS, True),
        (f"arn:aws:sqs:*:{OTHER}:jobs", JOBS, False),
        ("arn:aws:sqs:*:*:jobs*", JOBS_DLQ, True),
        ("arn:aws:sqs:*:*:jobs-???", JOBS_DLQ, True),
        ("arn:aws:sqs:*:*:jobs-??", JOBS_DLQ, False),
        ("arn:aws:sqs:*:*:jobs?dlq", JOBS_DLQ, True),
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:Jobs", JOBS, False),  # resources are case-sensitive
        (f"arn:aws:SQS:{REGION}:{ACCOUNT}:jobs", JOBS, False),
        # A wildcard stays inside its ARN segment: this one cannot swallow region and account.
        ("arn:aws:sqs:us-*:jobs", JOBS, False),
        ("arn:aws:sqs:us-*:*:jobs", JOBS, True),
        ("arn:aws:sqs:*:000000000000:j.bs", JOBS, False),
    ],
)
def test_resources_match_with_wildcards_and_case(pattern: str, resource: str, match: bool) -> None:
    if pattern != "*" and pattern.count(":") < 5:
        with pytest.raises(ConfigError, match="neither \\* nor an ARN"):
            parse_policy({"Statement": statement(resource=pattern)}, where=WHERE)
        assert not match
        return
    parsed = parse_policy({"Statement": statement(resource=pattern)}, where=WHERE)
    assert allowed(WEB, "sqs:SendMessage", resource, [parsed]) is match


def test_lists_of_actions_and_resources_allow_each_entry() -> None:
    granted = policy(statement(action=["sqs:SendMessage", "sqs:GetQueueUrl"], resource=[JOBS, REPORTS]))
    for action in ("sqs:SendMessage", "sqs:GetQueueUrl"):
        for resource in (JOBS, REPORTS):
            assert allowed(WEB, action, resource, [granted])
    assert not allowed(WEB, "sqs:ReceiveMessage", JOBS, [granted])
    assert not allowed(WEB, "sqs:SendMessage", JOBS_DLQ, [granted])


def test_not_action_and_not_resource_cover_everything_but_what_they_name() -> None:
    all_but_purge = policy({"Effect": "Allow", "NotAction": ["sqs:PurgeQueue", "sqs:Delete*"], "Resource": "*"})
    assert allowed(WEB, "sqs:SendMessage", JOBS, [all_but_purge])
    assert not allowed(WEB, "sqs:PurgeQueue", JOBS, [all_but_purge])
    assert not allowed(WEB, "sqs:DeleteQueue", JOBS, [all_but_purge])
    all_but_dlq = policy({"Effect": "Allow", "Action": "sqs:*", "NotResource": "arn:aws:sqs:*:*:*-dlq"})
    assert allowed(WEB, "sqs:ReceiveMessage", JOBS, [all_but_dlq])
    assert not allowed(WEB, "sqs:ReceiveMessage", JOBS_DLQ, [all_but_dlq])
    # A Deny with NotAction: everything else is denied, even what another statement allows.
    only_send = policy(statement(action="sqs:*"), {"Effect": "Deny", "NotAction": "sqs:SendMessage", "Resource": "*"})
    assert decide(WEB, "sqs:SendMessage", JOBS, [only_send], None) is Decision.ALLOW
    assert decide(WEB, "sqs:ReceiveMessage", JOBS, [only_send], None) is Decision.EXPLICIT_DENY


# --- the evaluation order ------------------------------------------------------------------------------------


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert decide(WEB, "sqs:SendMessage", JOBS, [], None) is Decision.IMPLICIT_DENY
    assert decide(WEB, "sqs:SendMessage", JOBS, [policy()], None) is Decision.IMPLICIT_DENY
    assert decide(WEB, "sqs:PurgeQueue", JOBS, [policy(statement())], None) is Decision.IMPLICIT_DENY


def test_deny_wins_over_allow_in_the_same_policy_whatever_the_order() -> None:
    deny = statement("Deny", "sqs:Send*", JOBS)
    allow = statement("Allow", "sqs:*", "*")
    for order in ((allow, deny), (deny, allow)):
        assert decide(WEB, "sqs:SendMessage", JOBS, [policy(*order)], None) is Decision.EXPLICIT_DENY
        assert decide(WEB, "sqs:SendMessage", REPORTS, [policy(*order)], None) is Decision.ALLOW


def test_deny_wins_over_allow_in_another_policy() -> None:
    allow, deny = policy(statement("Allow", "*", "*")), policy(statement("Deny", "sqs:PurgeQueue", "*"))
    for identity in ([allow, deny], [deny, allow]):
        assert decide(WEB, "sqs:PurgeQueue", JOBS, identity, None) is Decision.EXPLICIT_DENY
        assert decide(WEB, "sqs:SendMessage", JOBS, identity, None) is Decision.ALLOW
    queue_denies = policy(statement("Deny", "sqs:PurgeQueue", JOBS, Principal="*"), kind="resource")
    assert decide(WEB, "sqs:PurgeQueue", JOBS, [allow], queue_denies) is Decision.EXPLICIT_DENY
    queue_allows = policy(statement("Allow", "sqs:*", JOBS, Principal="*"), kind="resource")
    assert decide(WEB, "sqs:PurgeQueue", JOBS, [deny], queue_allows) is Decision.EXPLICIT_DENY


def test_the_queue_policy_allows_on_its_own() -> None:
    queue = policy(statement("Allow", "sqs:ReceiveMessage", JOBS, Principal={"AWS": WORKER}), kind="resource")
    assert decide(WORKER, "sqs:ReceiveMessage", JOBS, [], queue) is Decision.ALLOW
    assert decide(WORKER, "sqs:DeleteMessage", JOBS, [], queue) is Decision.IMPLICIT_DENY
    assert decide(WEB, "sqs:ReceiveMessage", JOBS, [], queue) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize("root", [f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, [ACCOUNT, OTHER]])
def test_a_queue_policy_naming_the_account_root_applies_to_every_principal_of_that_account(root: Any) -> None:
    queue = policy(statement("Allow", "sqs:SendMessage", JOBS, Principal={"AWS": root}), kind="resource")
    assert allowed(WEB, "sqs:SendMessage", JOBS, [], queue)
    assert allowed(WORKER, "sqs:SendMessage", JOBS, [], queue)
    other_user = f"arn:aws:iam::{ACCOUNT}:user/team/ops"
    assert allowed(other_user, "sqs:SendMessage", JOBS, [], queue)
    stranger_allowed = allowed(STRANGER, "sqs:SendMessage", JOBS, [], queue)
    assert stranger_allowed is (isinstance(root, list) and OTHER in root)


def test_a_queue_policy_naming_a_user_applies_to_that_user_only() -> None:
    queue = policy(statement("Deny", "sqs:*", JOBS, Principal={"AWS": [WORKER]}), kind="resource")
    everyone = [policy(statement("Allow", "*", "*"))]
    assert decide(WORKER, "sqs:ReceiveMessage", JOBS, everyone, queue) is Decision.EXPLICIT_DENY
    assert decide(WEB, "sqs:ReceiveMessage", JOBS, everyone, queue) is Decision.ALLOW
    # Same name in another account is another user.
    assert decide(f"arn:aws:iam::{OTHER}:user/worker", "sqs:ReceiveMessage", JOBS, everyone, queue) is Decision.ALLOW


def test_principal_star_and_not_principal() -> None:
    for star in ("*", {"AWS": "*"}):
        queue = policy(statement("Allow", "sqs:SendMessage", JOBS, Principal=star), kind="resource")
        assert allowed(STRANGER, "sqs:SendMessage", JOBS, [], queue)
    all_but_web = policy(statement("Deny", "sqs:SendMessage", JOBS, NotPrincipal={"AWS": WEB}), kind="resource")
    anything = [policy(statement("Allow", "*", "*"))]
    assert decide(WEB, "sqs:SendMessage", JOBS, anything, all_but_web) is Decision.ALLOW
    assert decide(WORKER, "sqs:SendMessage", JOBS, anything, all_but_web) is Decision.EXPLICIT_DENY
    # A service principal is never a conveyor caller: its Allow grants nothing here.
    sns = policy(statement("Allow", "sqs:SendMessage", JOBS, Principal={"Service": "sns.amazonaws.com"}))
    assert not allowed(WEB, "sqs:SendMessage", JOBS, [], sns)


def test_a_queue_policy_statement_without_principal_grants_nobody_and_its_deny_covers_everybody() -> None:
    # Read without kind (e.g. a Policy stored before it was checked), it must not grant more than it says.
    loose = policy(statement("Allow", "sqs:SendMessage", JOBS), statement("Deny", "sqs:PurgeQueue", JOBS))
    anything = [policy(statement("Allow", "*", "*"))]
    assert decide(WEB, "sqs:SendMessage", JOBS, [], loose) is Decision.IMPLICIT_DENY
    assert decide(WEB, "sqs:PurgeQueue", JOBS, anything, loose) is Decision.EXPLICIT_DENY


def test_what_add_permission_writes_grants_what_it_says() -> None:
    written = permissions.added(None, JOBS, "web-send", [ACCOUNT], ["SendMessage", "GetQueueUrl"])
    written = permissions.added(written, JOBS, "partner", [OTHER], ["ReceiveMessage"])
    written = permissions.added(written, JOBS, "all", [ACCOUNT, OTHER], ["GetQueueAttributes"])
    document = json.loads(written)
    assert document["Statement"][0] == {
        "Sid": "web-send",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["SQS:SendMessage", "SQS:GetQueueUrl"],
        "Resource": JOBS,
    }
    queue = parse_policy(written, where="queue jobs Policy attribute", kind="resource")
    assert allowed(WEB, "sqs:SendMessage", JOBS, [], queue)
    assert allowed(WORKER, "sqs:GetQueueUrl", JOBS, [], queue)
    assert not allowed(WEB, "sqs:ReceiveMessage", JOBS, [], queue)
    assert allowed(STRANGER, "sqs:ReceiveMessage", JOBS, [], queue)
    assert not allowed(STRANGER, "sqs:SendMessage", JOBS, [], queue)
    assert allowed(STRANGER, "sqs:GetQueueAttributes", JOBS, [], queue)
    assert not allowed(WEB, "sqs:SendMessage", REPORTS, [], queue)  # the statements name this queue only
    every_action = parse_policy(permissions.added(None, JOBS, "x", [ACCOUNT], ["*"]), where="q", kind="resource")
    assert allowed(WEB, "sqs:PurgeQueue", JOBS, [], every_action)


# --- conditions ------------------------------------------------------------------------------------------------


def test_source_conditions_hold_only_as_iam_says_for_an_absent_key() -> None:
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:events"
    only_from_topic = policy(
        statement("Allow", "sqs:SendMessage", JOBS, Principal="*", Condition={"ArnEquals": {"aws:SourceArn": topic}}),
        kind="resource",
    )
    assert not allowed(WEB, "sqs:SendMessage", JOBS, [], only_from_topic)  # a caller's own request has no source
    not_from_elsewhere = policy(
        statement("Deny", "sqs:*", JOBS, Principal="*", Condition={"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}),
        kind="resource",
    )
    anything = [policy(statement("Allow", "*", "*"))]
    assert decide(WEB, "sqs:SendMessage", JOBS, anything, not_from_elsewhere) is Decision.EXPLICIT_DENY
    # ...IfExists holds when the key is absent: this Deny applies to a caller's own request.
    if_exists = policy(
        statement("Deny", "sqs:*", JOBS, Principal="*", Condition={"ArnNotLikeIfExists": {"aws:SourceArn": topic}}),
        kind="resource",
    )
    assert decide(WEB, "sqs:SendMessage", JOBS, anything, if_exists) is Decision.EXPLICIT_DENY
    from_account_if_any = policy(
        statement(Condition={"StringEqualsIfExists": {"aws:SourceAccount": OTHER}}),
        statement("Allow", "sqs:PurgeQueue", Condition={"StringEquals": {"aws:SourceAccount": OTHER}}),
    )
    assert allowed(WEB, "sqs:SendMessage", JOBS, [from_account_if_any])
    assert not allowed(WEB, "sqs:PurgeQueue", JOBS, [from_account_if_any])
    # A positive match on an absent key is false (this Deny does not apply); Null true holds (this Allow does).
    absent = policy(
        statement("Deny", "sqs:*", JOBS, Principal="*", Condition={"ArnLike": {"aws:SourceArn": "*"}}),
        statement("Allow", "sqs:*", JOBS, Principal="*", Condition={"Null": {"aws:SourceArn": "true"}}),
        kind="resource",
    )
    assert decide(WEB, "sqs:SendMessage", JOBS, [], absent) is Decision.ALLOW
    must_have_source = policy(statement(Condition={"Null": {"aws:SourceArn": False}}))
    assert not allowed(WEB, "sqs:SendMessage", JOBS, [must_have_source])


def test_principal_conditions() -> None:
    by_name = policy(statement(Condition={"StringLike": {"aws:username": "w?b"}}))
    assert allowed(WEB, "sqs:SendMessage", JOBS, [by_name])
    assert not allowed(WORKER, "sqs:SendMessage", JOBS, [by_name])
    by_account = policy(statement(Condition={"StringEquals": {"AWS:PrincipalAccount": ["222233334444", ACCOUNT]}}))
    assert allowed(WEB, "sqs:SendMessage", JOBS, [by_account])
    assert not allowed(STRANGER, "sqs:SendMessage", JOBS, [by_account])
    by_arn = policy(statement(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/w*"}}))
    assert allowed(STRANGER, "sqs:SendMessage", JOBS, [by_arn])
    assert not allowed(f"arn:aws:iam::{ACCOUNT}:user/admin", "sqs:SendMessage", JOBS, [by_arn])
    ignoring_case = policy(statement(Condition={"StringNotEqualsIgnoreCase": {"aws:username": "WEB"}}))
    assert not allowed(WEB, "sqs:SendMessage", JOBS, [ignoring_case])
    assert allowed(WORKER, "sqs:SendMessage", JOBS, [ignoring_case])
    both = policy(
        statement(Condition={"StringEquals": {"aws:username": "web"}, "ArnLike": {"aws:PrincipalArn": "arn:*:*::1:*"}})
    )
    assert not allowed(WEB, "sqs:SendMessage", JOBS, [both])  # every operator of a Condition must hold


# --- ListQueues -------------------------------------------------------------------------------------------------


def test_list_queues_shows_the_queues_sqs_list_queues_is_allowed_on() -> None:
    everything = [policy(statement(action="sqs:ListQueues", resource="*"))]
    regional = [policy(statement(action="sqs:ListQueues", resource=f"arn:aws:sqs:{REGION}:{ACCOUNT}:*"))]
    jobs_only = [policy(statement(action="sqs:List*", resource="arn:aws:sqs:*:*:jobs*"))]
    for identity in (everything, regional):
        assert may_list(WEB, JOBS, identity, None) and may_list(WEB, REPORTS, identity, None)
    assert may_list(WEB, JOBS_DLQ, jobs_only, None)
    assert not may_list(WEB, REPORTS, jobs_only, None)
    assert not may_list(WEB, JOBS, [policy(statement(action="sqs:SendMessage", resource="*"))], None)
    # The regional ARN authorize() gives for ListQueues is allowed by the policies AWS documents for it.
    action, resource = iam_actions.authorize("ListQueues", None, region=REGION, account_id=ACCOUNT)
    assert decide(WEB, action, resource, everything, None) is decide(WEB, action, resource, regional, None)
    assert decide(WEB, action, resource, regional, None) is Decision.ALLOW


def test_a_queue_policy_cannot_make_a_queue_listed_but_its_deny_hides_it() -> None:
    grants = policy(statement("Allow", "sqs:*", JOBS, Principal="*"), kind="resource")
    assert not may_list(WEB, JOBS, [], grants)
    hides = policy(statement("Deny", "sqs:ListQueues", JOBS, Principal={"AWS": WEB}), kind="resource")
    everything = [policy(statement(action="sqs:ListQueues", resource="*"))]
    assert not may_list(WEB, JOBS, everything, hides)
    assert may_list(WORKER, JOBS, everything, hides)
    denied_in_identity = everything + [policy(statement("Deny", "*", JOBS))]
    assert not may_list(WEB, JOBS, denied_in_identity, None)


# --- the action mapping ---------------------------------------------------------------------------------------


def test_every_sqs_action_of_botocores_model_has_its_iam_action() -> None:
    model = botocore.loaders.Loader().load_service_model("sqs", "service-2")
    operations = set(model["operations"])
    assert operations == set(iam_actions.ACTIONS), (
        "a new SQS action needs its IAM action and resource in core/iam_actions.py"
    )
    for operation in operations:
        queue = None if operation in iam_actions.REGIONAL else "jobs"
        action, resource = iam_actions.authorize(operation, queue, region=REGION, account_id=ACCOUNT)
        assert action == "sqs:" + operation.removesuffix("Batch")
        assert resource == (f"arn:aws:sqs:{REGION}:{ACCOUNT}:*" if operation == "ListQueues" else JOBS)


@pytest.mark.parametrize(
    ("sqs_action", "queue", "expected"),
    [
        ("SendMessageBatch", "jobs", ("sqs:SendMessage", JOBS)),
        ("DeleteMessageBatch", "jobs", ("sqs:DeleteMessage", JOBS)),
        ("ChangeMessageVisibilityBatch", "jobs", ("sqs:ChangeMessageVisibility", JOBS)),
        ("CreateQueue", "new.fifo", ("sqs:CreateQueue", f"arn:aws:sqs:{REGION}:{ACCOUNT}:new.fifo")),
        ("StartMessageMoveTask", "jobs-dlq", ("sqs:StartMessageMoveTask", JOBS_DLQ)),
        ("ListMessageMoveTasks", "jobs-dlq", ("sqs:ListMessageMoveTasks", JOBS_DLQ)),
        ("CancelMessageMoveTask", "jobs-dlq", ("sqs:CancelMessageMoveTask", JOBS_DLQ)),
        ("TagQueue", "jobs", ("sqs:TagQueue", JOBS)),
        ("ListQueueTags", "jobs", ("sqs:ListQueueTags", JOBS)),
        ("ListQueues", None, ("sqs:ListQueues", f"arn:aws:sqs:{REGION}:{ACCOUNT}:*")),
    ],
)
def test_authorize(sqs_action: str, queue: str | None, expected: tuple[str, str]) -> None:
    assert iam_actions.authorize(sqs_action, queue, region=REGION, account_id=ACCOUNT) == expected


def test_authorize_refuses_an_unknown_action_and_a_queue_action_without_queue() -> None:
    with pytest.raises(errors.InvalidAction, match="The action sendmessage is not valid for this endpoint."):
        iam_actions.authorize("sendmessage", "jobs", region=REGION, account_id=ACCOUNT)
    with pytest.raises(ValueError, match="SendMessage is an action on a queue"):
        iam_actions.authorize("SendMessage", None, region=REGION, account_id=ACCOUNT)


def test_access_denied_in_sqs_words() -> None:
    refusal = iam_actions.access_denied(WEB, "sqs:ReceiveMessage", JOBS)
    assert isinstance(refusal, errors.AccessDenied)
    assert (refusal.query_code, refusal.http_status, refusal.sender_fault) == ("AccessDenied", 403, True)
    assert refusal.message == (
        f"User: {WEB} is not authorized to perform: sqs:receivemessage on resource: {JOBS} "
        "because no identity-based policy allows the sqs:receivemessage action"
    )
    explicit = iam_actions.access_denied(WEB, "sqs:PurgeQueue", JOBS, decision=Decision.EXPLICIT_DENY)
    assert explicit.message == (
        f"User: {WEB} is not authorized to perform: sqs:purgequeue on resource: {JOBS} with an explicit deny"
    )


# --- properties ------------------------------------------------------------------------------------------------

ACTION_PATTERNS = st.sampled_from(
    ["*", "sqs:*", "sqs:Send*", "sqs:Receive*", "sqs:SendMessage", "SQS:purgequeue", "sqs:?eleteMessage", "s3:*"]
)
RESOURCE_PATTERNS = st.sampled_from(
    ["*", JOBS, JOBS_DLQ, "arn:aws:sqs:*:*:jobs*", f"arn:aws:sqs:{REGION}:{ACCOUNT}:*", "arn:aws:sqs:*:*:?obs"]
)
PRINCIPALS = st.sampled_from(["*", {"AWS": ACCOUNT}, {"AWS": f"arn:aws:iam::{OTHER}:root"}, {"AWS": [WEB, WORKER]}])
CONDITIONS = st.sampled_from(
    [
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}},
        {"StringNotEquals": {"aws:SourceAccount": ACCOUNT}},
        {"StringEquals": {"aws:username": "web"}},
        {"Null": {"aws:SourceArn": "true"}},
    ]
)
CALLERS = st.sampled_from([WEB, WORKER, STRANGER, f"arn:aws:iam::{ACCOUNT}:root", "anonymous"])
SQS_ACTIONS = st.sampled_from(sorted(set(iam_actions.ACTIONS.values())))
QUEUES = st.sampled_from([JOBS, JOBS_DLQ, REPORTS, f"arn:aws:sqs:eu-west-1:{OTHER}:jobs"])


@st.composite
def statements(draw: st.DrawFn, resource_policy: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    result["NotAction" if draw(st.booleans()) else "Action"] = draw(st.lists(ACTION_PATTERNS, min_size=1, max_size=3))
    result["NotResource" if draw(st.booleans()) else "Resource"] = draw(RESOURCE_PATTERNS)
    if resource_policy:
        result["NotPrincipal" if draw(st.booleans()) else "Principal"] = draw(PRINCIPALS)
    if draw(st.booleans()):
        result["Condition"] = draw(CONDITIONS)
    return result


def documents(resource_policy: bool) -> st.SearchStrategy[dict[str, Any]]:
    listed = st.lists(statements(resource_policy), max_size=4)
    return listed.map(lambda s: {"Version": "2012-10-17", "Statement": s})


@st.composite
def situations(draw: st.DrawFn) -> tuple[str, str, str, list[Policy], Policy | None]:
    identity = [parse_policy(d, where="id", kind="identity") for d in draw(st.lists(documents(False), max_size=3))]
    queue = draw(st.none() | documents(True).map(lambda d: parse_policy(d, where="queue", kind="resource")))
    return draw(CALLERS), draw(SQS_ACTIONS), draw(QUEUES), identity, queue


DENY_ALL = policy(statement("Deny", "*", "*"))
ALLOW_ALL = policy(statement("Allow", "*", "*"))


@settings(max_examples=300, deadline=None)
@given(situations())
def test_a_deny_of_everything_always_denies(situation: tuple[str, str, str, list[Policy], Policy | None]) -> None:
    caller, action, queue, identity, resource = situation
    assert decide(caller, action, queue, [*identity, DENY_ALL], resource) is Decision.EXPLICIT_DENY
    assert decide(caller, action, queue, [DENY_ALL, *identity], resource) is Decision.EXPLICIT_DENY
    assert not may_list(caller, queue, [*identity, DENY_ALL], resource)
    in_queue = policy(statement("Deny", "*", "*", Principal="*"), kind="resource")
    assert decide(caller, action, queue, identity, in_queue) is Decision.EXPLICIT_DENY


@settings(max_examples=300, deadline=None)
@given(situations())
def test_adding_an_allow_never_lifts_an_explicit_deny(
    situation: tuple[str, str, str, list[Policy], Policy | None],
) -> None:
    caller, action, queue, identity, resource = situation
    before = decide(caller, action, queue, identity, resource)
    after = decide(caller, action, queue, [*identity, ALLOW_ALL], resource)
    if before is Decision.EXPLICIT_DENY:
        assert after is Decision.EXPLICIT_DENY
    else:
        assert after is Decision.ALLOW
    # And an Allow can only ever widen: what was allowed stays allowed.
    if before is Decision.ALLOW:
        narrower = [*identity, policy(statement("Allow", "sqs:SendMessage", REPORTS))]
        assert decide(caller, action, queue, narrower, resource) is Decision.ALLOW


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["*", "Allow", "Deny", JOBS]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Version",
                    "Statement",
                    "Effect",
                    "Action",
                    "NotAction",
                    "Resource",
                    "NotResource",
                    "Principal",
                    "AWS",
                    "NotPrincipal",
                    "Condition",
                    "StringEquals",
                    "Null",
                    "aws:SourceArn",
                    "Sid",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@st.composite
def near_statements(draw: st.DrawFn) -> Any:
    """A valid statement, often with one part dropped, replaced by any JSON or added: about half of them parse."""
    result: dict[str, Any] = draw(statements(resource_policy=draw(st.booleans())))
    change = draw(st.sampled_from(["none", "drop", "replace", "add"]))
    key = draw(st.sampled_from([*result, "Sid", "Principal", "Condition", "Extra"]))
    if change == "drop":
        result.pop(key, None)
    elif change in ("replace", "add"):
        result[key] = draw(JSON_VALUES)
    return result


DOCUMENTS = JSON_VALUES | st.lists(near_statements(), max_size=3).map(
    lambda s: {"Version": "2012-10-17", "Statement": s}
)


@settings(max_examples=1000, deadline=None)
@given(DOCUMENTS, CALLERS, SQS_ACTIONS, QUEUES)
def test_any_document_parses_or_is_refused_and_evaluation_never_raises(
    document: Any, caller: str, action: str, queue: str
) -> None:
    for kind in (None, "identity", "resource"):
        try:
            parsed = parse_policy(json.dumps(document), where="fuzz", kind=kind)
        except ConfigError as refused:
            assert refused.message.startswith("fuzz: the policy is invalid: ")
            continue
        assert decide(caller, action, queue, [parsed], parsed) in Decision
        assert may_list(caller, queue, [parsed], parsed) in (True, False)
