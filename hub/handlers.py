"""The dispatch table of the WebSocket edge: frame type -> (handler, roles allowed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import protocol as p
from hub.bot import Bot
from hub.chat import Chat
from hub.connection import Connection
from hub.notify import Notifier
from hub.protocol import ack_frame
from hub.store import notifications as notif_store
from hub.sweeper import Sweeper

if TYPE_CHECKING:
    from hub.node import Node

USER = frozenset({"user"})
STAFF = frozenset({"agent", "supervisor"})
ANY = USER | STAFF


def chat(node: Node) -> Chat:
    return node.services["chat"]


async def ping(node: Node, conn: Connection, f: p.Ping) -> None:
    frame = {"type": "pong"}
    if f.id is not None:
        frame["id"] = f.id
    conn.send_frame(frame)


async def chat_open(node: Node, conn: Connection, f: p.ChatOpen) -> None:
    await chat(node).open(conn, f.topic, f.text, f.handoff, f.lang, f.id)


async def chat_escalate(node: Node, conn: Connection, f: p.ChatEscalate) -> None:
    status = await chat(node).escalate(conn.claims, f.conversation_id)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, status=status))


async def chat_send(node: Node, conn: Connection, f: p.ChatSend) -> None:
    msg = await chat(node).send(conn.claims, f.conversation_id, f.client_msg_id, f.text)
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
    conn.push(msg.frame(), conn.encode(msg.frame()))


async def typing(node: Node, conn: Connection, f: p.Typing) -> None:
    await chat(node).typing(conn.claims, f.conversation_id, f.state)


async def read(node: Node, conn: Connection, f: p.Read) -> None:
    await chat(node).read(conn.claims, f.conversation_id, f.seq)


async def chat_close(node: Node, conn: Connection, f: p.ChatClose) -> None:
    await chat(node).close(conn.claims, f.conversation_id)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id))


async def chat_rate(node: Node, conn: Connection, f: p.ChatRate) -> None:
    await chat(node).rate(conn.claims, f.conversation_id, f.score, f.comment)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id))


async def notifications_ack(node: Node, conn: Connection, f: p.NotificationsAck) -> None:
    async with node.pool.acquire() as db:
        acked = await notif_store.ack(db, conn.claims.sub, f.up_to)
    conn.send_frame(ack_frame(f.id, up_to=acked))
    # the user's other devices clear their unread count too
    await node.to_user(conn.claims.sub, {"type": "notifications.acked", "up_to": acked})


async def user_lang(node: Node, conn: Connection, f: p.UserLang) -> None:
    user_id = conn.claims.sub
    async with node.pool.acquire() as db, db.transaction():
        await db.execute("update users set lang = $2 where id = $1", user_id, f.lang)
        convs = await db.fetch(
            "update conversations set lang = $2 where user_id = $1"
            " and status = any('{bot,queued,assigned}'::text[]) returning id, agent_id",
            user_id, f.lang,
        )  # fmt: skip
    if "notifier" in node.services:
        node.services["notifier"].forget_lang(user_id)
    for conv in convs:
        if conv["agent_id"]:
            await node.to_agent(conv["agent_id"], {"type": "customer.lang", "user_id": user_id,
                                                   "conversation_id": conv["id"], "lang": f.lang})  # fmt: skip
    conn.send_frame(ack_frame(f.id, lang=f.lang))


async def agent_status(node: Node, conn: Connection, f: p.AgentStatus) -> None:
    state = await chat(node).set_status(conn.claims, f.status)
    reply = dict(state)
    if f.id is not None:
        reply["id"] = f.id
    conn.send_frame(reply)


async def chat_note(node: Node, conn: Connection, f: p.ChatNote) -> None:
    note = await chat(node).note(conn.claims, f.conversation_id, f.text)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id, note_id=note["note_id"]))


async def chat_transfer(node: Node, conn: Connection, f: p.ChatTransfer) -> None:
    await chat(node).transfer(conn.claims, f.conversation_id, f.to_agent, f.to_topic)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id))


async def chat_resolve(node: Node, conn: Connection, f: p.ChatResolve) -> None:
    await chat(node).resolve(conn.claims, f.conversation_id)
    conn.send_frame(ack_frame(f.id, conversation_id=f.conversation_id))


async def queue_get(node: Node, conn: Connection, f: p.QueueWatch) -> None:
    from hub.assigner import queue_snapshot

    async with node.pool.acquire() as db:
        queue = await queue_snapshot(db)
    frame = {"type": "queue.snapshot", "queue": queue}
    if f.id is not None:
        frame["id"] = f.id
    conn.send_frame(frame)


TABLE = {
    "ping": (ping, ANY),
    "chat.open": (chat_open, USER),
    "chat.escalate": (chat_escalate, USER),
    "chat.send": (chat_send, ANY),
    "typing": (typing, ANY),
    "read": (read, ANY),
    "chat.close": (chat_close, USER),
    "chat.rate": (chat_rate, USER),
    "notifications.ack": (notifications_ack, USER),
    "user.lang": (user_lang, USER),
    "agent.status": (agent_status, STAFF),
    "chat.note": (chat_note, STAFF),
    "chat.transfer": (chat_transfer, STAFF),
    "chat.resolve": (chat_resolve, STAFF),
    "queue.get": (queue_get, STAFF),
}


async def install(node: Node) -> None:
    """Wire the use cases into a started node."""
    service = Chat(node)
    node.services["chat"] = service
    node.services["resume_agent"] = service.resume_agent

    async def on_broadcast(frame: dict) -> None:
        users = node.registry.local_users()
        if not users:
            return
        async with node.pool.acquire() as db:
            copies = await notif_store.broadcast_copies(db, int(frame["broadcast_id"]), users)
        for user_id, notification in copies:
            node.registry.fan_out(node.registry.of_user(user_id), notification)

    node.services["node:broadcast"] = on_broadcast

    node.services["bot"] = Bot(node)
    notifier = Notifier(node, events_key=node.events_key)
    node.services["notifier"] = notifier
    await notifier.start()
    Sweeper(node).start()
