"""What follows a stored chat.open (its text as message 1, the bot's first turn, the
routing pass) is never lost when the node that stored it gave up waiting for the store:
the same open sent again, or the sweeper, finishes it. Real hub, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hub.rules.opening import open_key
from hub.store.opening import ChatOpen, open_chats
from tests.conftest import start_hub

pytestmark = pytest.mark.usefixtures("clean")

QUESTION = "转账没到账"


def said(cid: str, role: str, text: str | None = None):
    def matches(f: dict) -> bool:
        return (
            f.get("type") == "message"
            and f.get("conversation_id") == cid
            and f["sender"]["role"] == role
            and (text is None or f["text"] == text)
        )

    return matches


async def follow_up_done(db, cid: str) -> None:
    for _ in range(1500):
        if await db.fetchval(
            "select open_follow_up_at is null from conversations where id = $1", cid
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the open of {cid} is still marked as left undone")


async def test_an_open_the_store_answered_too_late_keeps_its_question_when_sent_again(services, db):
    """The store is held up (the messages table locked) past the hub's write timeout while
    a customer opens a chat: the open is answered `unavailable`, and sent again once the
    store is back. The chat then carries the customer's question as its first message and
    the bot answers it.

    Before, the chat was stored first and its text posted by a second write: that write
    gave up, the chat stayed open without its question and without the bot, and the open
    sent again was told of that chat (`existing`) with nothing in it."""
    hub = await start_hub(services, write_timeout_s=1.0, open_follow_up_s=2.0)
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        customer = await hub.client(user_id)
        opens = {"type": "chat.open", "topic": "payment", "handoff": "bot", "text": QUESTION}
        lock = db.transaction()
        await lock.start()
        try:
            await db.execute("lock table messages in exclusive mode")
            refused = await customer.request(opens, timeout=60)
        finally:
            await lock.rollback()
        assert (refused["type"], refused["code"]) == ("error", "unavailable")
        opened = await customer.request(opens, timeout=60)
        cid = opened["conversation_id"]
        await customer.expect(said(cid, "user", QUESTION), timeout=30)
        await customer.expect(said(cid, "bot"), timeout=30)
        await follow_up_done(db, cid)
        texts = await db.fetch(
            "select text from messages where conversation_id = $1 and sender_role = 'user'", cid
        )
        assert [t["text"] for t in texts] == [QUESTION]
        await customer.close()
    finally:
        await hub.stop()


@pytest.mark.parametrize("sent_again", [True, False], ids=["sent-again", "never-again"])
@pytest.mark.parametrize("handoff", ["bot", "agent"])
async def test_an_open_stored_without_its_follow_up_is_finished(
    services, db, sent_again: bool, handoff: str
):
    """A chat stored by an open whose node never heard the store's answer (written here
    with the store's own statement, as that node left it) holds the customer's question,
    and the customer hears what follows: a `bot` chat's first message, then the bot's
    answer; a queued chat's place in the queue (every routing pass places it). Whether
    the customer sends the open again or not (the sweep then)."""
    hub = await start_hub(services, open_follow_up_s=0.5)
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        customer = await hub.client(user_id)
        cid, topic = f"c-{uuid.uuid4().hex[:12]}", "payment"
        status = "bot" if handoff == "bot" else "queued"
        (row,) = await open_chats(
            db,
            [
                ChatOpen(
                    cid, user_id, topic, "normal", status, None, "app", 0,
                    open_key(topic, QUESTION), QUESTION, "Customer",
                )
            ],
        )  # fmt: skip
        first = await db.fetchrow(
            "select id, seq, sender_role, text from messages where conversation_id = $1", cid
        )
        assert (first["id"], first["seq"], first["sender_role"], first["text"]) == (
            row["first_message_id"], 1, "user", QUESTION,
        )  # fmt: skip
        if sent_again:
            opens = {"type": "chat.open", "topic": topic, "handoff": handoff, "text": QUESTION}
            answer = await customer.request(opens, timeout=30)
            assert (answer["conversation_id"], answer["existing"]) == (cid, True)
        if handoff == "bot":
            told = await customer.expect(said(cid, "user"), timeout=30)
            assert (told["seq"], told["text"]) == (1, QUESTION)
            await customer.expect(said(cid, "bot"), timeout=30)
            await follow_up_done(db, cid)  # the sweep does not start the bot again
        else:
            await customer.expect("chat.queued", conversation_id=cid, timeout=30)
        await customer.close()
    finally:
        await hub.stop()
