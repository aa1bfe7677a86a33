"""The notifications' write: each event stored once, each user's seqs without gaps, whether
the batch's events are all new (checked by the unique index alone) or some were stored
before (the batch written again by the statement that skips them), inside a transaction
or not."""

from __future__ import annotations

import random
import uuid

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.store.notifications import (
    NotificationWrite,
    first_of_each_event,
    write_notifications,
    writes_after,
)


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
    assert await db.fetchval("select notif_seq from users where id = $1", a) == 4
    assert await db.fetchval("select notif_seq from users where id = $1", b) == 1


async def test_a_batch_of_stored_events_only_writes_nothing(db):
    a = _uid()
    ops = [_note(a, _ev()), _note(a, _ev())]
    await write_notifications(db, ops)
    assert await write_notifications(db, ops) == [None, None]
    assert [s for s, _ in await _stored(db, a)] == [1, 2]
    assert await db.fetchval("select notif_seq from users where id = $1", a) == 2


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


@given(st.lists(st.sampled_from("abcd"), max_size=30))
def test_writes_after_counts_the_same_users_later_writes(users):
    backs, counts = writes_after(users)
    assert counts == {u: users.count(u) for u in set(users)}
    for i, (user_id, back) in enumerate(zip(users, backs, strict=True)):
        assert back == users[i + 1 :].count(user_id)


@pytest.mark.parametrize("seed", range(3))
async def test_new_events_are_numbered_in_batch_order_from_each_users_counter(db, seed):
    """A batch of new events only (numbered by the hub): users interleaved in any order,
    some with notifications before, some new, each user's rows get the next seqs in batch
    order, and the counters move by the rows written."""
    rng = random.Random(seed)
    users = [_uid() for _ in range(4)]
    before = {u: rng.randint(0, 3) for u in users}
    for u, n in before.items():
        if n:
            await write_notifications(db, [_note(u, _ev()) for _ in range(n)])
    ops = [_note(rng.choice(users), rng.choice([None, _ev()])) for _ in range(25)]
    out = await write_notifications(db, ops)
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
        assert await db.fetchval("select notif_seq from users where id = $1", u) == before[u] + len(
            mine
        )
