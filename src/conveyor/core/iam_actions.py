"""Which permission each SQS API action needs (pure): its IAM action and the resource it is authorized on, and the
words of SQS's refusal. The page each rule comes from is named in docs/security.md ("Permissions").
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor import errors
from conveyor.core.iam import Decision
from conveyor.errors import ConveyorError

#: SQS API action -> its IAM action; every action of the SQS API. The batch actions are authorized as their
#: single action. The message-move-task actions are on the task's source queue (the dead-letter queue).
ACTIONS: Mapping[str, str] = {
    "AddPermission": "sqs:AddPermission",
    "CancelMessageMoveTask": "sqs:CancelMessageMoveTask",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "CreateQueue": "sqs:CreateQueue",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "DeleteQueue": "sqs:DeleteQueue",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "GetQueueUrl": "sqs:GetQueueUrl",
    "ListDeadLetterSourceQueues": "sqs:ListDeadLetterSourceQueues",
    "ListMessageMoveTasks": "sqs:ListMessageMoveTasks",
    "ListQueueTags": "sqs:ListQueueTags",
    "ListQueues": "sqs:ListQueues",
    "PurgeQueue": "sqs:PurgeQueue",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "RemovePermission": "sqs:RemovePermission",
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "SetQueueAttributes": "sqs:SetQueueAttributes",
    "StartMessageMoveTask": "sqs:StartMessageMoveTask",
    "TagQueue": "sqs:TagQueue",
    "UntagQueue": "sqs:UntagQueue",
}
#: The actions not on one queue: authorized on every queue of the region (``arn:aws:sqs:REGION:ACCOUNT:*``).
REGIONAL = frozenset({"ListQueues"})


def authorize(sqs_action: str, queue: str | None, *, region: str, account_id: str) -> tuple[str, str]:
    """(IAM action, resource ARN) that ``sqs_action`` on ``queue`` needs. ``queue`` is the queue's name: the new
    queue's for CreateQueue, the source queue's for the message-move-task actions, None for ListQueues.

    ListQueues is authorized on ``arn:aws:sqs:REGION:ACCOUNT:*``; which queues it shows is ``may_list``'s answer.
    """
    iam_action = ACTIONS.get(sqs_action)
    if iam_action is None:
        raise errors.InvalidAction(f"The action {sqs_action} is not valid for this endpoint.")
    if sqs_action in REGIONAL:
        return iam_action, f"arn:aws:sqs:{region}:{account_id}:*"
    if not queue:
        raise ValueError(f"{sqs_action} is an action on a queue: name the queue")
    return iam_action, f"arn:aws:sqs:{region}:{account_id}:{queue}"


def access_denied(
    principal_arn: str, iam_action: str, resource_arn: str, *, decision: Decision = Decision.IMPLICIT_DENY
) -> ConveyorError:
    """SQS's refusal (``AccessDenied``, HTTP 403) in the words IAM uses, the action in lower case as SQS writes it.
    An explicit Deny says so without naming the policy that holds it."""
    action = iam_action.lower()
    why = (
        "with an explicit deny"
        if decision is Decision.EXPLICIT_DENY
        else (f"because no identity-based policy allows the {action} action")
    )
    return errors.AccessDenied(
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource_arn} {why}"
    )
