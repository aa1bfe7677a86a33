"""The notifications' write: each event stored once, each user's seqs without gaps, whether
the batch's events are all new (checked by the unique indexes alone) or some were stored
before or some seqs taken meanwhile (the batch numbered and written again), inside a
transaction or not, from the node's heads or from the store's."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from hub.rules.notif_heads import NotifHeads
from hub.store.notifications import NotificationWrite, first_of_each_event, write_notifications
from supporthub_core.db import init_connection


def _uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _ev() -> str:
    return f"ev-{uuid.uuid4().hex}"


def _note(user_id: str, event_id: str | None) -> NotificationWrite:
    return NotificationWrite(user_id, "transaction.status", "t", "b", {"n": 1}, event_id)


def test_first_of_each_event_keeps_writes_without_an_event_and_each_events_first():
    ops = [_note("a", "e1"), _note("a", None), _note("b", "e1"), _note("b", None), _note("a", "e2")]
    assert first_of_each_event(ops) == [0, 1, 3, 4]
    assert first_of_each_event([]) == []


async def _stored(db: asyncpg.Connection, user_id: str) -> list[tuple[int, str | None]]:
    rows = await db.fetch(
        "select seq, event_id from notifications where user_id = $1 order by seq", user_id
    )
    return [(r["seq"], r["event_id"]) for r in rows]


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in-transaction"])
async def test_stored_and_repeated_events_yield_none_and_leave_no_gap(db, in_transaction):
    a, b = _uid(), _uid()
    old, e1, e2, e3 = _ev(), _ev(), _ev(), _ev()
    [first] = await write_notifications(db, [_note(a, old)])
    assert first is not None and first.seq == 1
    ops = [
        _note(a, e1),
        _note(b, old),  # stored before (for a): skipped, whoever it names now
        _note(a, e1),  # the same event again in the batch
        _note(b, e2),
        _note(a, None),
        _note(a, e3),
    ]
    if in_transaction:
        async with db.transaction():
            out = await write_notifications(db, ops)
    else:
        out = await write_notifications(db, ops)
    assert [n and (n.user_id, n.seq) for n in out] == [
        (a, 2),
        None,
        None,
        (b, 1),
        (a, 3),
        (a, 4),
    ]
    assert await _stored(db, a) == [(1, old), (2, e1), (3, None), (4, e3)]
    assert await _stored(db, b) == [(1, e2)]
    assert await db.fetchval("select notif_head($1)", a) == 4
    assert await db.fetchval("select notif_head($1)", b) == 1


async def test_a_batch_of_stored_events_only_writes_nothing(db):
    a = _uid()
    ops = [_note(a, _ev()), _note(a, _ev())]
    await write_notifications(db, ops)
    assert await write_notifications(db, ops) == [None, None]
    assert [s for s, _ in await _stored(db, a)] == [1, 2]
    assert await db.fetchval("select notif_head($1)", a) == 2


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in-transaction"])
async def test_each_row_comes_back_with_its_own_op_and_is_stored_as_written(db, in_transaction):
    """The batch goes as one array of rows and one JSON array of data, matched by position,
    and comes back as positions and seqs: each op's fields (any text, any data) land in its
    own row and its own StoredNotification, whatever was skipped around it."""
    a, b = _uid(), _uid()
    old = _ev()
    await write_notifications(db, [_note(b, old)])
    texts = [
        "plain",
        'quo"te, comma; {brace} \\ back',
        "",
        "新しい 通知 ✓",
        "line\nbreak\ttab",
        "(x)",
    ]
    datas = [{}, {"k": [1, 2.5, None, True]}, {"nested": {"a": {"b": "c"}}}, {"u": "é中"}]
    ops = []
    for i in range(12):
        event = None if i % 5 == 4 else (old if i == 3 else _ev())
        text = texts[i % len(texts)]
        ops.append(
            NotificationWrite(
                (a, b)[i % 2], f"kind.{i}", f"t{i} {text}", f"{text} b{i}", datas[i % 4], event
            )
        )
    ops.append(ops[1])  # the same event again in the batch
    if in_transaction:
        async with db.transaction():
            out = await write_notifications(db, ops)
    else:
        out = await write_notifications(db, ops)
    assert [n is None for n in out] == [i in (3, 12) for i in range(13)]
    for op, n in zip(ops, out, strict=True):
        if n is None:
            continue
        assert (n.user_id, n.kind, n.title, n.body, n.data, n.agents, n.bot_chats) == (
            op.user_id, op.kind, op.title, op.body, op.data, (), ()
        )  # fmt: skip
        row = await db.fetchrow("select * from notifications where id = $1", n.notification_id)
        assert (row["user_id"], row["seq"], row["kind"], row["title"], row["body"]) == (
            op.user_id, n.seq, op.kind, op.title, op.body
        )  # fmt: skip
        assert (row["data"], row["event_id"]) == (op.data, op.event_id)
    assert [n.seq for n in out if n is not None and n.user_id == a] == [1, 2, 3, 4, 5, 6]
    assert [n.seq for n in out if n is not None and n.user_id == b] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("heads", [False, True], ids=["store-heads", "node-heads"])
async def test_new_events_are_numbered_in_batch_order_from_each_users_head(db, seed, heads):
    """A batch of new events only: users interleaved in any order, some with notifications
    before, some new, each user's rows get the next seqs in batch order, and the heads
    move by the rows written."""
    rng = random.Random(seed)
    users = [_uid() for _ in range(4)]
    before = {u: rng.randint(0, 3) for u in users}
    node = NotifHeads() if heads else None
    for u, n in before.items():
        if n:
            await write_notifications(db, [_note(u, _ev()) for _ in range(n)], node)
    ops = [_note(rng.choice(users), rng.choice([None, _ev()])) for _ in range(25)]
    out = await write_notifications(db, ops, node)
    for u in users:
        mine = [n for n in out if n.user_id == u]
        assert [n.seq for n in mine] == list(range(before[u] + 1, before[u] + 1 + len(mine)))
        assert [n.notification_id for n in mine] == [
            r["id"]
            for r in await db.fetch(
                "select id from notifications where user_id = $1 and seq > $2 order by seq",
                u,
                before[u],
            )
        ]
        assert await db.fetchval("select notif_head($1)", u) == before[u] + len(mine)


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def _take_seq(conn: asyncpg.Connection, user_id: str, seq: int):
    """Another writer's transaction, left open, that has stored the user's `seq`."""
    tx = conn.transaction()
    await tx.start()
    await conn.execute(
        "insert into notifications (id, user_id, seq, kind, title, body, data)"
        " values ($1, $2, $3, 'k', 't', 'b', '{}')",
        _ev(),
        user_id,
        seq,
    )
    return tx


async def _seqs_of(db: asyncpg.Connection, user_id: str) -> list[int]:
    return [s for s, _ in await _stored(db, user_id)]


async def test_two_nodes_writing_the_same_users_keep_their_seqs_gapless(db, services):
    """Two nodes, each numbering from its own heads, write batches for the same users at
    the same time: each finds the other's seqs taken on the primary key, loads the heads
    again and writes again. Every write is stored once and each user's seqs are 1..n."""
    users = [_uid() for _ in range(4)]
    conns = [await _connect(services.dsn) for _ in range(2)]
    rng = random.Random(7)
    written: list[str] = []

    async def node(conn: asyncpg.Connection) -> None:
        heads = NotifHeads()
        for _ in range(12):
            ops = [_note(rng.choice(users), _ev()) for _ in range(rng.randint(1, 4))]
            out = await write_notifications(conn, ops, heads)
            assert all(n is not None for n in out)
            written.extend(o.user_id for o in ops)

    try:
        await asyncio.gather(*(node(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    for u in users:
        n = written.count(u)
        assert await _seqs_of(db, u) == list(range(1, n + 1))
        assert await db.fetchval("select notif_head($1)", u) == n


async def test_a_seq_taken_by_another_writer_is_numbered_again(db, services):
    """The node's head is behind (another writer stored the user's next seq, committing
    while this write waited on it): the write takes the seq after it, nothing is lost."""
    a = _uid()
    heads = NotifHeads()
    await write_notifications(db, [_note(a, _ev())], heads)
    other = await _connect(services.dsn)
    try:
        tx = await _take_seq(other, a, 2)
        write = asyncio.create_task(write_notifications(db, [_note(a, _ev())], heads))
        await asyncio.sleep(0.2)  # it waits on the uncommitted seq 2
        await tx.commit()
        [n] = await write
    finally:
        await other.close()
    assert n is not None and n.seq == 3
    assert await _seqs_of(db, a) == [1, 2, 3]


async def test_a_write_inside_a_transaction_survives_a_taken_seq(db, services):
    """Inside the caller's transaction (a freeze, a batch with chat messages), a seq taken
    meanwhile fails only the attempt's savepoint: the write is numbered again and the
    caller's transaction goes on and commits."""
    a = _uid()
    await write_notifications(db, [_note(a, _ev())])
    other = await _connect(services.dsn)
    try:
        tx = await _take_seq(other, a, 2)

        async def caller() -> int:
            async with db.transaction():
                [n] = await write_notifications(db, [_note(a, _ev())], NotifHeads())
                await db.execute("update users set lang = 'en' where id = $1", a)
                return n.seq

        task = asyncio.create_task(caller())
        await asyncio.sleep(0.2)
        await tx.commit()
        assert await task == 3
    finally:
        await other.close()
    assert await _seqs_of(db, a) == [1, 2, 3]
    assert await db.fetchval("select lang from users where id = $1", a) == "en"


async def test_a_rolled_back_write_does_not_move_the_nodes_head(db):
    """Written inside a transaction that rolls back: the node's heads are not advanced
    past what is committed, so the next write leaves no gap."""
    a = _uid()
    heads = NotifHeads()
    await write_notifications(db, [_note(a, _ev())], heads)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await write_notifications(db, [_note(a, _ev()), _note(a, _ev())], heads)
            raise RuntimeError("the caller fails after the write")
    [n] = await write_notifications(db, [_note(a, _ev())], heads)
    assert n is not None and n.seq == 2
    assert await _seqs_of(db, a) == [1, 2]


async def test_a_locked_user_row_does_not_hold_up_their_notifications(db, services):
    """The write no longer locks or updates the user's row: a transaction holding it (an
    ack, a connect's missed notices, a long export) does not delay the user's payment
    notifications. The write used to wait for it, holding up its whole batch."""
    a = _uid()
    await write_notifications(db, [_note(a, _ev())])
    other = await _connect(services.dsn)
    try:
        async with other.transaction():
            await other.execute("select 1 from users where id = $1 for update", a)
            [n] = await asyncio.wait_for(
                write_notifications(db, [_note(a, _ev())], NotifHeads()), timeout=10
            )
    finally:
        await other.close()
    assert n is not None and n.seq == 2
