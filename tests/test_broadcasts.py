"""System notices sent together: every user gets each one once, in seq order, whether
connected, offline or first seen afterwards."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from hub.store import notifications as notif_store
from supporthub_core.db import init_connection
from tests.conftest import start_hub
from tests.events import publish_signed, tx_event

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


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def _notice_copies(db: asyncpg.Connection, users: list[str]) -> list[tuple]:
    rows = await db.fetch(
        "select user_id, seq, title from notifications where user_id = any($1::text[])"
        " order by user_id, seq",
        users,
    )
    return [tuple(r) for r in rows]


async def test_a_notices_first_users_get_it_while_a_later_users_row_is_held(isolated):
    """A notice is stored in chunks of users in id order, each its own transaction: a
    transaction that holds the last user's row holds up that user's chunk only, and the
    first chunk's users get their copy meanwhile, and the request is answered at once
    (202: the chunks go on in the background). Once the row is free every user has
    one copy of each notice, their seqs consecutive. (Stored in one transaction, the
    notice reached nobody while the row was held.)"""
    server = await start_hub(isolated, broadcast_chunk=2)
    holder = await _connect(isolated.dsn)
    users = [f"bc-{i}" for i in range(7)]  # 4 chunks of 2 (ids of one length: id order)
    clients = {u: await server.client(u) for u in users}
    try:
        async with server.http(server.token("sup", "supervisor")) as http:
            first = await http.post("/api/broadcasts", json={"title": "first", "body": "b"})
            assert first.status_code == 202
            for u in users:
                assert (await clients[u].expect("notification"))["seq"] == 1
            held = holder.transaction()
            await held.start()
            await holder.execute("select 1 from users where id = $1 for update", users[-1])
            try:
                post = asyncio.ensure_future(
                    http.post("/api/broadcasts", json={"title": "second", "body": "b"})
                )
                # accepted once the notice's row is stored: its chunks go on meanwhile
                assert (await asyncio.wait_for(post, 10)).status_code == 202
                for u in users[:2]:
                    n = await clients[u].expect("notification", timeout=10)
                    assert (n["seq"], n["title"]) == (2, "second")
                await clients[users[-1]].quiet("notification", 0.2)  # its chunk waits
            finally:
                await held.rollback()
        for u in users[2:]:
            n = await clients[u].expect("notification")
            assert (n["seq"], n["title"]) == (2, "second")
        for c in clients.values():
            await c.quiet("notification", 0.2)
        assert await _notice_copies(holder, users) == [
            (u, seq, title) for u in users for seq, title in ((1, "first"), (2, "second"))
        ]
    finally:
        for c in clients.values():
            await c.close()
        await holder.close()
        await server.stop()


async def test_the_sweeper_finishes_a_notice_its_sender_left_incomplete(isolated):
    """A sender that died after the notice's first chunk: the sweeper stores the rest
    (its node pushes the copies of its users), once, in order."""
    server = await start_hub(
        isolated, broadcast_chunk=2, broadcast_stall_s=0.0, routing_sweep_s=3600.0
    )
    db = await _connect(isolated.dsn)
    users = [f"sw-{i}" for i in range(5)]
    clients = {u: await server.client(u) for u in users}
    try:
        bid = await notif_store.create_broadcast(db, "T", "B", {})
        stored = await notif_store.store_chunk(db, 2, [])  # then the sender died
        assert stored is not None and not stored.complete and stored.up_to == users[1]
        await server.hub.sweeper.sweep_once()
        for u in users[2:]:
            n = await clients[u].expect("notification")
            assert (n["seq"], n["title"], n["notification_id"]) == (1, "T", f"n{bid}.{u}")
        assert await _notice_copies(db, users) == [(u, 1, "T") for u in users]
        assert await db.fetchval("select completed_at is not null from broadcasts") is True
        for u in users[:2]:  # their copies were stored but never pushed: a resume reads them
            await clients[u].quiet("notification", 0.2)
    finally:
        for c in clients.values():
            await c.close()
        await db.close()
        await server.stop()


async def test_a_chunked_notice_reaches_the_users_of_both_nodes_once(isolated):
    """Each chunk's frame makes the other node read and push its users' copies of that
    chunk: every user on either node gets each notice once, in seq order."""
    a = await start_hub(isolated, broadcast_chunk=2)
    b = await start_hub(isolated, broadcast_chunk=2)
    users = [f"tn-{i}" for i in range(7)]
    clients = {u: await (a if i % 2 else b).client(u) for i, u in enumerate(users)}
    try:
        async with a.http(a.token("sup", "supervisor")) as http:
            for title in ("one", "two"):
                r = await http.post("/api/broadcasts", json={"title": title, "body": "b"})
                assert r.status_code == 202
        for c in clients.values():
            got = [await c.expect("notification") for _ in range(2)]
            assert [(n["seq"], n["title"]) for n in got] == [(1, "one"), (2, "two")]
            await c.quiet("notification", 0.2)
    finally:
        for c in clients.values():
            await c.close()
        await a.stop()
        await b.stop()


def test_the_chunks_heard_during_a_read_are_read_together():
    from hub.services.broadcasts import ChunkNews, chunk_news, one_read

    assert chunk_news({"type": "broadcast", "broadcast_id": 7}) == ChunkNews(7)  # older node
    heard = [
        chunk_news({"broadcast_id": 7, "after": "u2", "up_to": "u4", "done": False}),
        chunk_news({"broadcast_id": 7, "after": "u4", "up_to": "u6", "done": True, "origin": "a"}),
        chunk_news({"broadcast_id": 9, "after": "", "up_to": "u1", "done": False}),
        chunk_news({"broadcast_id": 9, "after": "", "up_to": "u1", "done": False}),
    ]
    assert heard[1] == ChunkNews(7, "u4", "u6", True, "a")
    assert one_read(heard, 32) == (0, 9, [("u2", "u6"), ("", "u1")])
    assert one_read(heard[2:], 4) == (5, 9, [("", "u1")])


def _numbered_again() -> float:
    from hub.metrics import NOTIFICATIONS_NUMBERED_AGAIN

    return NOTIFICATIONS_NUMBERED_AGAIN.labels("seq_taken")._value.get()


@pytest.mark.parametrize("notices", [1, 3])
async def test_after_a_notice_the_next_notifications_are_numbered_once(hub, services, notices):
    """A notice gives every user a copy with their next seq, behind the back of the node's
    heads (hub.rules.notif_heads): every node forgets its heads when it hears of a chunk,
    so the users' next notifications are numbered from the store's heads at once, not
    written, refused on a taken seq and written again (one failed statement per batch of
    users until each had one)."""
    users = [f"u-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    clients = [await hub.client(u) for u in users]
    await publish_signed(services.redis_url, [tx_event(u) for u in users])
    for c in clients:
        assert (await c.expect("notification"))["seq"] == 1
    async with hub.http(hub.token("sup", "supervisor")) as http:
        for i in range(notices):
            r = await http.post("/api/broadcasts", json={"title": f"n{i}", "body": "b"})
            assert r.status_code == 202
    for c in clients:
        for i in range(notices):
            assert (await c.expect("notification", timeout=15))["seq"] == 2 + i
    before = _numbered_again()
    await publish_signed(services.redis_url, [tx_event(u) for u in users])
    for c in clients:
        frame = await c.expect("notification")
        assert (frame["kind"], frame["seq"]) == ("transaction.status", 2 + notices)
        await c.close()
    assert _numbered_again() == before
