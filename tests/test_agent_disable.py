"""A disabled agent is cut off at once on every node: its sockets close with 4001, its
chats go back to the queue, and it can neither sign in nor open a socket until enabled."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.client import HubClient
from tests.conftest import SECRET, run_cli, start_hub
from tests.test_chat_flow import add_agent, online_agent, uid

pytestmark = pytest.mark.usefixtures("clean")


async def _login(server, username: str, address: str | None = None) -> int:
    async with server.http() as http:
        r = await http.post(
            "/api/agents/login", json={"username": username, "password": "pw-" + username}
        )
    return r.status_code


async def _wait_for(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_disabled_agent_is_cut_off_on_every_node(services, db):
    a = await start_hub(services)
    b = await start_hub(services)
    try:
        await add_agent(db, "sam", ["account"], supervisor=True)
        on_a = await online_agent(a, db, "dora", ["account"])
        on_b = await b.client("dora", "agent")
        user = await a.client(uid())
        cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
            "conversation_id"
        ]
        await on_a.expect("chat.assigned", conversation_id=cid)
        assert await _login(b, "dora") == 200

        async with a.http(a.token("sam", "supervisor")) as http:
            r = await http.post("/api/agents/dora/disable")
        assert r.status_code == 200, r.text
        assert r.json() == {"agent_id": "dora", "disabled": True, "requeued": [cid]}

        # both sockets, on both nodes, are closed at once
        for conn in (on_a, on_b):
            assert await conn.wait_closed(timeout=5) == 4001
        # the chat is back in the queue, and no longer counts as the agent's
        row = await db.fetchrow("select status, agent_id from conversations where id = $1", cid)
        assert (row["status"], row["agent_id"]) == ("queued", None)
        assert await db.fetchval("select status from agents where id = 'dora'") == "offline"
        # told it is being requeued (a router's "nobody online" note may come first: dora
        # was the only agent, and any node's routing pass may run before the note is sent)
        note = await user.expect(lambda f: f.get("type") == "message"
                                 and f["sender"]["role"] == "system" and "转接" in f["text"])  # fmt: skip
        assert note["conversation_id"] == cid

        # no sign-in, no socket, on either node, with an old or a fresh token
        for server in (a, b):
            assert await _login(server, "dora") == 403
            again = await HubClient.connect(server.ws_url, hello=False)
            await again.send({"type": "hello", "token": server.token("dora", "agent")})
            assert await again.wait_closed(timeout=5) == 4001
            err = await again.expect("error")
            assert err["code"] == "unauthorized" and "disabled" in err["message"]
        # nor REST with a token issued before
        async with b.http(b.token("dora", "agent")) as http:
            assert (await http.get("/api/conversations")).status_code in (401, 403)

        # the audit log says who did it
        async with a.http(a.token("sam", "supervisor")) as http:
            entries = (await http.get("/api/audit", params={"action": "agent.disable"})).json()
        assert entries[0]["actor"] == {"role": "supervisor", "id": "sam"}
        assert entries[0]["details"]["agent_id"] == "dora"
        assert entries[0]["details"]["requeued"] == [cid]

        # enabled again: it may sign in and connect
        async with b.http(b.token("sam", "supervisor")) as http:
            r = await http.post("/api/agents/dora/enable")
        assert r.status_code == 200 and r.json()["disabled"] is False
        assert await _login(a, "dora") == 200
        back = await b.client("dora", "agent")
        assert back.welcome["role"] == "agent"
        await back.close()
        await user.close()
    finally:
        await a.stop()
        await b.stop()


async def test_only_supervisors_disable_and_only_existing_agents(hub, db):
    await add_agent(db, "sam", ["account"], supervisor=True)
    await add_agent(db, "dora", ["account"])
    for token in (hub.token("dora", "agent"), hub.token(uid()), hub.token("svc", "service")):
        async with hub.http(token) as http:
            assert (await http.post("/api/agents/dora/disable")).status_code == 403
    async with hub.http(hub.token("sam", "supervisor")) as http:
        r = await http.post("/api/agents/nobody/disable")
        assert r.status_code == 404
        r = await http.post("/api/agents/sam/disable")
        assert r.status_code == 409  # not yourself: someone must be left to undo it
    assert await db.fetchval("select disabled from agents where id = 'dora'") is False


async def test_the_cli_disables_and_enables_an_agent(hub, services, db):
    dora = await online_agent(hub, db, "dora", ["account"])
    env = {"HUB_DATABASE_URL": services.dsn, "HUB_REDIS_URL": services.redis_url,
           "HUB_SECRET": SECRET}  # fmt: skip
    out = await asyncio.to_thread(run_cli, "agent", "disable", "--username", "dora", env=env)
    assert out.returncode == 0, out.stderr
    assert "disabled" in out.stdout
    assert await dora.wait_closed(timeout=5) == 4001
    assert await _login(hub, "dora") == 403
    out = await asyncio.to_thread(run_cli, "agent", "enable", "--username", "dora", env=env)
    assert out.returncode == 0, out.stderr
    assert await _login(hub, "dora") == 200
    missing = await asyncio.to_thread(run_cli, "agent", "disable", "--username", "nobody", env=env)
    assert missing.returncode != 0 and "no such agent" in missing.stderr
    rows = await db.fetch(
        "select action, actor_role, details from audit_log where action in"
        " ('agent.disable', 'agent.enable') and details->>'agent_id' = 'dora' order by id"
    )
    assert [(r["action"], r["actor_role"]) for r in rows][-2:] == [
        ("agent.disable", "system"),
        ("agent.enable", "system"),
    ]
