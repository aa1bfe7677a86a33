"""The dispatch table of the WebSocket edge: frame type -> (handler, roles allowed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hub.push.subscriptions import PushRegistration
from hub.services.audit import entry_by
from hub.services.feedback import tag_answer, tag_entry
from hub.store import notifications as notif_store
from hub.store import queue as queue_store
from hub.store import users as user_store
from hub.ws import protocol as p
from hub.ws.connection import Connection
from hub.ws.protocol import ack_frame

if TYPE_CHECKING:
    from hub.composition import Hub
    from hub.ws.endpoint import Handler

USER = frozenset({"user"})
STAFF = frozenset({"agent", "supervisor"})
SUPERVISOR = frozenset({"supervisor"})
ANY = USER | STAFF


async def ping(hub: Hub, conn: Connection, f: p.Ping) -> None:
    frame = {"type": "pong"}
    if f.id is not None:
        frame["id"] = f.id
    conn.send_frame(frame)


async def auth_refresh(hub: Hub, conn: Connection, f: p.AuthRefresh) -> None:
    claims = await hub.sessions.refresh(conn, f.token)
    conn.send_frame(ack_frame(f.id, exp=claims.exp))


async def chat_open(hub: Hub, conn: Connection, f: p.ChatOpen) -> None:
    await hub.chat.open(conn, f.topic, f.text, f.handoff, f.lang, f.id)


async def chat_escalate(hub: Hub, conn: Connection, f: p.ChatEscalate) -> None:
    status = await hub.chat.escalate(conn.identity, f.conversation_id)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, status=status))


async def chat_send(hub: Hub, conn: Connection, f: p.ChatSend) -> None:
    await chat_send_after(hub, conn, f, None)


async def chat_send_after(
    hub: Hub, conn: Connection, f: p.ChatSend, before: asyncio.Future | None
) -> None:
    """`chat.send`, answered only after `before` (the socket's previous send) is: sends
    of one socket are pipelined (hub.ws.endpoint), they are still acked in order. The
    write is queued before this coroutine first waits (`Chat.send` waits for nothing
    before it hands the write to the store, except for an agent's text that asks for a
    secret, which is then refused), so a socket's messages reach the group writer, get
    their seq, and are published (hub.cluster.fanout_queue) in the order they were sent."""
    msg = await hub.chat.send(
        conn.identity, f.conversation_id, f.client_msg_id, f.text, tuple(f.attachments or ()), conn
    )  # fmt: skip
    if before is not None:
        await asyncio.wait([before])
    conn.send_frame(
        ack_frame(
            f.id,
            conversation_id=msg.conversation_id,
            message_id=msg.message_id,
            seq=msg.seq,
            client_msg_id=msg.client_msg_id,
        )
    )
    # the sender's own copy arrives through the bus like everyone else's; make sure this
    # connection does not get it twice after the ack
    frame = hub.chat.frame(msg)
    conn.push(frame, conn.encode(frame))


async def typing(hub: Hub, conn: Connection, f: p.Typing) -> None:
    await hub.chat.typing(conn.identity, f.conversation_id, f.state)


async def read(hub: Hub, conn: Connection, f: p.Read) -> None:
    await hub.chat.read(conn.identity, f.conversation_id, f.seq)


async def chat_close(hub: Hub, conn: Connection, f: p.ChatClose) -> None:
    final = await hub.chat.close(conn.identity, f.conversation_id)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, **final))


async def chat_leave_message(hub: Hub, conn: Connection, f: p.ChatLeaveMessage) -> None:
    by_mail = {}
    if f.via == "email":  # checked first: no verified address, nothing changes
        address = await hub.mail_in.leave_message(conn.identity, f.conversation_id)
        by_mail = {"via": "email", "address": address}
    state = await hub.chat.leave_message(conn.identity, f.conversation_id)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, **state, **by_mail))


async def chat_rate(hub: Hub, conn: Connection, f: p.ChatRate) -> None:
    await hub.chat.rate(conn.identity, f.conversation_id, f.score, f.comment)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id))


async def notifications_ack(hub: Hub, conn: Connection, f: p.NotificationsAck) -> None:
    async with hub.store.acquire() as db:
        acked = await notif_store.ack(db, conn.identity.sub, f.up_to)
    conn.send_frame(ack_frame(f.id, up_to=acked))
    # the user's other devices clear their unread count too
    await hub.delivery.to_user(conn.identity.sub, {"type": "notifications.acked", "up_to": acked})


async def user_lang(hub: Hub, conn: Connection, f: p.UserLang) -> None:
    user_id = conn.identity.sub
    async with hub.store.acquire() as db:
        convs = await user_store.switch_lang(db, user_id, f.lang)
    hub.languages.forget(user_id)
    conn.locale = (f.lang, conn.locale[1] if conn.locale else None)  # this device's texts too
    for conv in convs:
        if conv["agent_id"]:
            await hub.delivery.to_agent(conv["agent_id"], {"type": "customer.lang", "user_id": user_id,
                                                   "conversation_id": conv["id"], "lang": f.lang})  # fmt: skip
    conn.send_frame(ack_frame(f.id, lang=f.lang))


async def agent_status(hub: Hub, conn: Connection, f: p.AgentStatus) -> None:
    state = await hub.chat.set_status(conn.identity, f.status)
    await hub.audit.record(entry_by(conn.identity, "agent.status", details={"status": f.status}))
    reply = dict(state)
    if f.id is not None:
        reply["id"] = f.id
    conn.send_frame(reply)


async def chat_note(hub: Hub, conn: Connection, f: p.ChatNote) -> None:
    note = await hub.chat.note(conn.identity, f.conversation_id, f.text, conn)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, note_id=note["note_id"]))


async def chat_transfer(hub: Hub, conn: Connection, f: p.ChatTransfer) -> None:
    await hub.chat.transfer(conn.identity, f.conversation_id, f.to_agent, f.to_topic, f.note)
    details: dict[str, object] = {"to_agent": f.to_agent, "to_topic": f.to_topic}
    if f.note:
        details["handover_note"] = True
    await hub.audit.record(entry_by(conn.identity, "chat.transfer", conversation_id=f.conversation_id,
                                    details=details))  # fmt: skip
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id))


async def chat_resolve(hub: Hub, conn: Connection, f: p.ChatResolve) -> None:
    tags = list(dict.fromkeys(t.strip().lower() for t in f.tags if t.strip()))
    final, applied = await hub.chat.resolve(conn.identity, f.conversation_id, f.outcome, tags)
    # an end that came first (the user's close, a repeated resolve): on record as such
    details = (
        {"outcome": f.outcome, "tags": tags} if applied else {"outcome": "already_ended", **final}
    )
    await hub.audit.record(entry_by(conn.identity, "chat.resolve", conversation_id=f.conversation_id,
                                    details=details))  # fmt: skip
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, **final))


async def chat_take(hub: Hub, conn: Connection, f: p.ChatTake) -> None:
    conv, left = await hub.chat.take(conn.identity, f.conversation_id)
    details = {"priority": conv["priority"], "from_agent": left}
    await hub.audit.record(entry_by(conn.identity, "chat.take", conversation_id=f.conversation_id,
                                    subject_user_id=conv["user_id"], details=details))  # fmt: skip
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, agent_id=conv["agent_id"]))


async def chat_assign(hub: Hub, conn: Connection, f: p.ChatAssign) -> None:
    conv = await hub.chat.assign(conn.identity, f.conversation_id, f.agent_id)
    details = {"agent_id": f.agent_id, "priority": conv["priority"]}
    await hub.audit.record(entry_by(conn.identity, "chat.assign", conversation_id=f.conversation_id,
                                    subject_user_id=conv["user_id"], details=details))  # fmt: skip
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, agent_id=conv["agent_id"]))


async def chat_takeover(hub: Hub, conn: Connection, f: p.ChatTakeover) -> None:
    conv, left = await hub.chat.takeover(conn.identity, f.conversation_id)
    await hub.audit.record(entry_by(conn.identity, "chat.takeover", conversation_id=f.conversation_id,
                                    subject_user_id=conv["user_id"],
                                    details={"from_agent": left}))  # fmt: skip
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, agent_id=conv["agent_id"],
                              from_agent=left))  # fmt: skip


async def chat_watch(hub: Hub, conn: Connection, f: p.ChatWatch) -> None:
    if f.watch:
        snapshot = await hub.watch.start(conn, f.conversation_id)
        await hub.audit.record(entry_by(conn.identity, "chat.watch",
                                        conversation_id=f.conversation_id,
                                        subject_user_id=snapshot["user"]["id"]))  # fmt: skip
        conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, watching=True))
        conn.send_frame(snapshot)
    else:
        await hub.watch.stop(conn, f.conversation_id)
        conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, watching=False))


async def feedback_tag(hub: Hub, conn: Connection, f: p.FeedbackTag) -> None:
    item, new = await hub.feedback.tag(conn.identity, f.conversation_id, f.message_id, f.note)
    await hub.audit.record(tag_entry(conn.identity, f.conversation_id, item, new))
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, **tag_answer(item, new)))


async def verify_request(hub: Hub, conn: Connection, f: p.VerifyRequest) -> None:
    challenge = await hub.verification.request(conn.identity, f.conversation_id)
    fields = {k: v for k, v in challenge.items() if k != "type"}
    conn.send_frame(ack_frame(f.id, **fields))


async def verify_submit(hub: Hub, conn: Connection, f: p.VerifySubmit) -> None:
    # every device of the user (this one too) and the agent get `verify.result`
    result = await hub.verification.submit(conn.identity, f.challenge_id, f.code)
    fields = {k: v for k, v in result.items() if k != "type"}
    conn.send_frame(ack_frame(f.id, **fields))


async def queue_get(hub: Hub, conn: Connection, f: p.QueueWatch) -> None:
    async with hub.store.acquire() as db:
        queue = await queue_store.queue_snapshot(db)
    frame = {"type": "queue.snapshot", "queue": queue}
    if f.id is not None:
        frame["id"] = f.id
    conn.send_frame(frame)


async def push_register(hub: Hub, conn: Connection, f: p.PushRegister) -> None:
    registration = PushRegistration(kind=f.kind, subscription=f.subscription)
    view = await hub.push_out.register(conn.identity, registration)
    conn.send_frame(ack_frame(f.id, subscription_id=view["subscription_id"]))


async def push_unregister(hub: Hub, conn: Connection, f: p.PushUnregister) -> None:
    removed = await hub.push_out.unregister(conn.identity, endpoint=f.endpoint)
    conn.send_frame(ack_frame(f.id, removed=removed))


# Frames a socket may have several of in flight at once: handler(hub, conn, frame, before),
# which answers only after `before` (the previous one of these, or None) is done.
PIPELINED: dict[str, Callable[..., Awaitable[Any]]] = {"chat.send": chat_send_after}

TABLE: dict[str, tuple[Handler, frozenset[str]]] = {
    "ping": (ping, ANY),
    "auth.refresh": (auth_refresh, ANY),
    "chat.open": (chat_open, USER),
    "chat.escalate": (chat_escalate, USER),
    "chat.send": (chat_send, ANY),
    "typing": (typing, ANY),
    "read": (read, ANY),
    "chat.close": (chat_close, USER),
    "chat.rate": (chat_rate, USER),
    "chat.leave_message": (chat_leave_message, USER),
    "notifications.ack": (notifications_ack, USER),
    "user.lang": (user_lang, USER),
    "agent.status": (agent_status, STAFF),
    "chat.note": (chat_note, STAFF),
    "chat.transfer": (chat_transfer, STAFF),
    "chat.resolve": (chat_resolve, STAFF),
    "chat.take": (chat_take, STAFF),
    "chat.assign": (chat_assign, SUPERVISOR),
    "chat.takeover": (chat_takeover, SUPERVISOR),
    "chat.watch": (chat_watch, SUPERVISOR),
    "feedback.tag": (feedback_tag, STAFF),
    "queue.get": (queue_get, STAFF),
    "verify.request": (verify_request, STAFF),
    "verify.submit": (verify_submit, USER),
    "push.register": (push_register, USER),
    "push.unregister": (push_unregister, USER),
}
