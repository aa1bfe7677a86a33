"""The transactional outbox: payment events written with the state change, then relayed.

Writing: `append` inserts a transaction's events as its last statement, after taking a
transaction-scoped advisory lock that PostgreSQL releases only after COMMIT (or
rollback) has made the transaction visible. Whoever inserts next therefore draws its
ids after the previous writer's rows are visible: outbox ids are handed out in commit
order. That makes `id > cursor` a sound way to read: a reader that has seen id N never
later sees a smaller id appear (only rolled-back ids leave permanent gaps). We chose the
lock over a `pg_snapshot_xmin` watermark because xids are taken at a transaction's
first write, not at its outbox insert, so xid order and id order can differ and an
integer id cursor below an xmin watermark can still skip a row. The lock serialises
only the final insert and the COMMIT of the transactions that emit events.

Relaying: `Relay` publishes unpublished rows in id order on the Redis channel
`payments.events` (SPUBLISH on a Redis Cluster), one signed envelope per event (CONTRACT section 4:
`{event: <the stored payload bytes, encoded once>, sig: <HMAC with HUB_EVENTS_KEY>}`),
then marks them published. One relay at a time publishes (a try-lock), so several payments
processes do not interleave. Delivery is at least once: a crash between PUBLISH and
the UPDATE sends a row again, and the hub handles each `event_id` once. Redis down:
rows stay unpublished, the relay backs off and logs, and they go out when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
import msgpack
from redis.exceptions import RedisError

from supporthub_core.event_signing import EventSigner
from supporthub_core.redis_client import publish

log = logging.getLogger(__name__)

CHANNEL = "payments.events"
_WRITE_LOCK = 0x5061_794F  # "PayO": held from the outbox insert until commit
_RELAY_LOCK = 0x5061_7952  # "PayR": one publishing relay at a time
BATCH = 500


def new_event_id() -> str:
    return "ev_" + uuid.uuid4().hex


def iso(at: datetime) -> str:
    """ISO 8601 with its offset (times come from PostgreSQL, always aware)."""
    return at.isoformat()


def event(type_: str, user_id: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    """One event as the CONTRACT (section 4) spells it: the common fields, then the
    type's own; fields whose value is None are left out."""
    ev = {
        "event_id": new_event_id(),
        "type": type_,
        "user_id": user_id,
        "occurred_at": iso(occurred_at),
    }
    ev.update({k: v for k, v in fields.items() if v is not None})
    return ev


def encode(ev: Mapping[str, Any]) -> bytes:
    return msgpack.packb(dict(ev), use_bin_type=True)


def decode(payload: bytes) -> dict[str, Any]:
    event: dict[str, Any] = msgpack.unpackb(payload, raw=False)
    return event


async def append(conn: asyncpg.Connection, events: Iterable[Mapping[str, Any]]) -> None:
    """Insert events inside the caller's transaction. Call it as the transaction's last
    statement: the lock it takes is held until COMMIT (see the module docstring)."""
    events = list(events)
    if not events:
        return
    assert conn.is_in_transaction(), "outbox rows go in the state change's transaction"
    await conn.execute("select pg_advisory_xact_lock($1)", _WRITE_LOCK)
    await conn.execute(
        "insert into outbox (event_id, type, user_id, payload)"
        " select * from unnest($1::text[], $2::text[], $3::text[], $4::bytea[])",
        [e["event_id"] for e in events],
        [e["type"] for e in events],
        [e["user_id"] for e in events],
        [encode(e) for e in events],
    )


async def read_after(
    conn: asyncpg.Connection, after_id: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Committed events with id > after_id, in id order, each with its `outbox_id`;
    and the cursor to pass next time."""
    rows = await conn.fetch(
        "select id, payload from outbox where id > $1 order by id limit $2", after_id, limit
    )
    events = [{**decode(r["payload"]), "outbox_id": r["id"]} for r in rows]
    return events, (rows[-1]["id"] if rows else after_id)


async def alerts_for(conn: asyncpg.Connection, user_id: str, limit: int) -> list[dict[str, Any]]:
    """A user's recent security alerts, newest first."""
    rows = await conn.fetch(
        "select id, payload from outbox where user_id = $1 and type = 'security.alert'"
        " order by id desc limit $2",
        user_id,
        limit,
    )
    return [{**decode(r["payload"]), "outbox_id": r["id"]} for r in rows]


class Relay:
    """Publishes unpublished outbox rows to Redis. `run` never returns on errors: it
    logs, backs off and tries again; `wake` makes it look at once (after a commit)."""

    def __init__(self, pool: asyncpg.Pool, redis: Any, *, events_key: bytes, poll_s: float = 0.2):
        if not events_key:
            raise ValueError("the outbox relay needs the events key (HUB_EVENTS_KEY)")
        self.pool = pool
        self.redis = redis
        self._signer = EventSigner(events_key)
        self.poll_s = poll_s
        self.published = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """Publish one batch; return how many rows went out (0: none, or another relay
        holds the lock). Raises when Redis or PostgreSQL fail: nothing is marked then."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                "select id, payload from outbox where published_at is null order by id limit $1",
                BATCH,
            )
            if not rows:
                return 0
            async with self.redis.pipeline(transaction=False) as pipe:
                for r in rows:
                    # exactly the stored bytes are signed: they are the event's encoding
                    publish(pipe, CHANNEL, self._signer.sign(r["payload"]))
                await pipe.execute()
            await conn.execute(
                "update outbox set published_at = now() where id = any($1::bigint[])",
                [r["id"] for r in rows],
            )
        self.published += len(rows)
        return len(rows)

    async def run(self) -> None:
        delay = 0.0
        failures = 0
        while True:
            try:
                sent = await self.publish_once()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                failures += 1
                delay = min(max(delay * 2, 0.1), 2.0)
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "outbox relay: cannot publish (%s: %s); retrying, attempt %d",
                        type(exc).__name__,
                        exc,
                        failures,
                    )
                await asyncio.sleep(delay)
                continue
            except Exception:
                failures += 1
                delay = min(max(delay * 2, 0.1), 2.0)
                log.exception("outbox relay: unexpected error; retrying")
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("outbox relay: publishing again after %d failed attempts", failures)
            failures, delay = 0, 0.0
            if sent >= BATCH:
                continue  # more waiting
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
