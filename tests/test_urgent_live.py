"""A frozen customer reaches a person within the deadline whatever the load: the urgent
ladder, the on-call page, what the customer is told, the sweeper, `chat.take` and
`chat.assign`, on real servers. Each test has a database and a Redis of its own (no other
hub of the session may route its chats with other settings) and short deadlines."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import asyncpg
import orjson
import pytest

from hub.runtime import ConfigError, check_oncall_email
from hub.services.pager import oncall_addresses
from hub.store import agents
from supporthub_core.db import init_connection
from supporthub_core.settings import Settings
from tests.conftest import free_port, start_hub
from tests.events import publish_signed
from tests.mailcatcher import MailCatcher
from tests.oncall import OnCallReceiver

FAST = dict(urgent_answer_s=1.0, urgent_escalate_s=1.0, routing_sweep_s=0.3)
PAGER_KEY = "pager-key-" + uuid.uuid4().hex


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def freeze(user_id: str) -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "security.alert", "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00", "alert": "account_frozen",
        "severity": "critical", "details": {"rule": "velocity", "count": 11, "window_s": 60},
    }  # fmt: skip


@asynccontextmanager
async def hub_with(iso, **overrides):
    server = await start_hub(iso, **{**FAST, **overrides})
    db = await asyncpg.connect(iso.dsn)
    await init_connection(db)
    try:
        yield server, db
    finally:
        await db.close()
        await server.stop()


async def staff(server, db, username: str, *, status: str | None = "online", role: str = "agent",
                skills=("security",), capacity: int = 2, supervisor: bool = False,
                backup: bool = False):  # fmt: skip
    flags = {"security_backup": True} if backup else {}
    await agents.upsert(db, username=username, password="pw", name=username.title(),
                        skills=list(skills), capacity=capacity, supervisor=supervisor,
                        **flags)  # fmt: skip
    client = await server.client(username, role, name=username.title())
    if status is not None:
        state = await client.request({"type": "agent.status", "status": status})
        assert state["type"] == "agent.state" and state["status"] == status, state
    return client


async def customer(server, lang: str = "en"):
    user_id = uid()
    client = await server.client(user_id)
    await client.request({"type": "user.lang", "lang": lang})
    return user_id, client


async def frozen(server, iso, user_id: str, client) -> str:
    """Freeze the user's account (a signed `account_frozen` alert); the urgent chat's id."""
    await publish_signed(iso.redis_url, [freeze(user_id)])
    opened = await client.expect("chat.opened", timeout=15)
    assert opened["priority"] == "urgent" and opened["topic"] == "security"
    return opened["conversation_id"]


def system_texts(client, cid: str) -> list[str]:
    return [
        f["text"]
        for f in client.frames
        if f.get("type") == "message"
        and f["conversation_id"] == cid
        and f["sender"]["role"] == "system"
    ]


async def told(client, cid: str, words: str, timeout: float = 10) -> dict:
    return await client.expect(
        lambda f: f.get("type") == "message" and f["conversation_id"] == cid
        and f["sender"]["role"] == "system" and words in f["text"],
        timeout=timeout,
    )  # fmt: skip


async def close_all(*clients) -> None:
    for c in clients:
        await c.close()


# --- (a) the only security agent is away ----------------------------------------------


async def test_security_agent_away_an_online_supervisor_gets_it_within_the_deadline(isolated):
    async with hub_with(isolated) as (server, db):
        sec = await staff(server, db, "sec", status="away")
        boss = await staff(server, db, "boss", role="supervisor", skills=(), supervisor=True)
        user_id, phone = await customer(server)
        started = asyncio.get_running_loop().time()
        cid = await frozen(server, isolated, user_id, phone)
        got = await boss.expect("chat.assigned", conversation_id=cid, timeout=10)
        assert got["priority"] == "urgent" and got["alert"]["alert"] == "account_frozen"
        assert asyncio.get_running_loop().time() - started < 1.0 + 1.0  # deadline + a step
        assert (await phone.expect("chat.assigned", conversation_id=cid))["agent"]["id"] == "boss"
        note = await told(phone, cid, "no money can leave it")
        assert "A security specialist will contact you within a minute" in note["text"]
        await sec.quiet("chat.assigned", 0.3)
        # the supervisor answers: the chat stays with them past every deadline
        await boss.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "b1",
                            "text": "I am on it."})  # fmt: skip
        await asyncio.sleep(2.5)
        row = await db.fetchrow("select status, agent_id from conversations where id = $1", cid)
        assert (row["status"], row["agent_id"]) == ("assigned", "boss")
        await close_all(sec, boss, phone)


async def test_security_agent_away_a_security_backup_gets_it(isolated):
    async with hub_with(isolated) as (server, db):
        sec = await staff(server, db, "sec", status="away")
        plain = await staff(server, db, "plain", skills=("payment",))
        backup = await staff(server, db, "bk", skills=("account",), backup=True)
        user_id, phone = await customer(server, lang="zh")
        cid = await frozen(server, isolated, user_id, phone)
        got = await backup.expect("chat.assigned", conversation_id=cid, timeout=10)
        assert got["priority"] == "urgent"
        await told(phone, cid, "安全专员将在一分钟内与您联系")
        await plain.quiet("chat.assigned", 0.3)
        async with server.http(server.token("bk", "agent")) as http:
            listed = {a["id"]: a for a in (await http.get("/api/agents")).json()["agents"]}
        assert (
            listed["bk"]["security_backup"] is True and listed["plain"]["security_backup"] is False
        )
        await close_all(sec, plain, backup, phone)


async def test_nobody_online_pages_on_call_and_tells_the_customer_the_truth(isolated):
    pager = await OnCallReceiver(PAGER_KEY).start()
    try:
        async with hub_with(isolated, oncall_webhook_url=pager.url,
                            oncall_webhook_key=PAGER_KEY) as (server, db):  # fmt: skip
            sec = await staff(server, db, "sec", status="away")
            user_id, phone = await customer(server)
            cid = await frozen(server, isolated, user_id, phone)
            [page] = await pager.wait_for(cid, 1, timeout=5)
            assert page["reason"] == "nobody_online" and page["user_id"] == user_id
            assert page["severity"] == "critical" and page["agent_id"] is None
            assert page["missed_by"] is None and page["waiting_s"] >= 0
            queued = await phone.expect("chat.queued", conversation_id=cid, timeout=5)
            assert queued["staffed"] is False and queued["priority"] == "urgent"
            assert "No security specialist is online right now" in queued["notice"]
            assert "alerted the on-call team" in queued["notice"]
            assert queued["position"] == 1 and isinstance(queued["eta_s"], int)
            note = await told(phone, cid, "No security specialist is online right now")
            assert "alerted the on-call team" in note["text"] and "protected" in note["text"]
            for text in system_texts(phone, cid):
                assert "next" not in text and "minute" not in text, text
            # a device that connects now is told the same in `welcome`
            again = await server.client(user_id)
            [item] = [c for c in again.welcome["conversations"] if c["conversation_id"] == cid]
            assert item["staffed"] is False and item["notice"] == queued["notice"]
            await again.close()
            # still nobody: paged again every escalation step
            await pager.wait_for(cid, 3, timeout=10)
            # the pages are in the audit log
            async with server.http(server.token("ops", "supervisor")) as http:
                audit = (await http.get("/api/audit", params={"subject_user_id": user_id})).json()
            pages = [e for e in audit if e["action"] == "urgent.page"]
            assert pages and pages[0]["details"]["delivered"] is True
            assert pages[0]["actor"] == {"role": "system", "id": "supporthub"}
            # the security agent comes back: gets it at once, the customer is told
            await sec.request({"type": "agent.status", "status": "online"})
            await sec.expect("chat.assigned", conversation_id=cid, timeout=5)
            await told(phone, cid, "will contact you within a minute")
            await close_all(sec, phone)
    finally:
        await pager.stop()


async def test_on_call_is_paged_by_mail_too_with_ids_only(isolated):
    """HUB_ONCALL_EMAIL beside the webhook: every page goes both ways, through the e-mail
    channel's SMTP relay (a real SMTP server on loopback), and the mail says what the
    webhook says: ids, the reason and the wait, never the chat, the alert or a name."""
    pager = await OnCallReceiver(PAGER_KEY).start()
    relay = await MailCatcher(free_port()).start()
    oncall = ["oncall@ops.example", "lead@ops.example"]
    try:
        async with hub_with(isolated, oncall_webhook_url=pager.url, oncall_webhook_key=PAGER_KEY,
                            oncall_email=", ".join(oncall), smtp_relay_host="127.0.0.1",
                            smtp_relay_port=relay.port) as (server, db):  # fmt: skip
            sec = await staff(server, db, "sec", status="away")
            user_id = uid()
            phone = await server.client(user_id, name="Zhang Sanfeng")
            await phone.request({"type": "user.lang", "lang": "en"})
            cid = await frozen(server, isolated, user_id, phone)
            queued = await phone.expect("chat.queued", conversation_id=cid, timeout=5)
            assert "alerted the on-call team" in queued["notice"]
            secret = "my card 4111 1111 1111 1111, the code was 739146"
            ack = await phone.request({"type": "chat.send", "conversation_id": cid,
                                       "client_msg_id": "c1", "text": secret})  # fmt: skip
            assert ack["type"] == "ack", ack
            # pages go on every step: three mails, the later ones sent after the message
            mails = [await relay.next() for _ in range(3)]

            async def twin(page: dict) -> dict:
                """The webhook's page of the same step (it may arrive after the mail)."""
                count = 1
                while True:
                    hooks = await pager.wait_for(cid, count)
                    same = [h for h in hooks if {**h, "sent_at": 0} == {**page, "sent_at": 0}]
                    if same:
                        return same[0]
                    count = len(hooks) + 1

            for mail in mails:
                assert mail["X-Envelope-To"] == ",".join(oncall)
                assert mail["Subject"].startswith(f"[URGENT] security chat {cid} waiting")
                assert mail["Auto-Submitted"] == "auto-generated" and mail["Importance"] == "high"
                [attached] = list(mail.iter_attachments())
                page = orjson.loads(attached.get_content())
                assert page["reason"] == "nobody_online" and page["user_id"] == user_id
                assert page["conversation_id"] == cid and page["agent_id"] is None
                # the webhook's fields, no more: the same page both ways
                assert page.keys() == (await twin(page)).keys()
                text = mail.get_body(("plain",)).get_content()
                assert cid in text and user_id in text and "nobody" in text
                raw = mail.as_string()
                for leak in (
                    "4111 1111",
                    "41111111",
                    "739146",
                    "Zhang",
                    "Sanfeng",
                    "velocity",
                    "frozen",
                ):
                    assert leak not in raw, leak
            # each page is audited as delivered (the entry is written once both channels
            # answered: the third mail can be caught before its page is audited)
            pages: list = []
            async with server.http(server.token("ops", "supervisor")) as http:
                for _ in range(100):
                    audit = (
                        await http.get("/api/audit", params={"subject_user_id": user_id})
                    ).json()
                    pages = [e for e in audit if e["action"] == "urgent.page"]
                    if len(pages) >= 3:
                        break
                    await asyncio.sleep(0.1)
            assert len(pages) >= 3 and all(e["details"]["delivered"] for e in pages)
            await close_all(sec, phone)
    finally:
        await relay.stop()
        await pager.stop()


async def test_mail_only_on_call_tells_the_customer_and_a_bad_relay_is_not_a_page(isolated):
    """HUB_ONCALL_EMAIL alone is a pager; a relay that refuses the connection makes the
    page undelivered (audited so), and the next step tries again."""
    relay_port = free_port()  # nothing listens there yet
    async with hub_with(isolated, oncall_email="oncall@ops.example",
                        smtp_relay_host="127.0.0.1",
                        smtp_relay_port=relay_port) as (server, db):  # fmt: skip
        user_id, phone = await customer(server)
        cid = await frozen(server, isolated, user_id, phone)
        queued = await phone.expect("chat.queued", conversation_id=cid, timeout=5)
        assert "alerted the on-call team" in queued["notice"]

        async def audited() -> list[bool]:
            rows = await db.fetch(
                "select details from audit_log where action = 'urgent.page'"
                " and conversation_id = $1 order by id", cid,
            )  # fmt: skip
            return [r["details"]["delivered"] for r in rows]

        while not await audited():
            await asyncio.sleep(0.1)
        assert (await audited())[0] is False
        relay = await MailCatcher(relay_port).start()  # the relay is back
        try:
            mail = await relay.next()
            assert mail["X-Envelope-To"] == "oncall@ops.example" and cid in mail["Subject"]
        finally:
            await relay.stop()
        await phone.close()


def test_the_on_call_address_setting():
    assert oncall_addresses(" a@ops.example, b@ops.example ,") == ["a@ops.example", "b@ops.example"]
    assert oncall_addresses(None) == []
    for bad in ("ops", "Ops <a@ops.example>", "a@", "@ops.example", "a b@ops.example"):
        with pytest.raises(ValueError):
            oncall_addresses(bad)
    with pytest.raises(ConfigError, match="HUB_SMTP_RELAY_HOST"):
        check_oncall_email(Settings(oncall_email="a@ops.example"), dev=False)
    with pytest.raises(ConfigError, match="HUB_ONCALL_EMAIL"):
        check_oncall_email(Settings(oncall_email="not-an-address"), dev=False)
    check_oncall_email(Settings(oncall_email="a@ops.example"), dev=True)  # dev's catcher
    check_oncall_email(
        Settings(oncall_email="a@ops.example", smtp_relay_host="smtp.example.net"), dev=False
    )


async def test_without_a_pager_the_customer_is_not_told_anyone_was_alerted(isolated):
    async with hub_with(isolated) as (server, db):
        user_id, phone = await customer(server)
        cid = await frozen(server, isolated, user_id, phone)
        queued = await phone.expect("chat.queued", conversation_id=cid, timeout=5)
        assert queued["staffed"] is False and "alerted" not in queued["notice"]
        note = await told(phone, cid, "No security specialist is online right now")
        assert "alerted" not in note["text"]
        await phone.close()


# --- (b) the security agent is at capacity -------------------------------------------


async def test_security_agent_at_capacity_takes_it_in_the_urgent_slot(isolated):
    async with hub_with(isolated) as (server, db):
        sec = await staff(server, db, "sec", skills=("security", "payment"), capacity=1)
        busy_id, busy = await customer(server)
        first = (await busy.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
            "conversation_id"
        ]
        await sec.expect("chat.assigned", conversation_id=first)
        user_id, phone = await customer(server)
        cid = await frozen(server, isolated, user_id, phone)
        got = await sec.expect("chat.assigned", conversation_id=cid, timeout=10)
        assert got["priority"] == "urgent"
        state = await sec.expect(lambda f: f.get("type") == "agent.state" and f["active"] == 2)
        assert state["capacity"] == 1
        # the urgent slot is for urgent chats only: a normal chat waits
        _, later = await customer(server)
        waiting = (
            await later.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        )["conversation_id"]
        queued = await later.expect("chat.queued", conversation_id=waiting)
        # not urgent, and someone who can take it is online: a place and a wait, no notice
        assert queued["staffed"] is True and "notice" not in queued and "priority" not in queued
        await sec.quiet(
            lambda f: f.get("type") == "chat.assigned" and f["conversation_id"] == waiting, 0.6
        )
        await close_all(sec, busy, phone, later)


async def test_an_unanswered_urgent_chat_is_paged_and_moved_to_the_next_person(isolated):
    pager = await OnCallReceiver(PAGER_KEY).start()
    try:
        async with hub_with(isolated, oncall_webhook_url=pager.url,
                            oncall_webhook_key=PAGER_KEY) as (server, db):  # fmt: skip
            sec = await staff(server, db, "sec")
            user_id, phone = await customer(server)
            cid = await frozen(server, isolated, user_id, phone)
            await sec.expect("chat.assigned", conversation_id=cid, timeout=5)
            boss = await staff(server, db, "boss", role="supervisor", skills=(), supervisor=True)
            # sec says nothing: past the deadline the on-call team is paged and the chat
            # goes to the next person on the ladder
            moved = await sec.expect("chat.transferred", conversation_id=cid, timeout=10)
            assert moved["reason"] == "urgent_escalation" and moved["to_agent"] == "boss"
            await boss.expect("chat.assigned", conversation_id=cid, timeout=5)
            [page, *_] = await pager.wait_for(cid, 1)
            assert page["reason"] == "unanswered" and page["missed_by"] == "sec"
            assert page["agent_id"] == "boss"  # who has it now
            row = await db.fetchrow("select excluded_agents from conversations where id = $1", cid)
            assert row["excluded_agents"] == ["sec"]
            await close_all(sec, boss, phone)
    finally:
        await pager.stop()


# --- (d) the sweeper --------------------------------------------------------------------


async def test_the_sweeper_never_closes_a_waiting_urgent_chat(isolated):
    settings = dict(chat_idle_close_s=1.0, urgent_answer_s=60.0, urgent_extra_slots=0)
    async with hub_with(isolated, **settings) as (server, db):
        # one urgent chat held but not answered, one in the queue (no room left)
        first_id, first = await customer(server)
        held = await frozen(server, isolated, first_id, first)
        sec = await staff(server, db, "sec", capacity=1)
        await sec.expect("chat.assigned", conversation_id=held, timeout=5)
        second_id, second = await customer(server)
        queued = await frozen(server, isolated, second_id, second)
        await second.expect("chat.queued", conversation_id=queued, timeout=5)
        # a normal chat with nobody to take it is closed after the idle timeout...
        _, plain = await customer(server)
        normal = (
            await plain.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        )["conversation_id"]
        await plain.expect("chat.closed", conversation_id=normal, timeout=10)
        await asyncio.sleep(1.0)
        # ...the urgent ones wait for a person
        rows = await db.fetch(
            "select id, status from conversations where id = any($1)", [queued, held]
        )
        assert {r["id"]: r["status"] for r in rows} == {queued: "queued", held: "assigned"}
        # once answered, an urgent chat is an ordinary one again
        await sec.request({"type": "chat.send", "conversation_id": held, "client_msg_id": "s1",
                           "text": "Hello, this is security."})  # fmt: skip
        await first.expect("chat.closed", conversation_id=held, timeout=10)
        assert (
            await db.fetchval("select status from conversations where id = $1", queued) == "queued"
        )
        await close_all(sec, first, second, plain)


# --- (e) chat.take and chat.assign ------------------------------------------------------


async def test_take_an_urgent_chat_and_the_refusals(isolated):
    # no sweeper pass during the test: the agent made a back-up below takes the chat by
    # hand before a routing pass would give it to them
    settings = dict(urgent_answer_s=30.0, urgent_extra_slots=0, routing_sweep_s=60.0)
    async with hub_with(isolated, **settings) as (server, db):
        sec = await staff(server, db, "sec", skills=("security", "payment"), capacity=1)
        _, busy = await customer(server)
        first = (await busy.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
            "conversation_id"
        ]
        await sec.expect("chat.assigned", conversation_id=first)
        plain = await staff(server, db, "plain", skills=("payment",))
        user_id, phone = await customer(server)
        cid = await frozen(server, isolated, user_id, phone)
        # no urgent slot, nobody else on the ladder: it waits, on the staff's queue
        snap = await plain.expect(
            lambda f: (
                f.get("type") == "queue.snapshot"
                and any(q["conversation_id"] == cid for q in f["queue"])
            ),
            timeout=5,
        )
        assert next(q for q in snap["queue"] if q["conversation_id"] == cid)["priority"] == "urgent"
        err = await plain.request({"type": "chat.take", "conversation_id": cid})
        assert (err["type"], err["code"]) == ("error", "forbidden"), err
        err = await sec.request({"type": "chat.take", "conversation_id": cid})
        assert (err["type"], err["code"]) == ("error", "conflict"), err  # no room left
        # a security back-up who is away cannot; one who is online may
        bk = await staff(server, db, "bk", skills=(), status="away", backup=True)
        err = await bk.request({"type": "chat.take", "conversation_id": cid})
        assert (err["type"], err["code"]) == ("error", "conflict"), err
        await agents.upsert(db, username="plain", password="pw", name="Plain", skills=["payment"],
                            capacity=2, security_backup=True)  # fmt: skip
        ack = await plain.request({"type": "chat.take", "conversation_id": cid})
        assert ack["type"] == "ack" and ack["agent_id"] == "plain", ack
        got = await plain.expect("chat.assigned", conversation_id=cid)
        assert got["priority"] == "urgent"
        assert (await phone.expect("chat.assigned", conversation_id=cid))["agent"]["id"] == "plain"
        await told(phone, cid, "will contact you within")
        # taken already: nobody else takes it before its new deadline; a supervisor may
        boss = await staff(server, db, "boss", role="supervisor", skills=(), supervisor=True)
        await bk.request({"type": "agent.status", "status": "online"})
        err = await bk.request({"type": "chat.take", "conversation_id": cid})
        assert (err["type"], err["code"]) == ("error", "conflict"), err
        ack = await boss.request({"type": "chat.take", "conversation_id": cid})
        assert ack["type"] == "ack" and ack["agent_id"] == "boss", ack
        left = await plain.expect("chat.transferred", conversation_id=cid)
        assert left["to_agent"] == "boss" and left["reason"] == "taken"
        # answered: nobody takes it any more, not even a supervisor
        await boss.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "b1",
                            "text": "Security here."})  # fmt: skip
        err = await bk.request({"type": "chat.take", "conversation_id": cid})
        assert err["type"] == "error" and err["code"] == "conflict"
        # users cannot take chats at all
        err = await phone.request({"type": "chat.take", "conversation_id": cid})
        assert err["type"] == "error" and err["code"] == "forbidden"
        async with server.http(server.token("boss", "supervisor")) as http:
            audit = (await http.get("/api/audit", params={"subject_user_id": user_id})).json()
        takes = [
            (e["actor"]["id"], e["details"]["from_agent"])
            for e in audit
            if e["action"] == "chat.take"
        ]
        assert takes == [("boss", "plain"), ("plain", None)]
        await close_all(sec, busy, plain, phone, bk, boss)


async def test_a_supervisor_assigns_a_queued_chat_and_the_refusals(isolated):
    async with hub_with(isolated) as (server, db):
        full = await staff(server, db, "full", skills=("payment",), capacity=1)
        _, first_user = await customer(server)
        first = (
            await first_user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        )["conversation_id"]
        await full.expect("chat.assigned", conversation_id=first)
        _, waiting = await customer(server)
        cid = (
            await waiting.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        )["conversation_id"]
        await waiting.expect("chat.queued", conversation_id=cid)
        acc = await staff(server, db, "acc", skills=("account",))  # no payment skill
        gone = await staff(server, db, "gone", skills=("payment",), status="offline")
        boss = await staff(server, db, "boss", role="supervisor", skills=(), supervisor=True,
                           status="away")  # fmt: skip

        async def assign(who, agent_id, conversation_id=cid):
            return await who.request({"type": "chat.assign", "conversation_id": conversation_id,
                                      "agent_id": agent_id})  # fmt: skip

        assert (await assign(acc, "acc"))["code"] == "forbidden"  # supervisors only
        assert (await assign(boss, "gone"))["code"] == "conflict"  # not online
        assert (await assign(boss, "full"))["code"] == "conflict"  # no room
        assert (await assign(boss, "nobody"))["code"] == "not_found"
        assert (await assign(boss, "acc", "no-such-chat"))["code"] == "not_found"
        assert (await assign(boss, "acc", first))["code"] == "conflict"  # assigned already
        ack = await assign(boss, "acc")
        assert ack["type"] == "ack" and ack["agent_id"] == "acc", ack
        got = await acc.expect("chat.assigned", conversation_id=cid)
        assert got["topic"] == "payment"
        assert (await waiting.expect("chat.assigned", conversation_id=cid))["agent"]["id"] == "acc"
        async with server.http(server.token("boss", "supervisor")) as http:
            audit = (await http.get("/api/audit", params={"actor_id": "boss"})).json()
        [entry] = [e for e in audit if e["action"] == "chat.assign"]
        assert entry["conversation_id"] == cid and entry["details"]["agent_id"] == "acc"
        await close_all(full, first_user, waiting, acc, gone, boss)


async def test_a_supervisor_may_take_any_queued_chat_an_agent_only_with_the_skill(isolated):
    async with hub_with(isolated) as (server, db):
        _, user = await customer(server)
        cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
            "conversation_id"
        ]
        await user.expect("chat.queued", conversation_id=cid)
        acc = await staff(server, db, "acc", skills=("account",))
        boss = await staff(server, db, "boss", role="supervisor", skills=(), supervisor=True)
        err = await acc.request({"type": "chat.take", "conversation_id": cid})
        assert err["code"] == "forbidden"
        ack = await boss.request({"type": "chat.take", "conversation_id": cid})
        assert ack["type"] == "ack" and ack["agent_id"] == "boss"
        await boss.expect("chat.assigned", conversation_id=cid)
        await close_all(user, acc, boss)
