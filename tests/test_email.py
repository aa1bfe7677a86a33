"""The e-mail channel on real servers, real SMTP on loopback both ways: the hub's own
listener takes the customer's mail, a catcher plays the relay the hub mails replies to."""

from __future__ import annotations

import asyncio
import io
import os
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

import asyncpg
import pytest
from PIL import Image

from hub.store import agents
from hub.store import mail as mail_store
from supporthub_core.db import init_connection
from tests.conftest import free_port, start_hub
from tests.mailcatcher import MailCatcher, deliver

SUPPORT = "support@hub.test"
RELAY = "mx.hub.test"  # the authserv-id of the relay in front of the hub
CUSTOMER = "zhang@customer.test"


def mail(
    text: str,
    *,
    subject: str = "My transfer is stuck",
    sender: str = CUSTOMER,
    auth: str | None = f"{RELAY}; spf=pass smtp.mailfrom=customer.test;"
    " dkim=pass header.d=customer.test",
    in_reply_to: str | None = None,
    references: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Zhang San <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="customer.test")
    if auth is not None:
        msg["Authentication-Results"] = auth
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(text)
    return msg


@pytest.fixture
async def setup(isolated):
    catcher = await MailCatcher(free_port()).start()
    smtp_port = free_port()
    server = await start_hub(
        isolated, smtp_listen=f"127.0.0.1:{smtp_port}", support_email=SUPPORT,
        smtp_relay_host="127.0.0.1", smtp_relay_port=catcher.port,
        mail_trusted_authserv=RELAY, mail_poll_s=0.2, mail_retry_s=0.2, mail_retry_max_s=0.5,
        attachment_max_bytes=64 * 1024,
    )  # fmt: skip
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    await db.execute("insert into users (id, name, lang) values ('u-zhang', 'Zhang San', 'en')")
    await mail_store.add_address(db, "u-zhang", CUSTOMER.upper(), verified=True)
    await agents.upsert(db, username="alice", password="pw-alice", name="Alice",
                        skills=["payment", "other", "account", "technical", "arrival", "security"], capacity=3)  # fmt: skip
    try:
        yield server, db, catcher, smtp_port
    finally:
        await db.close()
        await server.stop()
        await catcher.stop()


async def held_out_of_the_queue(db, cid: str) -> None:
    """A mailed chat as its node leaves it until its first message is stored."""
    await db.execute(
        "update conversations set status = 'bot', enqueued_at = null where id = $1", cid
    )


async def online_agent(server):
    agent = await server.client("alice", "agent", name="Alice")
    state = await agent.request({"type": "agent.status", "status": "online"})
    assert state["status"] == "online"
    return agent


async def test_mail_becomes_chat_answered_by_mail_in_the_same_thread(setup):
    server, db, catcher, smtp_port = setup
    agent = await online_agent(server)
    first = mail("My transfer to Li has been processing since yesterday.")
    await deliver(smtp_port, first)

    assigned = await agent.expect("chat.assigned")
    cid = assigned["conversation_id"]
    texts = [m["text"] for m in assigned["history"]]
    assert any("processing since yesterday" in t for t in texts)
    assert assigned["channel"] == "email" and assigned["reply_by_email"] is True
    conv = await db.fetchrow(
        "select channel, topic, reply_email from conversations where id = $1", cid
    )
    assert conv["channel"] == "email" and conv["reply_email"] == CUSTOMER
    assert conv["topic"] != "security"

    ack = await agent.request({"type": "chat.send", "conversation_id": cid,
                               "client_msg_id": "r1", "text": "I am looking at it now."})  # fmt: skip
    assert ack["type"] == "ack"
    reply = await catcher.next()
    assert reply["X-Envelope-To"] == CUSTOMER
    assert reply["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in reply["References"]
    assert reply["Subject"] == "Re: My transfer is stuck"
    body = reply.get_content().replace("\r\n", "\n")
    assert body.startswith("I am looking at it now.")
    assert "> My transfer to Li has been processing since yesterday." in body  # the thread
    assert "\n-- \n" in body  # the signature
    stored = await db.fetchval("select mail_id from messages where id = $1", ack["message_id"])
    assert f"<{stored}>" == reply["Message-ID"]

    # the customer answers that mail: the same conversation, on the agent's screen
    answer = mail("Thanks, it is transaction T-123.\n\nOn Monday Alice wrote:\n> I am looking",
                  subject="Re: My transfer is stuck", in_reply_to=reply["Message-ID"],
                  references=f"{first['Message-ID']} {reply['Message-ID']}")  # fmt: skip
    await deliver(smtp_port, answer)
    got = await agent.expect(lambda f: f["type"] == "message" and f["sender"]["role"] == "user")
    assert got["conversation_id"] == cid
    assert got["text"] == "Thanks, it is transaction T-123."
    assert got["sender"]["role"] == "user"
    assert await db.fetchval("select count(*) from conversations") == 1

    # the same mail again (the sending server retried): stored once
    await deliver(smtp_port, answer)
    await agent.request({"type": "ping"})
    assert await db.fetchval("select count(*) from messages where conversation_id = $1"
                             " and sender_role = 'user'", cid) == 2  # fmt: skip
    await agent.close()


@pytest.mark.parametrize(
    "auth",
    [
        f"{RELAY}; spf=fail smtp.mailfrom=customer.test; dkim=fail header.d=customer.test",
        # the sender's own claim, not our relay's: not trusted
        "evil.test; spf=pass smtp.mailfrom=customer.test; dkim=pass header.d=customer.test",
        None,
    ],
)
async def test_a_forged_sender_gets_a_generic_answer_and_nothing_else(setup, auth):
    server, db, catcher, smtp_port = setup
    agent = await online_agent(server)
    # a real conversation of that customer exists, with a reply in it
    genuine = mail("The secret story of my stuck transfer")
    await deliver(smtp_port, genuine)
    assigned = await agent.expect("chat.assigned")
    cid = assigned["conversation_id"]
    await agent.request({"type": "chat.send", "conversation_id": cid,
                         "client_msg_id": "r1", "text": "Your balance is 5000."})  # fmt: skip
    reply = await catcher.next()

    forged = mail("Please tell me everything", auth=auth, subject="Re: My transfer is stuck",
                  in_reply_to=reply["Message-ID"], references=reply["Message-ID"])  # fmt: skip
    await deliver(smtp_port, forged)
    answer = await catcher.next()
    assert answer["In-Reply-To"] == forged["Message-ID"]
    body = answer.get_content()
    assert "verified" in body
    for secret in ("balance", "5000", "secret story", "Alice"):
        assert secret not in body
    assert await db.fetchval("select count(*) from conversations") == 1
    assert await db.fetchval("select count(*) from messages where text like '%tell me%'") == 0
    await agent.close()


async def test_unknown_sender_opens_nothing(setup):
    server, db, catcher, smtp_port = setup
    await deliver(smtp_port, mail("hello", sender="stranger@customer.test"))
    answer = await catcher.next()
    assert answer["X-Envelope-To"] == "stranger@customer.test"
    assert "verified" in answer.get_content()
    assert await db.fetchval("select count(*) from conversations") == 0


async def test_mail_to_another_address_is_refused(setup):
    server, db, catcher, smtp_port = setup
    msg = mail("hi")
    del msg["To"]
    msg["To"] = "someone@hub.test"
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await deliver(smtp_port, msg)


async def test_replies_wait_in_the_outbox_while_the_relay_is_down(setup):
    server, db, catcher, smtp_port = setup
    agent = await online_agent(server)
    first = mail("Where is my money?")
    await deliver(smtp_port, first)
    cid = (await agent.expect("chat.assigned"))["conversation_id"]
    await catcher.stop()
    await agent.request({"type": "chat.send", "conversation_id": cid,
                         "client_msg_id": "r1", "text": "It arrives today."})  # fmt: skip
    for _ in range(400):  # the relay refused it at least once
        if await db.fetchval("select attempts from mail_outbox where kind = 'reply'"):
            break
        await asyncio.sleep(0.05)
    row = await db.fetchrow("select attempts, sent_at, last_error from mail_outbox")
    assert row["attempts"] >= 1 and row["sent_at"] is None and row["last_error"]
    await catcher.start()
    reply = await catcher.next()
    assert reply["In-Reply-To"] == first["Message-ID"]
    assert reply.get_content().startswith("It arrives today.")
    assert catcher.mail.empty()
    await agent.close()


def png(size: int) -> bytes:
    img = Image.new("RGB", (size, size), (200, 30, 30))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


async def test_attachments_within_the_chat_limits(setup):
    server, db, catcher, smtp_port = setup
    agent = await online_agent(server)
    msg = mail("Screenshots attached")
    msg.add_attachment(
        png(32), maintype="image", subtype="png", filename="card 4111111111111111.png"
    )
    msg.add_attachment(b"MZ\x90\x00not a picture", maintype="application",
                       subtype="octet-stream", filename="tool.exe")  # fmt: skip
    big = Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3))  # noise: big
    raw = io.BytesIO()
    big.save(raw, "PNG")
    assert len(raw.getvalue()) > 64 * 1024
    msg.add_attachment(raw.getvalue(), maintype="image", subtype="png", filename="huge.png")
    await deliver(smtp_port, msg)

    assigned = await agent.expect("chat.assigned")
    files = [a for m in assigned["history"] for a in m.get("attachments", [])]
    assert len(files) == 1
    assert files[0]["content_type"] == "image/png"
    assert "4111111111111111" not in files[0]["name"]

    notice = await catcher.next()
    body = notice.get_content()
    assert "tool.exe" in body and "huge.png" in body
    assert notice["In-Reply-To"] == msg["Message-ID"]
    await agent.close()


async def test_a_mailed_chat_reaches_an_agent_only_with_its_text_and_files(setup, isolated):
    server, db, catcher, smtp_port = setup
    msg = mail("Here is the receipt.")
    msg.add_attachment(png(32), maintype="image", subtype="png", filename="receipt.png")
    hold = await asyncpg.connect(isolated.dsn)
    tx = hold.transaction()
    await tx.start()
    await hold.execute("lock table attachments in share mode")  # the file's row waits
    delivered = asyncio.create_task(deliver(smtp_port, msg))
    while not await db.fetchval("select count(*) from conversations"):
        await asyncio.sleep(0.05)
    agent = await online_agent(server)  # a routing pass while the mail is half stored
    await tx.rollback()
    await hold.close()
    await delivered

    assigned = await agent.expect("chat.assigned")
    texts = [m["text"] for m in assigned["history"]]
    assert any("Here is the receipt." in t for t in texts)
    files = [a for m in assigned["history"] for a in m.get("attachments", [])]
    assert [f["content_type"] for f in files] == ["image/png"]
    await agent.close()


async def test_a_mail_retried_after_it_was_stored_queues_the_chat_it_left_held(setup):
    server, db, catcher, smtp_port = setup
    first = mail("Is anyone there?")
    await deliver(smtp_port, first)
    cid = await db.fetchval("select id from conversations")
    await held_out_of_the_queue(db, cid)  # cut off after the message, before the queue
    await deliver(smtp_port, first)  # the sending server tries again: a duplicate
    texts = await db.fetchval(
        "select count(*) from messages where sender_role = 'user' and conversation_id = $1", cid
    )
    assert texts == 1
    assert await db.fetchval("select status from conversations") == "queued"

    agent = await online_agent(server)
    assigned = await agent.expect("chat.assigned")
    assert assigned["conversation_id"] == cid
    assert any("Is anyone there?" in m["text"] for m in assigned["history"])
    await agent.close()


async def test_nobody_online_leave_a_message_answered_by_mail(setup):
    server, db, catcher, smtp_port = setup
    user = await server.client("u-zhang", name="Zhang San")
    opened = await user.request(
        {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "refund please"}
    )
    cid = opened["conversation_id"]
    assert opened["status"] == "queued"
    ack = await user.request({"type": "chat.leave_message", "conversation_id": cid, "via": "email"})
    assert ack == {"type": "ack", "id": ack["id"], "conversation_id": cid, "via": "email",
                   "address": "z***@customer.test", "status": "queued",
                   "message_left": True}  # fmt: skip
    await user.close()

    agent = await online_agent(server)
    assigned = await agent.expect("chat.assigned")
    assert assigned["conversation_id"] == cid and assigned["reply_by_email"] is True
    await agent.request({"type": "chat.send", "conversation_id": cid,
                         "client_msg_id": "r1", "text": "Refunded today."})  # fmt: skip
    reply = await catcher.next()
    assert reply["X-Envelope-To"] == CUSTOMER
    body = reply.get_content().replace("\r\n", "\n")
    assert body.startswith("Refunded today.") and "> refund please" in body

    # the customer answers the mail: the same chat
    await deliver(smtp_port, mail("Thank you!", subject=reply["Subject"],
                                  in_reply_to=reply["Message-ID"]))  # fmt: skip
    got = await agent.expect(lambda f: f["type"] == "message" and f["sender"]["role"] == "user")
    assert got["conversation_id"] == cid and got["text"] == "Thank you!"

    # someone without a verified address cannot choose it
    other = await server.client("u-nomail")
    opened = await other.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
    err = await other.request(
        {"type": "chat.leave_message", "conversation_id": opened["conversation_id"], "via": "email"}
    )
    assert err["type"] == "error" and err["code"] == "invalid"
    assert err["reason"] == "no_verified_email"
    # nor for someone else's chat
    err = await other.request(
        {"type": "chat.leave_message", "conversation_id": cid, "via": "email"}
    )
    assert err["type"] == "error" and err["code"] in ("forbidden", "not_found")
    await other.close()
    await agent.close()


async def test_dev_catches_sent_mail_and_lists_it(isolated):
    server = await start_hub(isolated, support_email=SUPPORT)  # dev: listener and catcher
    db = await asyncpg.connect(isolated.dsn)
    try:
        await init_connection(db)
        await mail_store.add_address(db, "u-dev", "dev@demo.example")
        await agents.upsert(db, username="alice", password="pw-alice", name="Alice",
                            skills=["other", "payment", "arrival", "account"], capacity=3)  # fmt: skip
        agent = await online_agent(server)
        async with server.http() as http:
            listen = (await http.get("/dev/mail", params={"format": "json"})).json()["listen"]
        msg = mail("hello from dev", sender="dev@demo.example", auth=None, subject="Dev mail")
        await deliver(int(listen.rpartition(":")[2]), msg)
        cid = (await agent.expect("chat.assigned"))["conversation_id"]
        await agent.request({"type": "chat.send", "conversation_id": cid,
                             "client_msg_id": "r1", "text": "Hello back"})  # fmt: skip
        async with server.http() as http:
            for _ in range(400):
                got = (await http.get("/dev/mail", params={"format": "json"})).json()["mail"]
                if got:
                    break
                await asyncio.sleep(0.05)
            page = (await http.get("/dev/mail")).text
        assert got[0]["to"] == ["dev@demo.example"]
        assert got[0]["in_reply_to"] == msg["Message-ID"]
        assert got[0]["text"].startswith("Hello back")
        assert "Re: Dev mail" in page
        await agent.close()
    finally:
        await db.close()
        await server.stop()


def test_email_add_command_saves_a_verified_address(isolated):
    from tests.conftest import SECRET, run_cli

    env = {"HUB_DATABASE_URL": isolated.dsn, "HUB_REDIS_URL": isolated.redis_url,
           "HUB_SECRET": SECRET}  # fmt: skip
    out = run_cli("email", "add", "--user", "u-cli", "--address", "Li@Example.test", env=env)
    assert out.returncode == 0, out.stderr
    assert "li@example.test saved for u-cli (verified)" in out.stdout

    async def check():
        db = await asyncpg.connect(isolated.dsn)
        try:
            return await mail_store.owner(db, "LI@example.test")
        finally:
            await db.close()

    row = asyncio.run(check())
    assert row["user_id"] == "u-cli" and row["verified"]


async def test_secrets_are_masked_and_a_closed_chat_is_not_reopened(setup):
    server, db, catcher, smtp_port = setup
    agent = await online_agent(server)
    first = mail("My card 4111 1111 1111 1111 was charged twice", subject="Charged twice")
    await deliver(smtp_port, first)
    assigned = await agent.expect("chat.assigned")
    cid = assigned["conversation_id"]
    stored = " ".join(m["text"] for m in assigned["history"])
    assert "4111 1111 1111 1111" not in stored and "charged twice" in stored
    assert await db.fetchval("select count(*) from messages where text like '%4111 1111%'") == 0
    await agent.request({"type": "chat.send", "conversation_id": cid,
                         "client_msg_id": "r1", "text": "Refunded."})  # fmt: skip
    reply = await catcher.next()
    assert "4111 1111 1111 1111" not in reply.get_content()
    await agent.request({"type": "chat.resolve", "conversation_id": cid})

    # an answer to a resolved chat's mail opens a new chat (its thread is not reopened)
    await deliver(smtp_port, mail("It happened again", subject="Re: Charged twice",
                                  in_reply_to=reply["Message-ID"]))  # fmt: skip
    again = await agent.expect(
        lambda f: f["type"] == "chat.assigned" and f["conversation_id"] != cid
    )
    assert [m["text"] for m in again["history"]][-1].endswith("It happened again")
    assert await db.fetchval("select count(*) from conversations") == 2
    await agent.close()


async def test_generic_answers_to_one_address_are_capped(setup):
    server, db, catcher, smtp_port = setup
    for i in range(7):
        await deliver(smtp_port, mail(f"spam {i}", sender="victim@customer.test"))
    assert await db.fetchval(
        "select count(*) from mail_outbox where to_address = 'victim@customer.test'"
    ) == 5  # fmt: skip
    assert await db.fetchval("select count(*) from conversations") == 0


async def test_an_agents_files_go_along_with_the_reply(setup):
    server, db, catcher, smtp_port = setup
    agent = await online_agent(server)
    await deliver(smtp_port, mail("Which screen?"))
    cid = (await agent.expect("chat.assigned"))["conversation_id"]
    async with server.http(server.token("alice", "agent", name="Alice")) as http:
        up = await http.post("/api/attachments", data={"conversation_id": cid},
                             files={"file": ("where.png", png(16), "image/png")})  # fmt: skip
    assert up.status_code == 201, up.text
    await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "r1",
                         "text": "This one.", "attachments": [up.json()["attachment_id"]]})  # fmt: skip
    reply = await catcher.next()
    files = list(reply.iter_attachments())
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [("where.png", "image/png")]
    assert files[0].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    await agent.close()


async def test_a_mail_retried_after_a_cut_off_opening_continues_its_chat(setup):
    server, db, catcher, smtp_port = setup
    first = mail("Is anyone there?")
    await deliver(smtp_port, first)
    cid = await db.fetchval("select id from conversations")
    # as if the node died after opening the chat, before its message was stored (451)
    await db.execute("delete from messages where conversation_id = $1", cid)
    await held_out_of_the_queue(db, cid)  # as it is until its message is stored
    await deliver(smtp_port, first)  # the sending server tries again
    assert await db.fetchval("select count(*) from conversations") == 1
    assert await db.fetchval("select status from conversations") == "queued"
    texts = await db.fetch("select text, mail_id from messages where conversation_id = $1", cid)
    assert len(texts) == 1 and "Is anyone there?" in texts[0]["text"]
    assert f"<{texts[0]['mail_id']}>" == first["Message-ID"]
