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
