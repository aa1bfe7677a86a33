"""The supervisor's figures against a scripted day (tests/scripted_day.py) on real
servers, the CSV export, and the alarms of the floor."""

from __future__ import annotations

import csv
import io

import asyncpg
import pytest

from supporthub_core.db import init_connection
from tests import scripted_day
from tests.conftest import start_hub

# nothing moves the scripted chats while the figures are read: the chats are written
# straight into the store, held by agents whose consoles connect only afterwards, and
# with the tests' short `agent_grace_s` the sweeper would take them for agents who left
# without saying and requeue their chats (bob's would go to alice) under a loaded machine
QUIET = {
    "assignment_timeout_s": 0,
    "chat_idle_close_s": 7 * 86400.0,
    "agent_grace_s": 3600.0,
}


@pytest.fixture
async def day(isolated):
    server = await start_hub(isolated, **QUIET)
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    await scripted_day.add_agents(db)
    ids = await scripted_day.script(db)
    online = []
    for name in ("alice", "bob"):
        client = await server.client(name, "agent", name=name.title())
        state = await client.request({"type": "agent.status", "status": "online"})
        assert state["status"] == "online"
        online.append(client)
    try:
        yield server, db, ids
    finally:
        for client in online:
            await client.close()
        await db.close()
        await server.stop()


async def test_the_figures_of_a_scripted_day(day):
    server, _db, ids = day
    async with server.http(server.token("sam", "supervisor")) as http:
        stats = (await http.get("/api/stats")).json()
    for key, value in scripted_day.EXPECTED.items():
        if key == "sla":  # the SLA met share; the service levels' own figures come beside it
            assert {k: stats[key][k] for k in value} == value, key
        else:
            assert stats[key] == value, key
    agents = {a["id"]: a for a in stats["per_agent"]}
    for agent_id, figures in scripted_day.PER_AGENT.items():
        for key, value in figures.items():
            assert agents[agent_id][key] == value, (agent_id, key)
    assert agents["sam"]["handled"] == 0 and agents["sam"]["first_response_s"] is None
    topics = {t["topic"]: t for t in stats["topics"]}
    for topic, figures in scripted_day.TOPICS.items():
        assert topics[topic]["conversations"] == figures["conversations"]
        assert topics[topic]["csat"] == figures["csat"]
        assert topics[topic]["waiting_time_s"]["avg"] == figures["wait"]
    # the live floor: the 12-minute wait is red, the 3-minute one amber, a1 (unanswered
    # for 30 s) fine; nothing urgent, agents online, so the only alarm is the long wait
    waiting = {w["conversation_id"]: w for w in stats["waiting"]}
    assert waiting[ids["q1"]]["wait_level"] == "alarm" and waiting[ids["q1"]]["breach_soon"]
    assert waiting[ids["q2"]]["wait_level"] == "warn" and not waiting[ids["q2"]]["breach_soon"]
    assert waiting[ids["a1"]]["reply_level"] == "ok" and waiting[ids["a1"]]["status"] == "assigned"
    assert ids["a2"] not in waiting  # answered
    assert stats["alarms"] == [
        {"kind": "sla_breach_soon", "conversations": [ids["q1"]], "waiting": 0}
    ]
    assert stats["queue"]["total"] == 2 and stats["queue"]["oldest_wait_s"] >= 720
    # the day by hour: the eight chats that were queued, each in its hour
    assert sum(h["queued"] for h in stats["by_hour"]) == 8 and len(stats["by_hour"]) == 24
    assert max(h["wait_max_s"] or 0 for h in stats["by_hour"]) >= 720


async def test_the_day_exported_as_csv(day):
    server, _db, ids = day
    async with server.http(server.token("sam", "supervisor")) as http:
        r = await http.get("/api/stats/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = {row["conversation_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert len(rows) == 12
    c2 = rows[ids["c2"]]
    assert (c2["agent_id"], c2["wait_s"], c2["first_response_s"], c2["handle_s"]) == (
        "alice", "300.0", "30.0", "780.0",
    )  # fmt: skip
    assert (c2["resolution_s"], c2["sla_met"], c2["rating"], c2["bot_outcome"]) == (
        "1200.0", "false", "3", "handed_off",
    )  # fmt: skip
    assert rows[ids["b1"]]["bot_outcome"] == "confirmed"
    assert rows[ids["b2"]]["bot_outcome"] == "assumed"
    assert rows[ids["c1"]]["bot_outcome"] == ""
    async with server.http(server.token("alice", "agent")) as http:
        assert (await http.get("/api/stats/export.csv")).status_code == 403
    async with server.http(server.token("sam", "supervisor")) as http:
        audit = (await http.get("/api/audit", params={"action": "stats.export"})).json()
    assert [(a["actor"]["id"], a["details"]["rows"]) for a in audit] == [("sam", 12)]


async def test_no_agent_online_with_chats_waiting_raises_the_alarm(isolated):
    server = await start_hub(isolated, **QUIET)
    db = await asyncpg.connect(isolated.dsn)
    try:
        await init_connection(db)
        await scripted_day.add_agents(db)
        users = [await server.client(None, "user") for _ in range(3)]
        cids = []
        for user, topic in zip(users, ("account", "payment", "technical"), strict=True):
            opened = await user.request({"type": "chat.open", "topic": topic, "handoff": "agent"})
            assert opened["status"] == "queued"
            cids.append(opened["conversation_id"])
        await db.execute("update conversations set priority = 'urgent' where id = $1", cids[0])
        async with server.http(server.token("sam", "supervisor")) as http:
            stats = (await http.get("/api/stats")).json()
        kinds = [a["kind"] for a in stats["alarms"]]
        assert kinds[:2] == ["no_agents", "urgent_unanswered"]
        no_agents = stats["alarms"][0]
        assert no_agents["waiting"] == 3 and sorted(no_agents["conversations"]) == sorted(cids)
        assert stats["alarms"][1]["conversations"] == [cids[0]]
        assert stats["agents"]["online"] == 0
        for user in users:
            await user.close()
    finally:
        await db.close()
        await server.stop()


async def test_the_bots_outcomes_counted_from_real_chats(isolated):
    server = await start_hub(isolated, **QUIET)
    try:

        async def asked(question: str):
            user = await server.client(None, "user")
            opened = await user.request({"type": "chat.open", "topic": "account",
                                         "handoff": "bot", "text": question, "lang": "zh"})  # fmt: skip
            cid = opened["conversation_id"]
            await user.expect(lambda f: f["type"] == "message" and f["sender"]["role"] == "bot"
                              and any(c["text"] == "有用" for c in f.get("choices") or []))  # fmt: skip
            return user, cid

        helped, helped_cid = await asked("收不到验证码怎么办")
        await helped.request({"type": "chat.send", "conversation_id": helped_cid,
                              "client_msg_id": "y", "text": "有用"})  # fmt: skip
        await helped.expect(lambda f: f["type"] == "message" and f["sender"]["role"] == "bot"
                            and f["seq"] > 4)  # fmt: skip
        left, left_cid = await asked("怎么重置登录密码")
        await left.request({"type": "chat.close", "conversation_id": left_cid})
        handed, handed_cid = await asked("转账失败了怎么办")
        await handed.request({"type": "chat.escalate", "conversation_id": handed_cid})
        await handed.expect("chat.queued", conversation_id=handed_cid)
        async with server.http(server.token("sam", "supervisor")) as http:
            bot = (await http.get("/api/stats")).json()["bot"]
        assert bot == {"involved": 3, "confirmed": 1, "assumed": 1, "handed_off": 1,
                       "unanswered": 0, "open": 0, "window_s": 1800.0}  # fmt: skip
        for user in (helped, left, handed):
            await user.close()
    finally:
        await server.stop()


async def test_a_chat_at_risk_by_its_service_levels_raises_the_alarm(isolated):
    # high priority: first answer within 120 s (HUB_SLA_FIRST_RESPONSE_S), at risk from 96 s;
    # queued 100 s ago it is not even amber (HUB_SUPERVISOR_WAIT_WARN_S 120) but about to breach
    server = await start_hub(isolated, **QUIET)
    db = await asyncpg.connect(isolated.dsn)
    try:
        await init_connection(db)
        await scripted_day.add_agents(db)
        user = await server.client(None, "user")
        opened = await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"})
        cid = opened["conversation_id"]
        calm = await server.client(None, "user")
        other = (await calm.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
            "conversation_id"
        ]
        await db.execute(
            "update conversations set priority = 'high',"
            " enqueued_at = now() - interval '100 seconds' where id = $1",
            cid,
        )
        async with server.http(server.token("sam", "supervisor")) as http:
            stats = (await http.get("/api/stats")).json()
        waiting = {w["conversation_id"]: w for w in stats["waiting"]}
        assert waiting[cid]["wait_level"] == "ok" and waiting[cid]["breach_soon"]
        assert (waiting[cid]["sla_state"], waiting[cid]["sla_kind"]) == (
            "at_risk",
            "first_response",
        )
        assert not waiting[other]["breach_soon"] and waiting[other]["sla_state"] == "ok"
        soon = [a for a in stats["alarms"] if a["kind"] == "sla_breach_soon"]
        assert soon == [{"kind": "sla_breach_soon", "conversations": [cid], "waiting": 0}]
        for client in (user, calm):
            await client.close()
    finally:
        await db.close()
        await server.stop()
