"""``HostBase``: the hosts of an environment on several machines (``CoordinationStore.beat_host`` ...
``forget_host``), the part every store shares.

Each host of an environment beats (``core.hosts``): the store keeps one row per (environment, host) with what the
host says of itself, when the store took its last beat, and the share of the instances the last scaling decision
gave it. The beat's time is the store's (``_now_ms``: for postgres the database server's clock, for every host
alike), so hosts whose clocks differ agree on how long one has been silent. The hooks a store implements take and
give that time in epoch milliseconds; the records here carry it in seconds.

A host asks another a question (``ask_host``), which that host answers at its next beat. The questions of the hosts
of one process (the memory and sqlite stores: one process owns them) are kept here, in memory: they live seconds and
no other process could answer them. The postgres store, shared by hosts on several machines, keeps them in a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.core.hosts import QUESTION_TTL_S, HostQuestion, HostRecord
from conveyor.store.leases import LeaseBase

#: A question as the store keeps it: (environment, host, body, asked_at_ms, answer).
QuestionRow = tuple[str, str, str, int, str | None]
#: A host as a store's hook gives it: (host, address, capacity, detail, started_at_s, beat_at_ms, share).
HostRow = tuple[str, str, int, str, float, int, int | None]


def host_row(columns: Sequence[Any]) -> HostRow:
    """A ``HostRow`` from a durable store's columns, in its order."""
    host, address, capacity, detail, started_at_s, beat_at_ms, share = columns
    return (
        str(host),
        str(address),
        int(capacity),
        str(detail),
        float(started_at_s),
        int(beat_at_ms),
        None if share is None else int(share),
    )


class HostBase(LeaseBase):
    """The hosts of each environment, their beats and their shares. ``BaseStore`` inherits it."""

    async def beat_host(
        self, environment: str, host: str, *, address: str, capacity: int, detail: str, started_at_s: float
    ) -> HostRecord:
        now_ms = self._now_ms()
        share = await self._beat_host(environment, host, address, capacity, detail, started_at_s, now_ms)
        return HostRecord(environment, host, address, capacity, detail, started_at_s, now_ms / 1000, 0.0, share)

    async def environment_hosts(self, environment: str) -> list[HostRecord]:
        rows = await self._environment_hosts(environment)
        now_ms = self._now_ms()
        return [
            HostRecord(
                environment,
                host,
                address,
                capacity,
                detail,
                started_at_s,
                beat_at_ms / 1000,
                max(now_ms - beat_at_ms, 0) / 1000,
                share,
            )
            for host, address, capacity, detail, started_at_s, beat_at_ms, share in sorted(rows)
        ]

    async def set_host_shares(self, environment: str, shares: Mapping[str, int]) -> None:
        await self._set_host_shares(environment, dict(shares))

    async def forget_host(self, environment: str, host: str) -> bool:
        return await self._forget_host(environment, host)

    async def ask_host(self, environment: str, host: str, body: str) -> int:
        now_ms = self._now_ms()
        return await self._ask_host(environment, host, body, now_ms, now_ms - int(QUESTION_TTL_S * 1000))

    async def host_questions(self, environment: str, host: str) -> list[HostQuestion]:
        return [HostQuestion(id, body) for id, body in await self._host_questions(environment, host)]

    async def answer_host(self, question_id: int, answer: str) -> None:
        await self._answer_host(question_id, answer)

    async def host_answer(self, question_id: int) -> str | None:
        return await self._host_answer(question_id)

    # -- hooks for subclasses -------------------------------------------------------------------

    async def _beat_host(
        self, environment: str, host: str, address: str, capacity: int, detail: str, started_at_s: float, now_ms: int
    ) -> int | None:
        """Insert the host's row beaten at ``now_ms``, or replace everything of it but its share; return the share
        it keeps (``None`` for a new host)."""
        raise NotImplementedError

    async def _environment_hosts(self, environment: str) -> list[HostRow]:
        """Every host row of ``environment``, in any order."""
        raise NotImplementedError

    async def _set_host_shares(self, environment: str, shares: dict[str, int]) -> None:
        """At once: each host of ``environment`` gets its share in ``shares``, or 0; other names are ignored."""
        raise NotImplementedError

    async def _forget_host(self, environment: str, host: str) -> bool:
        """Delete the host's row; whether there was one."""
        raise NotImplementedError

    # Questions between the hosts of this process, in memory; the postgres store overrides these four.

    _questions: dict[int, QuestionRow]  # set by ``BaseStore``
    _last_question_id: int

    async def _ask_host(self, environment: str, host: str, body: str, now_ms: int, before_ms: int) -> int:
        """Store a question asked at ``now_ms`` and return its id; remove those asked before ``before_ms``."""
        questions = self._questions
        for old in [id for id, row in questions.items() if row[3] < before_ms]:
            del questions[old]
        self._last_question_id = question_id = self._last_question_id + 1
        questions[question_id] = (environment, host, body, now_ms, None)
        return question_id

    async def _host_questions(self, environment: str, host: str) -> list[tuple[int, str]]:
        """(id, body) of each unanswered question to ``host``, oldest first."""
        questions = self._questions
        return [
            (id, row[2]) for id, row in sorted(questions.items()) if row[:2] == (environment, host) and row[4] is None
        ]

    async def _answer_host(self, question_id: int, answer: str) -> None:
        questions = self._questions
        if question_id in questions:
            questions[question_id] = (*questions[question_id][:4], answer)

    async def _host_answer(self, question_id: int) -> str | None:
        """The answer, removing the question once answered."""
        questions = self._questions
        row = questions.get(question_id)
        if row is None or row[4] is None:
            return None
        del questions[question_id]
        return row[4]
