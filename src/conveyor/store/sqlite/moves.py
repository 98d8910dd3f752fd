"""The sqlite store's moves between queues (DLQ redrive, move tasks, chosen messages) and deletes of chosen
messages, as functions of the writer thread: each runs inside one operation, so it is atomic.

A FIFO queue's messages move in key order, so each message group keeps its order, and take their place among the
groups of a FIFO queue they move into (``fifo.moved_in``); a standard queue's move oldest visible first.

Units: ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from conveyor.core import fifo
from conveyor.store.sqlite import fifo as sqlite_fifo
from conveyor.store.sqlite import sql

#: Most rows one read of a move takes.
CHUNK = 1000


def move(
    conn: sqlite3.Connection,
    source: tuple[str, int],
    destination: str | None,
    targets: dict[str, int],
    limit: int,
    now_ms: int,
    chosen: frozenset[str] | None,
) -> dict[str, int]:
    """Move up to ``limit`` visible messages of ``source`` (name, id), only those whose ids are ``chosen`` if given,
    to ``destination`` or, if ``None``, each back to its source queue; ``targets``: queue ids by name. Returns how
    many went to each queue."""
    in_order = fifo.is_fifo_name(source[0])
    rows: Iterable[Sequence[Any]]
    if chosen is not None:
        found = sql.by_id(conn, source[1], chosen)
        rows = (row for row in (sorted(found) if in_order else found) if row[1] <= now_ms)
    else:
        rows = (sqlite_fifo.in_order if in_order else sql.front)(conn, source[1], now_ms, min(limit, CHUNK))
    moved: dict[str, int] = {}
    updates: list[tuple[int, int, int]] = []
    into_fifo: list[int] = []
    for row in rows:
        target = destination or row[-1]
        target_id = None if target is None else targets.get(target)
        if target is None or target_id is None:
            continue
        updates.append((target_id, now_ms, row[0]))
        if fifo.is_fifo_name(target):
            into_fifo.append(row[0])
        moved[target] = moved.get(target, 0) + 1
        if len(updates) >= limit:
            break
    conn.executemany(sql.MOVED, updates)
    sqlite_fifo.moved_in(conn, into_fifo)
    return moved


def delete_by_id(conn: sqlite3.Connection, queue_id: int, chosen: frozenset[str]) -> int:
    """Delete the messages of a queue whose ids are ``chosen``, in any state; returns how many."""
    keys = [(row[0],) for row in sql.by_id(conn, queue_id, chosen)]
    conn.executemany(sql.DELETE_KEY, keys)
    return len(keys)
