"""``AddPermission`` and ``RemovePermission``: the queue ``Policy`` they leave, as Amazon SQS writes it.

conveyor keeps the policy (``GetQueueAttributes`` returns it); ``conveyor server --credentials`` enforces it as SQS
does (``core.iam``, ``api.access``), and without credentials nothing is enforced.
"""

from __future__ import annotations

import json
import re
from typing import Any

from conveyor import errors

_LABEL = re.compile(r"[A-Za-z0-9_-]{1,80}")
POLICY_VERSION = "2012-10-17"


def validate_label(label: str) -> None:
    if not _LABEL.fullmatch(label):
        raise errors.InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. "
            "Reason: Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
        )


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _statements(policy: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not policy:
        return {}, []
    try:
        document = json.loads(policy)
    except ValueError:
        return {}, []
    if not isinstance(document, dict):
        return {}, []
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return document, [s for s in statements if isinstance(s, dict)]


def added(policy: str | None, queue_arn: str, label: str, accounts: list[str], actions: list[str]) -> str:
    """``policy`` with a statement ``label`` allowing ``accounts`` the ``actions`` on the queue."""
    document, statements = _statements(policy)
    if any(s.get("Sid") == label for s in statements):
        raise errors.InvalidParameterValue(f"Value {label} for parameter Label is invalid. Reason: Already exists.")
    statement = {
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": _one_or_many([f"arn:aws:iam::{account}:root" for account in accounts])},
        "Action": _one_or_many([f"SQS:{action}" for action in actions]),
        "Resource": queue_arn,
    }
    document = {"Version": POLICY_VERSION, "Id": f"{queue_arn}/SQSDefaultPolicy"} | document
    document["Statement"] = [*statements, statement]
    return json.dumps(document, separators=(",", ":"))


def removed(policy: str | None, label: str) -> str:
    """``policy`` without the statement ``label``; ``""`` (no policy) once its last statement is gone."""
    document, statements = _statements(policy)
    kept = [s for s in statements if s.get("Sid") != label]
    if len(kept) == len(statements):
        raise errors.InvalidParameterValue(f"Value {label} for parameter Label is invalid. Reason: can't find label.")
    if not kept:
        return ""
    document["Statement"] = kept
    return json.dumps(document, separators=(",", ":"))
