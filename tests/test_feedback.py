"""Feedback to the product team on real servers: the bot recognises suggestions and
complaints (thanks, records, no hand-off), agents tag messages, rating comments join,
supervisors read and export them, and each new item is POSTed to a real webhook receiver
that is made to fail first (the hub retries)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import asyncpg
import pytest
from starlette.requests import Request
from starlette.responses import Response

from hub.helpbot import feedback as recogniser
from supporthub_core.db import init_connection
from tests.conftest import start_hub
from tests.oncall import OnCallReceiver
from tests.scripted_day import add_agents

KEY = "feedback-webhook-key"


class FlakyReceiver(OnCallReceiver):
    """Refuses the first `failures` POSTs with a 503, then takes them."""

    def __init__(self, key: str, failures: int) -> None:
        super().__init__(key)
        self.failures = failures
        self.attempts = 0

    async def _receive(self, request: Request) -> Response:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            return Response(status_code=503)
        return await super()._receive(request)

    async def wait_items(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.pages) < count:
            assert time.monotonic() < deadline, (self.pages, self.refused)
            await asyncio.sleep(0.05)
        return [p["item"] for p in self.pages]


@pytest.fixture
async def setup(isolated):
    receiver = await FlakyReceiver(KEY, failures=1).start()
    server = await start_hub(isolated, feedback_webhook_url=receiver.url,
                             feedback_webhook_key=KEY, feedback_webhook_backoff_s=0.05)  # fmt: skip
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    await add_agents(db)
    try:
        yield server, db, receiver
    finally:
        await db.close()
        await server.stop()
        await receiver.stop()


async def bot_chat(server, text: str, lang: str) -> tuple[object, str, dict]:
    user = await server.client(None, "user")
    opened = await user.request(
        {"type": "chat.open", "topic": "other", "handoff": "bot", "text": text, "lang": lang}
    )
    cid = opened["conversation_id"]
    await user.expect("message", conversation_id=cid, seq=1)  # the question
    await user.expect("message", conversation_id=cid, seq=2)  # the greeting
    reply = await user.expect("message", conversation_id=cid, seq=3)
    return user, cid, reply


@pytest.mark.parametrize(
    ("text", "lang"), [("建议增加夜间模式", "zh"), ("please add a dark mode", "en")]
)
async def test_the_bot_thanks_for_a_suggestion_and_records_it(setup, text, lang):
    server, db, receiver = setup
    user, cid, reply = await bot_chat(server, text, lang)
    assert reply["sender"]["role"] == "bot"
    assert reply["text"] == recogniser.thanks("suggestion", lang)  # not an article
    await user.quiet("chat.queued", 0.3)
    assert await db.fetchval("select status from conversations where id = $1", cid) == "bot"
    async with server.http(server.token("sam", "supervisor")) as http:
        listed = (await http.get("/api/feedback")).json()
    (item,) = listed["items"]
    assert (item["kind"], item["source"], item["theme"], item["text"]) == (
        "suggestion", "bot", "appearance", text,
    )  # fmt: skip
    assert item["conversation_id"] == cid and item["lang"] == lang
    assert listed["themes"] == [{"theme": "appearance", "count": 1, "suggestions": 1,
                                 "complaints": 0, "example": text}]  # fmt: skip
    # the webhook: refused once, then taken, signed (the receiver checks)
    (sent,) = await receiver.wait_items(1)
    assert sent["feedback_id"] == item["feedback_id"] and sent["text"] == text
    assert receiver.attempts == 2
    async with server.http(server.token("sam", "supervisor")) as http:
        for _ in range(100):
            if (await http.get("/api/feedback")).json()["items"][0]["delivered"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("never marked delivered")
    await user.close()


async def test_a_complaint_is_thanked_with_an_offer_of_a_person(setup):
    server, db, receiver = setup
    user, cid, reply = await bot_chat(server, "你们客服态度太差了", "zh")
    assert reply["text"] == recogniser.thanks("complaint", "zh")
    assert [c["text"] for c in reply.get("choices", [])] == ["转人工"]
    assert await db.fetchval("select status from conversations where id = $1", cid) == "bot"
    row = await db.fetchrow("select kind, theme from feedback where conversation_id = $1", cid)
    assert (row["kind"], row["theme"]) == ("complaint", "service")
    await user.close()


async def test_the_agent_a_chat_is_transferred_to_gets_its_tags(setup):
    """An agent who gets a chat from another (a transfer) sees what was tagged in it, as a
    reloaded console does: `chat.assigned` carries its `feedback`.

    Before, only a reconnecting console's `chat.assigned` carried it: the new agent saw
    none of the tags and could tag the same message again as if it were new."""
    server, db, receiver = setup
    alice, user, cid, message_id = await chat_with_alice(server, "the fee is not shown")
    tag = await alice.request(
        {"type": "feedback.tag", "conversation_id": cid, "message_id": message_id,
         "note": "fee display"}
    )  # fmt: skip
    bob = await server.client("bob", "agent", name="Bob")
    await bob.request({"type": "agent.status", "status": "online"})
    moved = await alice.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_agent": "bob"}
    )
    assert moved["type"] == "ack", moved
    assigned = await bob.expect("chat.assigned", conversation_id=cid)
    assert assigned["feedback"] == [
        {"feedback_id": tag["feedback_id"], "message_id": message_id, "tagged_by": "alice",
         "note": "fee display"}
    ]  # fmt: skip
    for c in (alice, bob, user):
        await c.close()


async def chat_with_alice(server, text: str) -> tuple[Any, Any, str, str]:
    """Agent alice online, and a customer's chat (opened with `text`) assigned to her:
    (alice, the customer, the chat's id, the id of its first message)."""
    alice = await server.client("alice", "agent", name="Alice")
    await alice.request({"type": "agent.status", "status": "online"})
    user = await server.client(None, "user")
    opened = await user.request(
        {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": text}
    )
    cid = opened["conversation_id"]
    assigned = await alice.expect("chat.assigned", conversation_id=cid)
    return alice, user, cid, assigned["history"][0]["message_id"]


async def test_agents_tag_messages_and_ratings_join(setup):
    server, db, receiver = setup
    alice, user, cid, message_id = await chat_with_alice(
        server, "the statement page is hard to read on my phone"
    )
    bob = await server.client("bob", "agent", name="Bob")
    tag = {"type": "feedback.tag", "conversation_id": cid, "message_id": message_id}
    first = await alice.request(tag)
    assert first["type"] == "ack" and first["new"] is True and first["kind"] == "tagged"
    again = await alice.request({**tag, "note": "twice"})
    assert again["feedback_id"] == first["feedback_id"] and again["new"] is False
    refused = await bob.request(tag)  # not his chat
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    missing = await alice.request({**tag, "message_id": "nope"})
    assert missing["type"] == "error" and missing["code"] == "not_found"
    whole = await alice.request({"type": "feedback.tag", "conversation_id": cid,
                                 "note": "wants statements by mail; password hunter2pass"})  # fmt: skip
    assert whole["new"] is True
    stored = await db.fetchval("select text from feedback where id = $1", whole["feedback_id"])
    assert "hunter2pass" not in stored and "statements by mail" in stored
    await alice.request({"type": "chat.resolve", "conversation_id": cid})
    await user.request({"type": "chat.rate", "conversation_id": cid, "score": 2,
                        "comment": "took too long, and the fees are too high"})  # fmt: skip
    async with server.http(server.token("sam", "supervisor")) as http:
        items = (await http.get("/api/feedback")).json()["items"]
        by_kind = {i["kind"]: i for i in items}
        assert set(by_kind) == {"tagged", "rating"}
        tagged = [i for i in items if i["kind"] == "tagged"]
        assert {i["tagged_by"] for i in tagged} == {"alice"} and len(tagged) == 2
        assert "the statement page is hard to read on my phone" in {i["text"] for i in tagged}
        assert by_kind["rating"]["score"] == 2 and by_kind["rating"]["theme"] == "fees"
        only = (await http.get("/api/feedback", params={"kind": "rating"})).json()["items"]
        assert [i["kind"] for i in only] == ["rating"]
        r = await http.get("/api/feedback/export.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {row["kind"] for row in rows} == {"tagged", "rating"}
        audit = (await http.get("/api/audit", params={"action": "feedback.tag"})).json()
        assert [a["actor"]["id"] for a in audit] == ["alice", "alice", "alice"]
        assert (await http.get("/api/feedback", params={"days": "0"})).status_code == 422
    async with server.http(server.token("alice", "agent")) as http:
        assert (await http.get("/api/feedback")).status_code == 403
    for c in (alice, bob, user):
        await c.close()


async def test_tags_are_listed_with_the_chat_and_a_repeat_is_no_new_item(setup):
    """What was tagged comes back with the chat (a reconnecting console's `chat.assigned`,
    staff's `GET /api/conversations/{id}`); tagging a message or the chat again answers the
    first item, who tagged it and its note, whatever the new note reads as."""
    server, db, receiver = setup
    alice, user, cid, message_id = await chat_with_alice(server, "where do I see the fee?")
    sam = await server.client("sam", "supervisor", name="Sam")
    tag = {"type": "feedback.tag", "conversation_id": cid, "message_id": message_id}
    first = await alice.request(tag)
    again = await sam.request({**tag, "note": "seen this one"})
    assert (again["feedback_id"], again["new"], again["tagged_by"], again["note"]) == (
        first["feedback_id"], False, "alice", None,
    )  # fmt: skip
    note = "please add a dark mode"  # reads as a suggestion: the chat's tag is still one item
    whole = await alice.request({"type": "feedback.tag", "conversation_id": cid, "note": note})
    assert whole["new"] is True and whole["kind"] == "suggestion" and whole["note"] == note
    repeat = await sam.request({"type": "feedback.tag", "conversation_id": cid,
                                "note": "please add a light mode"})  # fmt: skip
    assert (repeat["feedback_id"], repeat["new"], repeat["tagged_by"], repeat["note"]) == (
        whole["feedback_id"], False, "alice", note,
    )  # fmt: skip
    for bad in ("   ", "x" * 2001, 42):
        refused = await alice.request({"type": "feedback.tag", "conversation_id": cid, "note": bad})
        assert refused["type"] == "error" and refused["code"] == "bad_frame", refused
        assert "note" in refused["message"]

    expected = [
        {"feedback_id": first["feedback_id"], "message_id": message_id, "tagged_by": "alice",
         "note": None},
        {"feedback_id": whole["feedback_id"], "message_id": None, "tagged_by": "alice",
         "note": note},
    ]  # fmt: skip
    await alice.close()
    alice = await server.client("alice", "agent", name="Alice")  # a reloaded console
    assert (await alice.expect("chat.assigned", conversation_id=cid))["feedback"] == expected
    async with server.http(server.token("alice", "agent")) as http:
        assert (await http.get(f"/api/conversations/{cid}")).json()["feedback"] == expected
    async with server.http(server.token(user.welcome["sub"], "user")) as http:
        assert "feedback" not in (await http.get(f"/api/conversations/{cid}")).json()
    async with server.http(server.token("sam", "supervisor")) as http:
        items = (await http.get("/api/feedback")).json()["items"]
        rows = list(csv.DictReader(io.StringIO((await http.get("/api/feedback/export.csv")).text)))
    assert len(items) == 2 and {i["note"] for i in items} == {None, note}
    assert {r["note"] for r in rows} == {"", note}
    assert await db.fetchval("select count(*) from feedback where conversation_id = $1", cid) == 2
    for c in (alice, sam, user):
        await c.close()


async def test_the_rest_twin_tags_like_the_frame_and_refuses_bad_input_plainly(setup):
    server, db, receiver = setup
    alice, user, cid, message_id = await chat_with_alice(server, "fees are hidden")
    path = f"/api/conversations/{cid}/feedback"
    async with server.http(server.token("alice", "agent")) as http:
        for bad, status in (({"note": "  "}, 422), ({"note": "x" * 2001}, 422),
                            ({"note": 7}, 422), ({"message_id": ""}, 422),
                            ({"message_id": "nope"}, 404)):  # fmt: skip
            r = await http.post(path, json=bad)
            assert r.status_code == status, (bad, r.text)
            assert r.json()["error"]["code"] in {"invalid", "not_found"}
        assert "note" in (await http.post(path, json={"note": " "})).json()["error"]["message"]
        first = await http.post(path, json={"message_id": message_id, "note": " shown late "})
        assert first.status_code == 200 and first.json()["new"] is True
        assert first.json()["note"] == "shown late" and first.json()["tagged_by"] == "alice"
        again = (await http.post(path, json={"message_id": message_id})).json()
        assert again == {**first.json(), "new": False}
        assert (await http.post("/api/conversations/nope/feedback", json={})).status_code == 404
    async with server.http(server.token(user.welcome["sub"], "user")) as http:
        assert (await http.post(path, json={})).status_code == 403
    assert await db.fetchval("select count(*) from feedback where conversation_id = $1", cid) == 1
    for c in (alice, user):
        await c.close()


async def test_items_the_receiver_never_took_are_sent_by_the_next_node_to_start(isolated):
    from tests.conftest import free_port

    nobody = f"http://127.0.0.1:{free_port()}/page"  # nothing listens there
    server = await start_hub(isolated, feedback_webhook_url=nobody, feedback_webhook_key=KEY,
                             feedback_webhook_retries=0)  # fmt: skip
    db = await asyncpg.connect(isolated.dsn)
    try:
        user, cid, _ = await bot_chat(server, "please add a dark mode", "en")
        for _ in range(200):
            if await db.fetchval("select attempts from feedback where conversation_id = $1", cid):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("never attempted")
        await user.close()
        await server.stop()
        receiver = await FlakyReceiver(KEY, failures=0).start()
        try:
            server = await start_hub(isolated, feedback_webhook_url=receiver.url,
                                     feedback_webhook_key=KEY)  # fmt: skip
            (sent,) = await receiver.wait_items(1)
            assert sent["conversation_id"] == cid and sent["text"] == "please add a dark mode"
            await server.stop()
        finally:
            await receiver.stop()
    finally:
        await db.close()
