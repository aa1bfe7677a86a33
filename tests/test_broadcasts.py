"""System notices sent together: every user gets each one once, in seq order, whether
connected, offline or first seen afterwards."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytestmark = pytest.mark.usefixtures("clean")

NOTICES = 20


async def test_concurrent_broadcasts_reach_everyone_once(hub):
    online_id, offline_id = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    online = await hub.client(online_id)
    await (await hub.client(offline_id)).close()

    async with hub.http(hub.token("sup", "supervisor")) as http:
        answers = await asyncio.gather(*(
            http.post("/api/broadcasts", json={"title": f"n{i}", "body": "b"})
            for i in range(NOTICES)
        ))  # fmt: skip
    assert {r.status_code for r in answers} == {202}

    async def titles(client) -> list[str]:
        got = [await client.expect("notification", timeout=15) for _ in range(NOTICES)]
        assert [n["seq"] for n in got] == sorted(n["seq"] for n in got)
        await client.quiet("notification", 0.3)
        return sorted(n["title"] for n in got)

    expected = sorted(f"n{i}" for i in range(NOTICES))
    assert await titles(online) == expected
    for user_id in (offline_id, f"u-{uuid.uuid4().hex[:8]}"):  # offline; first seen now
        client = await hub.client(user_id, resume={"notifications_after": 0})
        assert await titles(client) == expected
        await client.close()
    await online.close()


async def test_a_notice_reaches_every_socket_of_each_codec_as_stored(hub):
    """The copies pushed from the transaction that stored them (frames joined from shared
    parts per codec) are the frames a resume reads from the store, and can be acked."""
    from tests.client import MSGPACK

    first, second = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    sockets = {
        "first json": await hub.client(first),
        "first msgpack": await hub.client(first, proto=MSGPACK),
        "second msgpack": await hub.client(second, proto=MSGPACK),
        "second in English": await hub.client(
            second, proto=MSGPACK, hello_fields={"lang": "en", "tz": "Europe/Berlin"}
        ),
    }
    data = {"quote": 'say "hi"\n', "nested": {"list": [1, 2.5, None, True]}, "长": "值"}
    async with hub.http(hub.token("sup", "supervisor")) as http:
        for title in ("维护通知", "second notice"):
            answer = await http.post(
                "/api/broadcasts", json={"title": title, "body": "今晚 2:00", "data": data}
            )
            assert answer.status_code == 202

    got = {name: [await c.expect("notification", timeout=15) for _ in range(2)]
           for name, c in sockets.items()}  # fmt: skip
    for user_id, names in ((first, ["first json", "first msgpack"]),
                           (second, ["second msgpack", "second in English"])):  # fmt: skip
        resumed = await hub.client(user_id, resume={"notifications_after": 0})
        stored = [await resumed.expect("notification") for _ in range(2)]
        assert [n["title"] for n in stored] == ["维护通知", "second notice"]
        assert stored[0]["data"] == data and stored[1]["seq"] == stored[0]["seq"] + 1
        for name in names:
            if name == "second in English":  # rendered for the device: same copy
                assert [(n["seq"], n["notification_id"]) for n in got[name]] == [
                    (n["seq"], n["notification_id"]) for n in stored
                ]
            else:
                assert got[name] == stored, name
        acked = await resumed.request({"type": "notifications.ack", "up_to": stored[-1]["seq"]})
        assert acked["type"] == "ack", acked
        await resumed.close()
        later = await hub.client(user_id, resume={"notifications_after": stored[-1]["seq"]})
        await later.quiet("notification", 0.3)
        await later.close()
    for c in sockets.values():
        await c.quiet("notification", 0.2)
        await c.close()


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_a_notice_written_in_parts_reaches_every_user_once_on_both_nodes(isolated):
    """Copies committed and pushed a few users at a time: the sending node's users get
    theirs from the parts (its local users split over several), the other node's through
    the announcement, offline users have theirs stored; two notices sent at once keep
    every user's seq order."""
    import asyncpg

    from hub.services import broadcasts
    from tests.conftest import start_hub

    a, b = await start_hub(isolated), await start_hub(isolated)
    try:
        on_a = [await a.client(uid()) for _ in range(7)]
        on_b = [await b.client(uid()) for _ in range(5)]
        offline = [uid() for _ in range(3)]
        for user_id in offline:
            await (await a.client(user_id)).close()
        hub = a.hub

        async def send(title: str) -> int:
            return await broadcasts.announce(hub.store.pool, hub.node.bus.redis, hub.secret,
                                             title, "b", {}, here=hub.node, part_users=2)  # fmt: skip

        ids = await asyncio.gather(send("first"), send("second"))
        for client in on_a + on_b:
            got = [await client.expect("notification", timeout=15) for _ in range(2)]
            assert [n["seq"] for n in got] == [1, 2]
            assert sorted(n["title"] for n in got) == ["first", "second"]
            await client.quiet("notification", 0.2)
        db = await asyncpg.connect(isolated.dsn)
        try:
            copies = await db.fetch(
                "select user_id, array_agg(seq order by broadcast_id) as seqs"
                " from notifications where broadcast_id = any($1::bigint[]) group by user_id",
                ids,
            )
            assert len(copies) == 15 and {tuple(r["seqs"]) for r in copies} == {(1, 2)}
            assert not await db.fetchval("select bool_or(filling) from broadcasts")
        finally:
            await db.close()
        for client in on_a + on_b:
            await client.close()
    finally:
        await a.stop()
        await b.stop()


async def test_a_notice_left_half_filled_is_finished_by_the_sweeper(hub):
    """A sender that stopped after committing a part (its users' copies stored, not
    pushed) leaves the notice `filling` and the notices' lock free: the sweeper gives
    every other user their copy and announces it, and every connected user gets theirs
    once. While a sender holds the lock, its notice is left to it."""
    from hub.services import broadcasts
    from hub.store import notifications as notif_store

    users = sorted(uid() for _ in range(5))
    clients = [await hub.client(user_id) for user_id in users]
    node = hub.hub
    pool = node.store.pool
    async with pool.acquire() as lock_db, lock_db.transaction():  # a sender still at work
        assert await notif_store.try_broadcast_lock(lock_db)
        async with pool.acquire() as db:
            first = await notif_store.start_broadcast(db, "half", "done", {}, [], 2)
            assert (first.last_user, first.more) == (users[1], True)
        assert await broadcasts.finish_interrupted(pool, node.node.bus.redis, node.secret) == []
        await clients[0].quiet("notification", 0.6)  # sweeps pass meanwhile
    # the lock is free now, the notice still filling: as a sender's death leaves it
    for client in clients:
        n = await client.expect("notification", kind="system.notice", timeout=15)
        assert (n["seq"], n["title"]) == (1, "half")
        await client.quiet("notification", 0.2)
    async with pool.acquire() as db:
        assert not await db.fetchval(
            "select filling from broadcasts where id = $1", first.copies.broadcast_id
        )
    for client in clients:
        await client.close()


async def test_the_next_notice_finishes_one_left_half_filled_first(hub):
    """The copies of a notice left half-done come before the next notice's, for every
    user: the next sender fills it first, under the same lock."""
    from hub.store import notifications as notif_store

    users = sorted(uid() for _ in range(4))
    clients = [await hub.client(user_id) for user_id in users]
    pool = hub.hub.store.pool
    async with pool.acquire() as lock_db, lock_db.transaction():  # keeps the sweeper off
        assert await notif_store.try_broadcast_lock(lock_db)
        async with pool.acquire() as db:
            await notif_store.start_broadcast(db, "older", "b", {}, [], 1)
    async with hub.http(hub.token("sup", "supervisor")) as http:
        answer = await http.post("/api/broadcasts", json={"title": "newer", "body": "b"})
        assert answer.status_code == 202
    for client in clients:
        got = [await client.expect("notification", timeout=15) for _ in range(2)]
        assert [(n["seq"], n["title"]) for n in got] == [(1, "older"), (2, "newer")]
        await client.quiet("notification", 0.2)
        await client.close()


async def test_a_notice_whose_later_part_fails_is_accepted_and_finished(hub):
    """A part after the first fails (here a trigger refuses one user's copy): the notice is
    stored, so the sender is told it is accepted rather than made to send it twice; the
    users of the parts committed got theirs, and once the store takes the rest again the
    sweeper gives every other user theirs, each once."""
    from hub.services import broadcasts

    users = sorted(uid() for _ in range(4))
    clients = [await hub.client(user_id) for user_id in users]
    node = hub.hub
    pool = node.store.pool
    async with pool.acquire() as db:
        await db.execute(
            "create function refuse_copy() returns trigger language plpgsql as $$"
            f" begin if new.user_id = '{users[2]}' then raise exception 'refused'; end if;"
            " return new; end $$;"
            " create trigger refuse_copy before insert on notifications"
            " for each row execute function refuse_copy()"
        )
    try:
        notice_id = await broadcasts.announce(pool, node.node.bus.redis, node.secret,
                                              "parts", "b", {}, here=node.node, part_users=1)  # fmt: skip
        for client in clients[:2]:
            assert (await client.expect("notification", timeout=15))["title"] == "parts"
        async with pool.acquire() as db:
            assert await db.fetchval("select filling from broadcasts where id = $1", notice_id)
    finally:
        async with pool.acquire() as db:
            await db.execute("drop trigger refuse_copy on notifications;"
                             " drop function refuse_copy()")  # fmt: skip
    await broadcasts.finish_interrupted(pool, node.node.bus.redis, node.secret)
    for client in clients[2:]:
        assert (await client.expect("notification", timeout=15))["title"] == "parts"
    for client in clients:
        await client.quiet("notification", 0.3)
        await client.close()
    async with pool.acquire() as db:
        copies = await db.fetch(
            "select user_id from notifications where broadcast_id = $1", notice_id
        )
        assert sorted(r["user_id"] for r in copies) == users
        assert not await db.fetchval("select filling from broadcasts where id = $1", notice_id)


async def test_a_part_of_local_users_not_stored_yet_moves_on(hub):
    """A socket is in the node's registry before its user's row is stored (a new user
    still registering), so a part capped at that user finds nobody to give the notice
    to: the fill goes on past it instead of asking for the same part for ever."""
    from hub.services import broadcasts
    from hub.store import notifications as notif_store

    users = sorted(uid() for _ in range(3))
    clients = [await hub.client(user_id) for user_id in users]
    registering = users[0] + "0"  # sorts right after users[0]; no row yet
    pool = hub.hub.store.pool
    async with pool.acquire() as lock_db, lock_db.transaction(), pool.acquire() as db:
        assert await notif_store.try_broadcast_lock(lock_db)  # as a sender: no sweeper
        first = await notif_store.start_broadcast(db, "during", "b", {}, users[:1], 1)
        async with asyncio.timeout(60):  # the old code never came back
            await broadcasts.fill(db, first, sorted([*users, registering]), 1, None)
        copies = await db.fetch(
            "select user_id, count(*) as n from notifications where broadcast_id = $1"
            " group by user_id",
            first.copies.broadcast_id,
        )
        assert sorted(r["user_id"] for r in copies) == users
        assert {r["n"] for r in copies} == {1}
        assert not await db.fetchval(
            "select filling from broadcasts where id = $1", first.copies.broadcast_id
        )
    for client in clients:
        await client.close()
