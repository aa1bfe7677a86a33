"""Staff search conversations by Chinese or English text, by customer id or name, and by
transaction id; an agent finds only what it may read, with the hit highlighted."""

from __future__ import annotations

import uuid

import pytest

from hub.rules.access import may_read
from hub.store.notifications import NotificationWrite
from tests.test_chat_flow import add_agent, online_agent

pytestmark = pytest.mark.usefixtures("clean")


async def _chat(hub, agent, user_id: str, name: str, text: str) -> str:
    user = await hub.client(user_id, name=name)
    opened = await user.request(
        {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": text}
    )
    cid = opened["conversation_id"]
    await agent.expect("chat.assigned", conversation_id=cid)
    await user.close()
    return cid


async def _search(hub, token: str, q: str) -> list[dict]:
    async with hub.http(token) as http:
        r = await http.get("/api/search", params={"q": q})
        assert r.status_code == 200, r.text
        return r.json()["results"]


async def test_search_finds_chinese_text_customers_and_transactions(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"], capacity=5)
    await add_agent(db, "bob", ["payment"])
    wang, carol = f"u-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    c1 = await _chat(hub, alice, wang, "王小明", "我昨天给妈妈转的500块还没到账，验证码也收不到")
    c2 = await _chat(hub, alice, carol, "Carol Li", "My transfer to Bob is stuck since Monday")
    tx = f"tx_{uuid.uuid4().hex[:12]}"
    await hub.hub.store.writer.submit(NotificationWrite(
        carol, "transaction.status", "t", "b", {"transaction_id": tx, "status": "failed"}
    ))  # fmt: skip
    token = hub.token("alice", "agent")

    hits = await _search(hub, token, "还没到账")
    assert [h["conversation_id"] for h in hits] == [c1]
    start, end = hits[0]["highlight"]
    assert hits[0]["snippet"][start:end] == "还没到账" and hits[0]["matched"] == "message"
    assert [h["conversation_id"] for h in await _search(hub, token, "TRANSFER TO bob")] == [c2]
    assert [h["conversation_id"] for h in await _search(hub, token, "王小明")] == [c1]
    assert [h["conversation_id"] for h in await _search(hub, token, carol)] == [c2]
    found = await _search(hub, token, tx)
    assert [(h["conversation_id"], h["matched"]) for h in found] == [(c2, "transaction")]
    assert await _search(hub, token, "100%_") == []  # wildcards are literal

    # bob never held these chats and serves neither customer: nothing
    assert await _search(hub, hub.token("bob", "agent"), "还没到账") == []
    # a supervisor finds everything
    assert len(await _search(hub, hub.token("sam", "supervisor"), "还没到账")) == 1
    async with hub.http(hub.token(wang)) as http:  # users do not search
        assert (await http.get("/api/search", params={"q": "x"})).status_code == 403
        assert (await http.get("/api/search")).status_code == 403
    await alice.close()


def test_what_search_shows_an_agent_is_what_the_agent_may_read():
    conv = {"user_id": "u1", "agent_id": "alice", "status": "resolved"}
    assert may_read("agent", "alice", conv) is None
    assert may_read("agent", "bob", conv) is not None
    assert may_read("agent", "bob", conv, serving_customer=True) is None
