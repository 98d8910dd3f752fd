"""Who may do what: IAM policies over SQS actions and queue ARNs, evaluated as AWS evaluates them in one account.

A policy is what IAM writes: ``{"Version": "2012-10-17", "Statement": [...]}``, each statement an ``Effect``
(``Allow``/``Deny``) over ``Action``/``NotAction`` and ``Resource``/``NotResource``, and in a queue's ``Policy``
attribute (the resource policy, what ``AddPermission`` writes) a ``Principal``/``NotPrincipal`` too. The
decision: an explicit Deny in any policy that applies wins; else an Allow in the caller's identity policies or
in the queue's policy allows; else the request is denied (implicitly). Actions match case-insensitively,
resources case-sensitively, both with the wildcards ``*`` and ``?``.

A ``Condition`` is evaluated when it uses only what conveyor knows of a request (the caller's ARN and account)
or the keys a queue policy commonly names (``aws:SourceArn``, ``aws:SourceAccount``: absent from a caller's own
request, so a condition on them holds only where IAM says an absent key holds). Any other key or operator is
refused when the policy is read: ignoring a condition would grant more than the policy says.

Pure: no I/O. The page each rule comes from is named in docs/security.md.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from conveyor.core.iam_match import (
    ABSENT_KEYS,
    KEYS,
    OPERATORS,
    Condition,
    arn_regex,
    context_of,
    glob,
    names_of,
)
from conveyor.errors import ConfigError

VERSIONS = ("2012-10-17", "2008-10-17")
#: What IAM assumes when a policy names no version (policy variables are then plain text).
DEFAULT_VERSION = "2008-10-17"


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


# ---------------------------------------------------------------------------------------------------------------
# The parsed form


@dataclass(frozen=True, slots=True)
class _Principals:
    """A ``Principal`` or ``NotPrincipal``: everyone (``*``), or AWS principals named by ARN or account id.

    Service, federated and canonical-user principals are kept out of ``aws``: no conveyor caller is one of them.
    """

    everyone: bool
    aws: frozenset[str]
    negated: bool

    def match(self, principal_arn: str) -> bool:
        hit = self.everyone or bool(self.aws & names_of(principal_arn))
        return not hit if self.negated else hit


@dataclass(frozen=True, slots=True)
class _Statement:
    sid: str | None
    allow: bool
    actions: re.Pattern[str]
    not_action: bool
    resources: re.Pattern[str]
    not_resource: bool
    principals: _Principals | None
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document. ``kind`` is what it was read as ("identity", "resource" or None for either)."""

    statements: tuple[_Statement, ...]
    version: str
    id: str | None = None
    kind: Literal["identity", "resource"] | None = None


# ---------------------------------------------------------------------------------------------------------------
# Parsing


class _Refusal(Exception):
    """A mistake in a policy; ``parse_policy`` turns it into a ``ConfigError`` naming where it is."""


_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal"}
_ACTION = re.compile(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+")
_ACCOUNT = re.compile(r"\d{12}")
_AWS_PRINCIPAL = re.compile(r"arn:aws:(iam|sts)::\d{12}:[^*?]+")


def _strings(value: object, name: str) -> list[str]:
    items: list[object] = value if isinstance(value, list) else [value]
    if not items:
        raise _Refusal(f"{name} is an empty list: name at least one")
    values = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise _Refusal(f"{name} holds {item!r}: each entry must be a non-empty string")
        values.append(item)
    return values


def _one_of(statement: Mapping[str, object], name: str, not_name: str, *, required: bool) -> tuple[str, bool] | None:
    if name in statement and not_name in statement:
        raise _Refusal(f"it has both {name} and {not_name}: use one")
    if name in statement:
        return name, False
    if not_name in statement:
        return not_name, True
    if required:
        raise _Refusal(f"it has no {name} (nor {not_name})")
    return None


def _parse_actions(statement: Mapping[str, object], name: str) -> re.Pattern[str]:
    regexes = []
    for action in _strings(statement[name], name):
        if action != "*" and not _ACTION.fullmatch(action):
            raise _Refusal(
                f"{name} {action!r} is not an action: write service:Action, e.g. sqs:SendMessage, sqs:Receive*, "
                "sqs:* or *"
            )
        regexes.append(glob(action))
    return re.compile("|".join(f"(?:{r})" for r in regexes), re.IGNORECASE | re.DOTALL)


def _parse_resources(statement: Mapping[str, object], name: str, version: str) -> re.Pattern[str]:
    regexes = []
    for resource in _strings(statement[name], name):
        _no_variables(resource, name, version)
        if resource != "*" and (not resource.startswith("arn:") or resource.count(":") < 5):
            raise _Refusal(
                f"{name} {resource!r} is neither * nor an ARN: write arn:aws:sqs:REGION:ACCOUNT:QUEUE "
                "(wildcards * and ? allowed)"
            )
        regexes.append(arn_regex(resource))
    return re.compile("|".join(f"(?:{r})" for r in regexes), re.DOTALL)


def _parse_principals(value: object, name: str, negated: bool) -> _Principals:
    if value == "*":
        return _Principals(True, frozenset(), negated)
    if not isinstance(value, dict) or not value:
        raise _Refusal(f'{name} {value!r} is not "*" nor an object such as {{"AWS": "arn:aws:iam::ACCOUNT:root"}}')
    everyone, aws = False, set()
    for kind, names in value.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise _Refusal(f"{name} has the key {kind!r}: use AWS (or Service, Federated, CanonicalUser)")
        listed = _strings(names, f"{name} {kind}")
        if kind != "AWS":
            continue  # no conveyor caller is a service, a federated or a canonical user
        for item in listed:
            if item == "*":
                everyone = True
            elif _ACCOUNT.fullmatch(item) or _AWS_PRINCIPAL.fullmatch(item):
                aws.add(item)
            else:
                raise _Refusal(
                    f"{name} AWS {item!r} is not a principal: write *, an account id (12 digits), "
                    "arn:aws:iam::ACCOUNT:root or arn:aws:iam::ACCOUNT:user/NAME (no wildcards inside a name)"
                )
    return _Principals(everyone, frozenset(aws), negated)


def _parse_conditions(value: object, version: str) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise _Refusal(f'Condition {value!r} is not an object such as {{"ArnEquals": {{"aws:SourceArn": "..."}}}}')
    conditions = []
    for operator, block in value.items():
        base_name = operator.removesuffix("IfExists")
        if base_name not in OPERATORS or operator == "NullIfExists":
            raise _Refusal(
                f"Condition operator {operator!r} is not supported here: conveyor evaluates "
                f"{', '.join(OPERATORS)} (and their IfExists forms); a condition it cannot evaluate would grant "
                "more than written, so the policy is refused"
            )
        if not isinstance(block, dict) or not block:
            raise _Refusal(f"Condition {operator} is not an object of condition keys and values")
        base, negated = OPERATORS[base_name]
        for key, wanted in block.items():
            lowered = str(key).lower()
            if lowered not in KEYS and lowered not in ABSENT_KEYS:
                raise _Refusal(
                    f"Condition key {key!r} is not one conveyor can evaluate: use aws:SourceArn, aws:SourceAccount, "
                    "aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType or aws:username"
                )
            values = []
            for item in wanted if isinstance(wanted, list) else [wanted]:
                if isinstance(item, bool):
                    item = "true" if item else "false"
                elif isinstance(item, int):
                    item = str(item)
                if not isinstance(item, str):
                    raise _Refusal(f"Condition {operator} {key} holds {item!r}: values are strings")
                _no_variables(item, f"Condition {operator} {key}", version)
                values.append(item)
            if not values:
                raise _Refusal(f"Condition {operator} {key} has no value")
            if base == "Null" and any(v not in ("true", "false") for v in values):
                raise _Refusal(f"Condition Null {key} must be true or false")
            conditions.append(Condition(base, lowered, tuple(values), negated, operator.endswith("IfExists")))
    return tuple(conditions)


def _no_variables(text: str, name: str, version: str) -> None:
    if version == "2012-10-17" and "${" in text:
        raise _Refusal(f"{name} {text!r} uses a policy variable (${{...}}), which conveyor does not substitute")


def _parse_statement(statement: object, version: str, kind: Literal["identity", "resource"] | None) -> _Statement:
    if not isinstance(statement, dict):
        raise _Refusal(f"it is {type(statement).__name__}, not an object")
    unknown = set(statement) - _STATEMENT_KEYS - {"Condition"}
    if unknown:
        raise _Refusal(f"it has the unknown element(s) {', '.join(sorted(map(str, unknown)))}")
    sid = statement.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise _Refusal(f"Sid {sid!r} is not a string")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _Refusal(f"Effect {effect!r} is neither Allow nor Deny")
    action_name, not_action = _one_of(statement, "Action", "NotAction", required=True) or ("", False)
    resource_name, not_resource = _one_of(statement, "Resource", "NotResource", required=True) or ("", False)
    principal = _one_of(statement, "Principal", "NotPrincipal", required=kind == "resource")
    if principal is not None and kind == "identity":
        raise _Refusal(f"an identity policy names no {principal[0]}: it applies to the principal it belongs to")
    conditions = _parse_conditions(statement["Condition"], version) if "Condition" in statement else ()
    return _Statement(
        sid=sid,
        allow=effect == "Allow",
        actions=_parse_actions(statement, action_name),
        not_action=not_action,
        resources=_parse_resources(statement, resource_name, version),
        not_resource=not_resource,
        principals=_parse_principals(statement[principal[0]], principal[0], principal[1]) if principal else None,
        conditions=conditions,
    )


def parse_policy(
    text: str | Mapping[str, object], *, where: str, kind: Literal["identity", "resource"] | None = None
) -> Policy:
    """The policy in ``text`` (JSON, or the decoded document). Any mistake is a ``ConfigError`` naming ``where``
    (e.g. "credentials file, principal web"), the statement and what is wrong.

    ``kind="identity"`` refuses a ``Principal`` (the policy belongs to a principal); ``kind="resource"``
    requires one in every statement (a queue's ``Policy``); None accepts either.
    """
    try:
        return _parse(text, kind)
    except _Refusal as refusal:
        raise ConfigError(f"{where}: the policy is invalid: {refusal}.") from None


def _parse(text: str | Mapping[str, object], kind: Literal["identity", "resource"] | None) -> Policy:
    if isinstance(text, str):
        try:
            document: object = json.loads(text)
        except ValueError as error:
            raise _Refusal(f"it is not JSON ({error})") from None
    else:
        document = text
    if not isinstance(document, Mapping):
        raise _Refusal('it is not a JSON object such as {"Version": "2012-10-17", "Statement": [...]}')
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise _Refusal(f"it has the unknown element(s) {', '.join(sorted(map(str, unknown)))}")
    version = document.get("Version", DEFAULT_VERSION)
    if version not in VERSIONS:
        raise _Refusal(f"Version {version!r} is not one IAM knows: use 2012-10-17")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise _Refusal(f"Id {policy_id!r} is not a string")
    if "Statement" not in document:
        raise _Refusal("it has no Statement")
    raw = document["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    statements, sids = [], set()
    for number, raw_statement in enumerate(raw_statements, 1):
        try:
            statement = _parse_statement(raw_statement, str(version), kind)
        except _Refusal as refusal:
            sid = raw_statement.get("Sid") if isinstance(raw_statement, dict) else None
            named = f" (Sid {sid!r})" if isinstance(sid, str) else ""
            raise _Refusal(f"statement {number}{named}: {refusal}") from None
        if statement.sid is not None:
            if statement.sid in sids:
                raise _Refusal(f"statement {number}: the Sid {statement.sid!r} is used twice: make each Sid unique")
            sids.add(statement.sid)
        statements.append(statement)
    return Policy(tuple(statements), str(version), policy_id, kind)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def _applies(
    statement: _Statement,
    principal_arn: str,
    iam_action: str,
    resource_arn: str,
    context: dict[str, str],
    in_resource_policy: bool,
) -> bool:
    if (statement.actions.fullmatch(iam_action) is None) != statement.not_action:
        return False
    if (statement.resources.fullmatch(resource_arn) is None) != statement.not_resource:
        return False
    if statement.principals is not None:
        if not statement.principals.match(principal_arn):
            return False
    elif in_resource_policy and statement.allow:
        return False  # a resource policy's Allow that names nobody grants nobody (a Deny then applies to all)
    if statement.conditions:
        if not context:
            context.update(context_of(principal_arn))
        return all(condition.holds(context) for condition in statement.conditions)
    return True


def _evaluate(
    principal_arn: str,
    iam_action: str,
    resource_arn: str,
    identity: Sequence[Policy],
    resource: Policy | None,
    resource_allows: bool,
) -> Decision:
    allowed = False
    context: dict[str, str] = {}
    for policy in identity:
        for statement in policy.statements:
            if _applies(statement, principal_arn, iam_action, resource_arn, context, False):
                if not statement.allow:
                    return Decision.EXPLICIT_DENY
                allowed = True
    if resource is not None:
        for statement in resource.statements:
            if _applies(statement, principal_arn, iam_action, resource_arn, context, True):
                if not statement.allow:
                    return Decision.EXPLICIT_DENY
                allowed = allowed or resource_allows
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def decide(
    principal_arn: str, iam_action: str, resource_arn: str, identity: Sequence[Policy], resource: Policy | None
) -> Decision:
    """Whether ``principal_arn`` may do ``iam_action`` (e.g. ``sqs:SendMessage``) on ``resource_arn``, given its
    identity policies and the queue's resource policy (None when the queue has none)."""
    return _evaluate(principal_arn, iam_action, resource_arn, identity, resource, resource_allows=True)


def may_list(principal_arn: str, queue_arn: str, identity: Sequence[Policy], resource: Policy | None) -> bool:
    """Whether ``ListQueues`` shows this queue to the caller: its identity policies allow ``sqs:ListQueues`` on the
    queue's ARN and no policy denies it. A queue policy cannot grant ``sqs:ListQueues`` (SQS takes that permission
    from identity policies only), but its Deny counts, as every explicit Deny does."""
    decision = _evaluate(principal_arn, "sqs:ListQueues", queue_arn, identity, resource, resource_allows=False)
    return decision is Decision.ALLOW
