"""One JSON form for the documents of ``documents.py``: written from their fields, read back strictly.

``Document.to_json`` writes a frozen dataclass as a JSON object with its fields in order (nested documents
as objects, tuples as lists, mappings as objects). ``Document.from_json`` reads such an object back into
the same type and refuses any other shape: a missing field, an unknown one, or a value of the wrong type
is a ``DocumentError`` naming where it is (``EnvironmentStatus.instances[1].daemon.delivered``). So a
reader and a writer of one document cannot drift apart without a test noticing.

The field types it reads: ``str``, ``int``, ``float`` (an integer too), ``bool``, ``None``, unions of
those (``X | None``), ``tuple[X, ...]``, ``Mapping[str, X]`` and nested documents.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Self, cast


class DocumentError(ValueError):
    """JSON that is not the document it should be."""


class Document:
    """Base of the frozen dataclasses passed between the environment, the control API, the CLI and the console."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON form: a dict of JSON values, ready for ``orjson.dumps``."""
        encoded: dict[str, Any] = encode(self)
        return encoded

    @classmethod
    def from_json(cls, data: object) -> Self:
        """The document ``data`` (parsed JSON) holds; ``DocumentError`` when it holds another shape."""
        return cast(Self, decode(cls, data, cls.__name__))


def encode(value: object) -> Any:
    """A document (or a list, tuple or mapping of them, or a plain value) as JSON values."""
    if isinstance(value, Document):
        return {f.name: encode(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    return value


_FIELDS: dict[type, tuple[dataclasses.Field[Any], ...]] = {}
_HINTS: dict[type, dict[str, Any]] = {}


def _fields(kind: type) -> tuple[dataclasses.Field[Any], ...]:
    if kind not in _FIELDS:
        _FIELDS[kind] = tuple(f for f in dataclasses.fields(kind) if f.init)
    return _FIELDS[kind]


def _hints(kind: type) -> dict[str, Any]:
    if kind not in _HINTS:
        _HINTS[kind] = typing.get_type_hints(kind)
    return _HINTS[kind]


def _name(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) else str(kind)


def _wrong(path: str, kind: Any, data: object) -> DocumentError:
    return DocumentError(f"{path}: expected {_name(kind)}, not {type(data).__name__} {data!r:.60}")


def decode(kind: Any, data: object, path: str) -> Any:
    """``data`` read as ``kind`` (a document type or a field type); ``path`` names it in an error."""
    origin = typing.get_origin(kind)
    if kind is Any or kind is object:
        return data
    if origin is typing.Union or origin is types.UnionType:
        return _union(typing.get_args(kind), data, path)
    if origin is tuple:
        item, *rest = typing.get_args(kind)
        if rest != [Ellipsis]:
            raise TypeError(f"{path}: documents hold tuple[X, ...] only, not {kind}")
        if not isinstance(data, list):
            raise _wrong(path, list, data)
        return tuple(decode(item, v, f"{path}[{n}]") for n, v in enumerate(data))
    if origin is dict or origin is Mapping:
        _, item = typing.get_args(kind)
        if not isinstance(data, dict):
            raise _wrong(path, dict, data)
        return {str(k): decode(item, v, f"{path}.{k}") for k, v in data.items()}
    if isinstance(kind, type) and issubclass(kind, Document):
        return _document(kind, data, path)
    if kind is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return data  # an integer stays one, so the JSON written again is the JSON read
        raise _wrong(path, kind, data)
    if kind is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise _wrong(path, kind, data)
    if kind is str or kind is bool:
        if isinstance(data, kind):
            return data
        raise _wrong(path, kind, data)
    if kind is type(None):
        if data is None:
            return None
        raise _wrong(path, kind, data)
    raise TypeError(f"{path}: documents cannot hold a {kind!r}")


def _union(options: tuple[Any, ...], data: object, path: str) -> Any:
    if data is None and type(None) in options:
        return None
    present = [o for o in options if o is not type(None)]
    if len(present) == 1:  # ``X | None`` holding something: an error inside X says where
        return decode(present[0], data, path)
    for option in present:
        try:
            return decode(option, data, path)
        except DocumentError:
            continue
    names = " or ".join("null" if o is type(None) else _name(o) for o in options)
    raise DocumentError(f"{path}: expected {names}, not {type(data).__name__} {data!r:.60}")


def _document(kind: type[Document], data: object, path: str) -> Document:
    if not isinstance(data, dict):
        raise _wrong(path, kind, data)
    fields = _fields(kind)
    names = [f.name for f in fields]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise DocumentError(f"{path}: unknown field(s) {', '.join(map(str, unknown))}; {kind.__name__} has {names}")
    missing = [
        f.name
        for f in fields
        if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise DocumentError(f"{path}: missing field(s) {', '.join(missing)}")
    hints = _hints(kind)
    return kind(**{name: decode(hints[name], data[name], f"{path}.{name}") for name in names if name in data})
