"""The writers of notifications in SQL (a notice's chunk, a campaign's batch, the notices a
user missed, stored on connect) number each user's copy from the user's head, the last
seq of their rows (`notif_head`), not from `users.notif_seq`, which they no longer bump.
The hub's writer stores rows without taking the user's row lock: when it takes the seq
one of these writers is about to take, the writer waits for it, then numbers that copy
again after it. It never fails, leaves no gap and stores each copy once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from hub.store import campaigns
from hub.store import notifications as notif_store
from supporthub_core.db import init_connection

TEXTS = {"zh": {"title": "维护", "body": "周六维护。"}, "en": {"title": "Upkeep", "body": "Sat."}}
USERS = ["h-a", "h-b", "h-c"]
HELD = "h-b"  # the user whose next seq the hub takes first
BEFORE = 2  # rows each user has before


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def _seed(db: asyncpg.Connection, counter: int) -> None:
    """USERS, each with BEFORE rows (seqs 1..BEFORE) and `users.notif_seq` at `counter`."""
    for user_id in USERS:
        await notif_store.ensure_user(db, user_id)
        await db.execute("update users set notif_seq = $2 where id = $1", user_id, counter)
        for seq in range(1, BEFORE + 1):
            await _insert_row(db, user_id, seq)


async def _insert_row(db: asyncpg.Connection, user_id: str, seq: int) -> None:
    """A row stored as the hub's writer stores it: the user's row neither locked nor
    updated."""
    await db.execute(
        "insert into notifications (id, user_id, seq, kind, title, body)"
        " values ($1, $2, $3, 'transaction.status', 't', 'b')",
        f"direct-{user_id}-{seq}",
        user_id,
        seq,
    )


async def _campaign(db: asyncpg.Connection) -> int:
    """A campaign to every user, under way, its lease held by node "n1"."""
    return await db.fetchval(
        "insert into campaigns (texts, audience, send_at, status, created_by, lease_owner,"
        " lease_until) values ($1, $2, now(), 'sending', 'test', 'n1', now() + interval '1 hour')"
        " returning id",
        TEXTS,
        {"kind": "all"},
    )


@dataclass
class Writer:
    """A writer made ready (its notice or campaign stored): `write` stores the copies and
    returns them as (user, seq, id), sorted (None: it returns nothing); they are the
    notifications whose `column` is `value`."""

    write: Callable[[asyncpg.Connection], Awaitable[Any]]
    column: str
    value: int


async def _prepare_notice(db: asyncpg.Connection) -> Writer:
    bid = await notif_store.create_broadcast(db, "n", "b", {})

    async def write(conn: asyncpg.Connection) -> Any:
        stored = await notif_store.store_chunk(conn, 100, None)
        assert stored is not None and stored.broadcast_id == bid and stored.complete
        return sorted(stored.copies())

    return Writer(write, "broadcast_id", bid)


async def _prepare_campaign(db: asyncpg.Connection) -> Writer:
    cid = await _campaign(db)

    async def write(conn: asyncpg.Connection) -> Any:
        batch = await campaigns.send_batch(conn, cid, "n1", 100, 60)
        assert not batch.lost and not batch.done
        return sorted((u, frame["seq"], frame["notification_id"]) for u, frame in batch.copies)

    return Writer(write, "campaign_id", cid)


async def _prepare_on_connect(db: asyncpg.Connection) -> Writer:
    bid = await notif_store.create_broadcast(db, "n", "b", {})

    async def write(conn: asyncpg.Connection) -> Any:
        for user_id in USERS:
            await notif_store.materialise_broadcasts(conn, user_id)
        return None

    return Writer(write, "broadcast_id", bid)


WRITERS = {
    "notice chunk": _prepare_notice,
    "campaign batch": _prepare_campaign,
    "notices on connect": _prepare_on_connect,
}


async def _check(db: asyncpg.Connection, w: Writer, returned: Any, held_extra: int) -> None:
    """Every user's seqs are 1..n, each user has one copy, numbered after their rows (the
    held user's after the hub's row too); what the writer returned is what it stored."""
    rows = await db.fetch(
        f"select user_id, seq, id, {w.column} as mine from notifications order by user_id, seq"
    )
    for user_id in USERS:
        seqs = [r["seq"] for r in rows if r["user_id"] == user_id]
        extra = held_extra if user_id == HELD else 0
        assert seqs == list(range(1, BEFORE + extra + 2)), (user_id, seqs)
    copies = sorted((r["user_id"], r["seq"], r["id"]) for r in rows if r["mine"] == w.value)
    assert [(u, s) for u, s, _ in copies] == [
        (u, BEFORE + (held_extra if u == HELD else 0) + 1) for u in USERS
    ]
    if returned is not None:
        assert returned == copies


async def _blocked(db: asyncpg.Connection, pid: int, task: asyncio.Future) -> bool:
    """Whether the backend `pid` waits for a lock (polled until it does, or the task ends)."""
    while not task.done():
        if await db.fetchval(
            "select exists (select 1 from pg_locks where pid = $1 and not granted)", pid
        ):
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("writer", list(WRITERS))
async def test_a_seq_the_hub_takes_first_is_waited_for_and_numbered_after(isolated, writer):
    """The hub stores the held user's next seq (its row not yet committed); the writer
    waits for it, then gives that user the seq after it: no error, no gap, one copy."""
    db = await _connect(isolated.dsn)
    hub = await _connect(isolated.dsn)
    conn = await _connect(isolated.dsn)
    try:
        await _seed(db, counter=BEFORE)  # the counter as the bumping writes left it
        w = await WRITERS[writer](db)
        tx = hub.transaction()
        await tx.start()
        await _insert_row(hub, HELD, BEFORE + 1)  # numbered from the hub's memory
        pid = await conn.fetchval("select pg_backend_pid()")
        task = asyncio.ensure_future(w.write(conn))
        assert await _blocked(db, pid, task), task.result()  # waits for the hub's row
        await tx.commit()
        returned = await asyncio.wait_for(task, 30)
        await _check(db, w, returned, held_extra=1)
    finally:
        for c in (conn, hub, db):
            await c.close()


@pytest.mark.parametrize("writer", list(WRITERS))
async def test_the_next_seq_follows_the_rows_whatever_the_old_counter(isolated, writer):
    """`users.notif_seq` is not read: users whose rows go up to 2 while it says 0 get 3."""
    db = await _connect(isolated.dsn)
    try:
        await _seed(db, counter=0)
        w = await WRITERS[writer](db)
        returned = await w.write(db)
        await _check(db, w, returned, held_extra=0)
        assert await db.fetchval("select max(notif_seq) from users") == 0  # not bumped
    finally:
        await db.close()
