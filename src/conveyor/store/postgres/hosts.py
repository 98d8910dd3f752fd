"""The postgres store's hosts of an environment (``Store.beat_host`` ... ``Store.forget_host``).

A mixin of ``PostgresStore``, as ``sqlite/hosts.py`` is of the sqlite store. Every host of an environment that runs
on this database beats here, so each hook is one statement in its own transaction, through the store's ``_rows``
(``queues.py``): a beat is one upsert that keeps the share and answers it; ``set_host_shares`` one ``UPDATE`` of
the environment's rows, so a reader sees all the new shares or none. A beat's time is the ``now_ms`` ``HostBase``
gives, on the database server's clock (``clock_offset.py``), so every host judges silence on one clock.

Table (migration 5): ``conveyor_hosts``, read and written by its primary key ``(environment, host)``; ``share`` is
NULL until the environment's first scaling decision.

Questions between hosts (migration 6): ``conveyor_host_questions``, one row per question by its id, found by the host
it is for at each beat through ``conveyor_host_questions_to`` (only unanswered rows are in that partial index, so a
beat with nothing asked reads an empty index). Asking removes the environment's questions older than
``QUESTION_TTL_S`` in the same statement; reading an answer removes the question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.store.hosts import HostRow, host_row

HOSTS_DDL: tuple[str, ...] = (
    """
    CREATE TABLE conveyor_hosts (
        environment text NOT NULL,
        host text NOT NULL,
        address text NOT NULL,
        capacity integer NOT NULL,
        detail text NOT NULL,
        started_at_s double precision NOT NULL,
        beat_at_ms bigint NOT NULL,
        share integer,
        PRIMARY KEY (environment, host)
    )
    """,
)

QUESTIONS_DDL: tuple[str, ...] = (
    """
    CREATE TABLE conveyor_host_questions (
        id bigserial PRIMARY KEY,
        environment text NOT NULL,
        host text NOT NULL,
        body text NOT NULL,
        asked_at_ms bigint NOT NULL,
        answer text
    )
    """,
    "CREATE INDEX conveyor_host_questions_to ON conveyor_host_questions (environment, host, id) WHERE answer IS NULL",
)

BEAT_HOST = (
    "INSERT INTO conveyor_hosts (environment, host, address, capacity, detail, started_at_s, beat_at_ms) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (environment, host) DO UPDATE SET address = excluded.address, "
    "capacity = excluded.capacity, detail = excluded.detail, started_at_s = excluded.started_at_s, "
    "beat_at_ms = excluded.beat_at_ms RETURNING share"
)
ENVIRONMENT_HOSTS = (
    "SELECT host, address, capacity, detail, started_at_s, beat_at_ms, share FROM conveyor_hosts WHERE environment = %s"
)
#: Every host of the environment: its share in the arrays, or 0.
SET_SHARES = (
    "UPDATE conveyor_hosts AS h SET share = coalesce("
    "(SELECT given.share FROM unnest(%s::text[], %s::integer[]) AS given (host, share) WHERE given.host = h.host), 0"
    ") WHERE h.environment = %s"
)
FORGET_HOST = "DELETE FROM conveyor_hosts WHERE environment = %s AND host = %s RETURNING host"
ASK_HOST = (
    "WITH old AS (DELETE FROM conveyor_host_questions WHERE environment = %s AND asked_at_ms < %s) "
    "INSERT INTO conveyor_host_questions (environment, host, body, asked_at_ms) VALUES (%s, %s, %s, %s) RETURNING id"
)
HOST_QUESTIONS = (
    "SELECT id, body FROM conveyor_host_questions WHERE environment = %s AND host = %s AND answer IS NULL ORDER BY id"
)
ANSWER_HOST = "UPDATE conveyor_host_questions SET answer = %s WHERE id = %s"
HOST_ANSWER = "DELETE FROM conveyor_host_questions WHERE id = %s AND answer IS NOT NULL RETURNING answer"


class HostHooks:
    if TYPE_CHECKING:  # the store's (``QueueHooks._rows``)

        async def _rows(self, what: str, query: Any, args: Any = (), *, prepare: bool | None = None) -> list[Any]: ...

    async def _beat_host(
        self, environment: str, host: str, address: str, capacity: int, detail: str, started_at_s: float, now_ms: int
    ) -> int | None:
        args = (environment, host, address, capacity, detail, float(started_at_s), now_ms)
        found = await self._rows(f"record the beat of host {host} of environment {environment}", BEAT_HOST, args)
        share = found[0][0]
        return None if share is None else int(share)

    async def _environment_hosts(self, environment: str) -> list[HostRow]:
        found = await self._rows(f"look up the hosts of environment {environment}", ENVIRONMENT_HOSTS, (environment,))
        return [host_row(r) for r in found]

    async def _set_host_shares(self, environment: str, shares: dict[str, int]) -> None:
        hosts = list(shares)
        args = (hosts, [shares[h] for h in hosts], environment)
        await self._rows(f"set the hosts' shares of environment {environment}", SET_SHARES, args)

    async def _forget_host(self, environment: str, host: str) -> bool:
        found = await self._rows(f"forget host {host} of environment {environment}", FORGET_HOST, (environment, host))
        return len(found) == 1

    async def _ask_host(self, environment: str, host: str, body: str, now_ms: int, before_ms: int) -> int:
        args = (environment, before_ms, environment, host, body, now_ms)
        found = await self._rows(f"ask host {host} of environment {environment}", ASK_HOST, args)
        return int(found[0][0])

    async def _host_questions(self, environment: str, host: str) -> list[tuple[int, str]]:
        what = f"look up the questions to host {host} of environment {environment}"
        return [(int(id), str(body)) for id, body in await self._rows(what, HOST_QUESTIONS, (environment, host))]

    async def _answer_host(self, question_id: int, answer: str) -> None:
        await self._rows(f"answer question {question_id}", ANSWER_HOST, (answer, question_id))

    async def _host_answer(self, question_id: int) -> str | None:
        found = await self._rows(f"read the answer to question {question_id}", HOST_ANSWER, (question_id,))
        return str(found[0][0]) if found else None
