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
