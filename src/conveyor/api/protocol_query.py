"""The Query protocol: ``Action=...`` form parameters in, XML out.

Requests are decoded into the parameter shape of the AWS JSON protocol so every action has one
implementation; results are encoded back into the XML that SQS answers with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from conveyor import errors
from conveyor.api.errors import SQS_XMLNS, xml_text

#: Query name of a flattened map -> (JSON name, key element, value element).
_MAPS = {
    "Attribute": ("Attributes", "Name", "Value"),
    "MessageAttribute": ("MessageAttributes", "Name", "Value"),
    "MessageSystemAttribute": ("MessageSystemAttributes", "Name", "Value"),
    "Tag": ("Tags", "Key", "Value"),
}
#: Query name of a flattened list -> JSON name.
_LISTS = {
    "AttributeName": "AttributeNames",
    "MessageAttributeName": "MessageAttributeNames",
    "MessageSystemAttributeName": "MessageSystemAttributeNames",
    "TagKey": "TagKeys",
    "AWSAccountId": "AWSAccountIds",
    "ActionName": "Actions",
}
_ENTRY_SUFFIX = "RequestEntry"

Tree = dict[str, Any]


def parse_form(query_string: str, body: bytes) -> dict[str, str]:
    """The parameters of a Query request: those of the URL's query string and of the form body together.

    Each name may be given once (list members are numbered, ``AttributeName.1``, so they are distinct names):
    a repeated one is refused rather than resolved, since ``Action=SendMessage&Action=DeleteQueue`` would act on
    whichever copy won. Text is UTF-8, raw or percent-encoded; anything else is refused, not replaced by U+FFFD:
    in a message body with SQS's ``InvalidMessageContents``, elsewhere as a malformed query string.
    """
    raw = query_string.encode("utf-8", "surrogateescape")
    pairs = [_pair(piece) for part in (raw, body) for piece in part.split(b"&") if piece]
    counts = Counter(name for name, _ in pairs)
    for name, count in counts.items():
        if count > 1:
            raise errors.MalformedRequest(
                f"Parameter {name[:100]!r} is given {count} times: give each parameter once "
                "(the members of a list are numbered: AttributeName.1, AttributeName.2, ...)."
            )
    return dict(pairs)


_NOT_UTF8 = "percent-encode the UTF-8 bytes of the text (é is %C3%A9)"


def _pair(piece: bytes) -> tuple[str, str]:
    raw_name, _, raw_value = piece.partition(b"=")
    name = _unquote(raw_name)
    if name is None:
        shown = raw_name[:100].decode("utf-8", "backslashreplace")
        raise errors.MalformedRequest(f"A parameter name ({shown!r}) is not valid UTF-8: {_NOT_UTF8}.")
    value = _unquote(raw_value)
    if value is None:
        if name == "MessageBody" or name.endswith(".MessageBody"):
            raise errors.InvalidMessageContents(
                f"Invalid characters found in {name[:100]}: its bytes are not valid UTF-8. Send the body as "
                f"UTF-8 text ({_NOT_UTF8}), or binary data in base64."
            )
        raise errors.MalformedRequest(f"Parameter {name[:100]!r} is not valid UTF-8: {_NOT_UTF8}.")
    return name, value


def _unquote(raw: bytes) -> str | None:
    """``+`` and ``%XX`` decoded, as form encoding has them; None when the bytes are not UTF-8."""
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeError:
        return None


def decode(action: str, form: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``Attribute.1.Name=...`` style parameters into the JSON protocol's nested shape."""
    tree: Tree = {}
    for key, value in form.items():
        if key in ("Action", "Version"):
            continue
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise errors.MalformedRequest(f"Parameter {key!r} conflicts with parameter {part!r}.")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise errors.MalformedRequest(f"Parameter {key!r} conflicts with a nested parameter of the same name.")
        node[parts[-1]] = value
    params = _convert(tree)
    if action == "CreateQueue" and "Tags" in params:
        params["tags"] = params.pop("Tags")
    return params


def _indexed(name: str, value: Any) -> list[Any]:
    if not isinstance(value, dict):
        raise errors.MalformedRequest(f"Parameter {name} must be given as {name}.1, {name}.2, ...")
    try:
        ordered = sorted((int(index), item) for index, item in value.items())
    except ValueError:
        raise errors.MalformedRequest(f"Parameter {name} has a member whose index is not a number.") from None
    return [item for _, item in ordered]


def _convert(tree: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if key in _MAPS:
            json_name, key_element, value_element = _MAPS[key]
            mapping: dict[str, Any] = {}
            for item in _indexed(key, value):
                if not isinstance(item, dict) or not isinstance(item.get(key_element), str):
                    raise errors.MissingParameter(f"Each {key}.N needs a {key}.N.{key_element}.")
                inner = item.get(value_element)
                mapping[item[key_element]] = _convert(inner) if isinstance(inner, dict) else inner
            out[json_name] = mapping
        elif value == "" and (key in _LISTS or key.endswith(_ENTRY_SUFFIX)):
            out[_LISTS.get(key, "Entries")] = []  # an empty list, as botocore sends one: ``Name=``
        elif key in _LISTS:
            out[_LISTS[key]] = _indexed(key, value)
        elif key.endswith(_ENTRY_SUFFIX):
            out["Entries"] = [_convert(item) if isinstance(item, dict) else item for item in _indexed(key, value)]
        else:
            out[key] = _convert(value) if isinstance(value, dict) else value
    return out


# -- responses ------------------------------------------------------------------------------------

_LIST_ELEMENTS = {
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "Messages": "Message",
    "Results": "ListMessageMoveTasksResultEntry",
    "Failed": "BatchResultErrorEntry",
}
_MAP_ELEMENTS = {
    "Attributes": ("Attribute", "Name", "Value"),
    "MessageAttributes": ("MessageAttribute", "Name", "Value"),
    "Tags": ("Tag", "Key", "Value"),
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_text(str(value))


def _element(name: str, value: Any, action: str, parts: list[str]) -> None:
    if isinstance(value, dict):
        parts.append(f"<{name}>")
        _members(value, action, parts)
        parts.append(f"</{name}>")
    else:
        parts.append(f"<{name}>{_text(value)}</{name}>")


def _members(result: Mapping[str, Any], action: str, parts: list[str]) -> None:
    for key, value in result.items():
        if key in _MAP_ELEMENTS:
            element, key_name, value_name = _MAP_ELEMENTS[key]
            for map_key, map_value in value.items():
                parts.append(f"<{element}><{key_name}>{_text(map_key)}</{key_name}>")
                _element(value_name, map_value, action, parts)
                parts.append(f"</{element}>")
        elif key == "Successful" or key in _LIST_ELEMENTS:
            element = f"{action}ResultEntry" if key == "Successful" else _LIST_ELEMENTS[key]
            for item in value:
                _element(element, item, action, parts)
        else:
            _element(key, value, action, parts)


#: Actions without an output shape in the SQS model: their answer has no ``<ActionResult>``. Every other
#: action answers one even when it is empty (query clients such as botocore look for it).
_NO_RESULT = frozenset(
    {
        "AddPermission",
        "ChangeMessageVisibility",
        "DeleteMessage",
        "DeleteQueue",
        "PurgeQueue",
        "RemovePermission",
        "SetQueueAttributes",
        "TagQueue",
        "UntagQueue",
    }
)


def encode(action: str, result: Mapping[str, Any], request_id: str) -> bytes:
    parts = [f'<?xml version="1.0"?><{action}Response xmlns="{SQS_XMLNS}">']
    if result or action not in _NO_RESULT:
        parts.append(f"<{action}Result>")
        _members(result, action, parts)
        parts.append(f"</{action}Result>")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")
    return "".join(parts).encode()
