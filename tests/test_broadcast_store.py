"""A notice's copies in the store, written while notification batches bump the same users'
seqs: each user's seqs run 1, 2, 3... with no gap and no repeat over both kinds, every
user gets every notice once and in the order the notices committed, nothing deadlocks
(the notice's update and the batches lock users' rows in id order), and a user first seen
afterwards gets the notices on connect."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import asyncpg
import pytest

from hub.store import notifications as notif_store
from hub.store.notifications import NotificationWrite
from supporthub_core.db import init_connection

USERS = 200
NOTICES = 4  # per notice sender
SENDERS = 3
WRITERS = 4
BATCHES = 15  # per writer


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def _store_notice(
    db: asyncpg.Connection, title: str, here: list[str], chunk: int = 1000
) -> list[notif_store.StoredBroadcast]:
    """A notice stored chunk by chunk until it is complete (as `announce` does, without the
    push): the chunks, those of older incomplete notices first."""
    bid = await notif_store.create_broadcast(db, title, "b", {"t": title})
    chunks = []
    while (stored := await notif_store.store_chunk(db, chunk, here)) is not None:
        chunks.append(stored)
        if stored.complete and stored.broadcast_id >= bid:
            break
    return chunks


async def _users_in_id_order(db: asyncpg.Connection, prefix: str, n: int) -> list[str]:
    """`n` users whose ids sort as listed (one digit each)."""
    users = [f"{prefix}{i}" for i in range(n)]
    for user_id in users:
        await notif_store.ensure_user(db, user_id)
    return users


async def _users_out_of_id_order(db: asyncpg.Connection, prefix: str) -> list[str]:
    """USERS users stored in shuffled order, so the table's physical order is not the id
    order (an update in physical order would then lock rows out of id order)."""
    users = [f"{prefix}{i:04d}" for i in range(USERS)]
    shuffled = users[:]
    random.Random(7).shuffle(shuffled)
    for user_id in shuffled:
        await notif_store.ensure_user(db, user_id)
    return users


async def test_notices_and_notification_batches_together_leave_no_gap_and_no_deadlock(
    isolated,
):
    dsn = isolated.dsn
    db = await _connect(dsn)
    try:
        users = await _users_out_of_id_order(db, f"u-{uuid.uuid4().hex[:6]}-")
        stored_notices: list[notif_store.StoredBroadcast] = []

        async def send_notices(k: int) -> None:
            conn = await _connect(dsn)
            try:
                for i in range(NOTICES):
                    stored_notices.extend(
                        await _store_notice(conn, f"n{k}-{i}", users[k::SENDERS], chunk=37)
                    )
            finally:
                await conn.close()

        async def write_batches(k: int) -> None:
            conn = await _connect(dsn)
            rng = random.Random(k)
            try:
                for _ in range(BATCHES):
                    ops = [
                        NotificationWrite(u, "transaction.status", "t", "b", {"n": 1})
                        for u in rng.sample(users, 60)
                    ]
                    await notif_store.write_notifications(conn, ops)
            finally:
                await conn.close()

        await asyncio.wait_for(
            asyncio.gather(
                *(send_notices(k) for k in range(SENDERS)),
                *(write_batches(k) for k in range(WRITERS)),
            ),
            timeout=120,
        )

        notice_ids = sorted({s.broadcast_id for s in stored_notices})
        assert len(notice_ids) == SENDERS * NOTICES
        rows = await db.fetch(
            "select user_id, seq, id, kind, broadcast_id from notifications"
            " where user_id = any($1::text[]) order by user_id, seq",
            users,
        )
        heads = dict(
            await db.fetch("select id, notif_head(id) from users where id = any($1::text[])", users)
        )
        by_user: dict[str, list[asyncpg.Record]] = {u: [] for u in users}
        for r in rows:
            by_user[r["user_id"]].append(r)
        for user_id, mine in by_user.items():
            # 1, 2, 3... over both kinds, up to the user's head
            assert [r["seq"] for r in mine] == list(range(1, heads[user_id] + 1)), user_id
            copies = [r for r in mine if r["kind"] == "system.notice"]
            # every notice once, in the order they committed (ids in seq order)
            assert [r["broadcast_id"] for r in copies] == notice_ids, user_id
        ids = [r["id"] for r in rows]
        assert len(set(ids)) == len(ids)
        # the copies the senders got back are the stored ones
        stored = {(r["user_id"], r["broadcast_id"]): (r["seq"], r["id"]) for r in rows}
        assert {s.broadcast_id for s in stored_notices if s.user_ids} == set(notice_ids)
        for s in stored_notices:
            for user_id, seq, nid in s.copies():
                assert stored[(user_id, s.broadcast_id)] == (seq, nid)

        # a user first seen now gets every notice on connect, seqs from 1
        late = f"late-{uuid.uuid4().hex[:6]}"
        await notif_store.ensure_user(db, late)
        await notif_store.materialise_broadcasts(db, late)
        frames = await notif_store.after(db, late, 0, 100)
        assert [f["seq"] for f in frames] == list(range(1, len(notice_ids) + 1))
        assert len({f["notification_id"] for f in frames} | set(ids)) == len(ids) + len(frames)
    finally:
        await db.close()


async def test_a_copy_is_numbered_after_a_batch_that_committed_while_it_waited(isolated):
    """A batch holding a user's row: the notice waits for it and numbers that user's copy
    after the batch's rows (the update reads the row as the batch left it)."""
    db = await _connect(isolated.dsn)
    writer = await _connect(isolated.dsn)
    try:
        users = await _users_out_of_id_order(db, "w-")
        held = users[USERS // 2]
        tx = writer.transaction()
        await tx.start()
        await notif_store.write_notifications(
            writer, [NotificationWrite(held, "transaction.status", "t", "b", {}) for _ in range(3)]
        )
        notice = asyncio.ensure_future(_store_notice(db, "n", [held]))
        await asyncio.sleep(0.3)
        assert not notice.done()  # waits for the batch's row lock
        await tx.commit()
        [stored] = await asyncio.wait_for(notice, 30)
        assert list(stored.copies()) == [(held, 4, f"n{stored.broadcast_id}.{held}")]
        assert await db.fetchval("select notif_head($1)", held) == 4
    finally:
        await writer.close()
        await db.close()


@pytest.mark.parametrize("users", [3, 3000])
async def test_the_notice_updates_users_in_id_order(isolated, users):
    """The plan of `bump_for_notice`'s update under the function's own settings: fed by a
    merge join on the id (rows in id order, as the batches lock theirs), whatever the
    table's size."""
    db = await _connect(isolated.dsn)
    try:
        await db.execute(
            "insert into users (id) select 'p' || g from generate_series(1, $1) g", users
        )
        await db.execute("analyze users")
        [(body, settings)] = await db.fetch(
            "select prosrc, proconfig from pg_proc where proname = 'bump_for_notice'"
        )
        assert sorted(settings) == ["enable_hashjoin=off", "enable_nestloop=off"]
        async with db.transaction():
            for setting in settings:
                name, value = setting.split("=")
                await db.execute("select set_config($1, $2, true)", name, value)
            ids = [f"p{i}" for i in range(1, users + 1)]
            [plan] = json.loads(await db.fetchval("explain (format json) " + body, 1, ids))
    finally:
        await db.close()

    def nodes(node: dict):
        yield node
        for child in node.get("Plans", ()):
            yield from nodes(child)

    [update] = [n for n in nodes(plan["Plan"]) if n.get("Operation") == "Update"]
    # (the other plan under it: the users' heads read for the returned seqs)
    [fed_by] = [p for p in update["Plans"] if p.get("Parent Relationship") != "SubPlan"]
    assert fed_by["Node Type"] == "Merge Join", fed_by["Node Type"]
    assert "id" in fed_by["Merge Cond"]


async def test_a_notice_left_incomplete_is_finished_before_the_next_ones_users(isolated):
    """The sender of a notice died after its first chunk; a user connected meanwhile (and
    got it then). The next notice's chunks finish the first one before its own users: every
    user has both copies, once each, in the notices' order, seqs consecutive."""
    db = await _connect(isolated.dsn)
    try:
        users = await _users_in_id_order(db, "c-", 8)
        first = await notif_store.create_broadcast(db, "first", "b", {})
        stored = await notif_store.store_chunk(db, 3, users)  # then the sender died
        assert stored is not None and (stored.broadcast_id, stored.complete) == (first, False)
        assert sorted(stored.user_ids) == users[:3]
        await notif_store.materialise_broadcasts(db, users[5])  # connects meanwhile

        chunks = await _store_notice(db, "second", users, chunk=3)
        second = chunks[-1].broadcast_id
        assert second > first and chunks[0].broadcast_id == first
        assert [c.broadcast_id for c in chunks] == sorted(c.broadcast_id for c in chunks)
        # the first notice's chunks skip the user who got it on connect
        assert users[5] not in [u for c in chunks if c.broadcast_id == first for u in c.user_ids]
        rows = await db.fetch(
            "select user_id, seq, broadcast_id, id from notifications order by user_id, seq"
        )
        assert [(r["user_id"], r["seq"], r["broadcast_id"]) for r in rows] == [
            (u, seq, notice) for u in users for seq, notice in ((1, first), (2, second))
        ]
        assert len({r["id"] for r in rows}) == len(rows)
        assert await db.fetchval("select count(*) from broadcasts where completed_at is null") == 0
        assert await notif_store.store_chunk(db, 3, users) is None  # nothing left to store
    finally:
        await db.close()


async def test_a_user_who_gets_the_notice_on_connect_while_its_chunk_waits_gets_it_once(
    isolated,
):
    """A user connecting mid-notice gets it from `materialise_broadcasts`, which holds
    their row while its chunk was chosen: the chunk waits for the row, then reads the
    cursor as materialising left it and skips them."""
    db = await _connect(isolated.dsn)
    connecting = await _connect(isolated.dsn)
    try:
        users = await _users_in_id_order(db, "m-", 4)
        bid = await notif_store.create_broadcast(db, "n", "b", {})
        tx = connecting.transaction()
        await tx.start()
        await notif_store.materialise_broadcasts(connecting, users[2])  # not committed yet
        chunk = asyncio.ensure_future(notif_store.store_chunk(db, 10, users))
        await asyncio.sleep(0.3)
        assert not chunk.done()  # waits for the user's row
        await tx.commit()
        stored = await asyncio.wait_for(chunk, 30)
        assert stored is not None and stored.complete and stored.up_to == users[-1]
        assert sorted(stored.user_ids) == [u for u in users if u != users[2]]
        rows = await db.fetch(
            "select user_id, seq from notifications where broadcast_id = $1 order by user_id", bid
        )
        assert [tuple(r) for r in rows] == [(u, 1) for u in users]
    finally:
        await connecting.close()
        await db.close()


async def test_a_chunks_update_reads_only_its_own_range_of_users(isolated):
    """The last of three chunks reads about its own users' key entries, not every user's
    from the first (the merge join read the primary key from its start)."""
    db = await _connect(isolated.dsn)
    try:
        await db.execute(
            "insert into users (id) select 'r' || lpad(g::text, 5, '0')"
            " from generate_series(1, 3000) g"
        )
        await db.execute("analyze users")
        due = [f"r{i:05d}" for i in range(2001, 3001)]
        async with db.transaction():
            bumped = await db.fetch("select * from bump_for_notice(1, $1)", due)
            # the key's entries this transaction has read so far
            read = await db.fetchval(
                "select pg_stat_get_xact_tuples_returned('users_pkey'::regclass)"
            )
    finally:
        await db.close()
    assert sorted(r["user_id"] for r in bumped) == due
    assert read <= 1100, read
