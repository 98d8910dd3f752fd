"""What IAM policies match against (pure, ``core.iam``'s): wildcards, ARN patterns segment by segment, the condition
operators and keys conveyor can evaluate, and what a caller's principal ARN names.

``*`` is any run of characters and ``?`` any one; in an ARN pattern neither leaves its segment, but the last
segment (the resource) may hold colons. A condition on a key absent from the request holds as IAM says: a positive
test is false, a negated test or an ``...IfExists`` one is true.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of a statement's ``Condition``."""

    operator: str  # the base operator, e.g. "StringLike", "ArnEquals", "Null"
    key: str  # lower case: condition keys are case-insensitive
    values: tuple[str, ...]
    negated: bool
    if_exists: bool

    def holds(self, context: Mapping[str, str]) -> bool:
        value = context.get(self.key)
        if self.operator == "Null":
            return any((value is None) == (expected == "true") for expected in self.values)
        if value is None:
            return self.if_exists or self.negated
        hit = any(CONDITION_MATCHERS[self.operator](value, wanted) for wanted in self.values)
        return not hit if self.negated else hit


# ---------------------------------------------------------------------------------------------------------------
# Wildcards


def glob(pattern: str, *, colon: bool = True) -> str:
    """A regular expression for an IAM wildcard pattern: ``*`` any run of characters, ``?`` any one (neither
    crosses a ``:`` when ``colon`` is False)."""
    any_run, any_one = (".*", ".") if colon else ("[^:]*", "[^:]")
    return "".join(any_run if c == "*" else any_one if c == "?" else re.escape(c) for c in pattern)


def arn_regex(pattern: str) -> str:
    """An ARN pattern matched segment by segment, as IAM matches a ``Resource``: a wildcard in partition, service,
    region or account stays in its segment; the last segment (the resource) may hold colons."""
    if pattern == "*":
        return ".*"
    parts = pattern.split(":", 5)
    return ":".join([*(glob(p, colon=False) for p in parts[:5]), glob(parts[5])])


def arn_like(value: str, pattern: str) -> bool:
    parts, wanted = value.split(":", 5), pattern.split(":", 5)
    if len(parts) != 6 or len(wanted) != 6:
        return False
    return re.fullmatch(arn_regex(pattern), value, re.DOTALL) is not None


def string_like(value: str, pattern: str) -> bool:
    return re.fullmatch(glob(pattern), value, re.DOTALL) is not None


CONDITION_MATCHERS = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringEqualsIgnoreCase": lambda value, wanted: value.casefold() == wanted.casefold(),
    "StringLike": string_like,
    "ArnEquals": arn_like,  # IAM matches ArnEquals and ArnLike alike, segment by segment with wildcards
    "ArnLike": arn_like,
}
#: Operator name -> (base operator, negated).
OPERATORS = {
    "StringEquals": ("StringEquals", False),
    "StringNotEquals": ("StringEquals", True),
    "StringEqualsIgnoreCase": ("StringEqualsIgnoreCase", False),
    "StringNotEqualsIgnoreCase": ("StringEqualsIgnoreCase", True),
    "StringLike": ("StringLike", False),
    "StringNotLike": ("StringLike", True),
    "ArnEquals": ("ArnEquals", False),
    "ArnNotEquals": ("ArnEquals", True),
    "ArnLike": ("ArnLike", False),
    "ArnNotLike": ("ArnLike", True),
    "Null": ("Null", False),
}
#: The condition keys conveyor can evaluate (lower case). ``aws:SourceArn``/``aws:SourceAccount``/
#: ``aws:SourceOwner`` name the AWS resource a service acts for: never present in a conveyor request.
KEYS = ("aws:principalarn", "aws:principalaccount", "aws:principaltype", "aws:username", "aws:userid")
ABSENT_KEYS = ("aws:sourcearn", "aws:sourceaccount", "aws:sourceowner")


# ---------------------------------------------------------------------------------------------------------------
# Principals and the request context


def account_of(principal_arn: str) -> str:
    parts = principal_arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def names_of(principal_arn: str) -> set[str]:
    """Every ``Principal`` value that names this caller: its ARN, its account's root ARN and its account id."""
    account = account_of(principal_arn)
    names = {principal_arn}
    if account:
        names |= {account, f"arn:aws:iam::{account}:root"}
    return names


def context_of(principal_arn: str) -> dict[str, str]:
    """The condition keys of a request by this caller (``aws:userid`` is its name: conveyor has no unique ids)."""
    context = {"aws:principalarn": principal_arn, "aws:principalaccount": account_of(principal_arn)}
    resource = principal_arn.split(":", 5)[-1]
    if resource.startswith("user/"):
        name = resource.rsplit("/", 1)[-1]
        context |= {"aws:principaltype": "User", "aws:username": name, "aws:userid": name}
    elif resource == "root":
        context |= {"aws:principaltype": "Account", "aws:userid": context["aws:principalaccount"]}
    return context
