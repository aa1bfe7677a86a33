"""Chat messages written through the group writer: what a write asks for, what the store
returns, who may write into a conversation, and the set-based SQL of one batch.

Sequence numbers are assigned inside the batch's transaction while it holds the row lock
of the conversation counter, so two nodes can never hand out the same number. Rows are
locked in id order, so batches never deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from hub.rules.access import may_write
from hub.store import attachments as attachment_store
from hub.store.ids import new_id
from supporthub_core.errors import NotFound

OPEN_STATUSES = ("bot", "queued", "assigned")


@dataclass(slots=True)
class MessageWrite:
    conversation_id: str
    sender_role: str  # user, agent, bot, system
    sender_id: str
    sender_name: str
    text: str
    client_msg_id: str | None = None
    attachments: tuple[str, ...] = ()  # attachment ids the sender uploaded to this chat
    # A text the hub wrote (system messages), in every language: {"zh": ..., "en": ...};
    # each user device reads the one of its language (`text` is the chat's).
    texts: Mapping[str, str] | None = None
    system: dict | None = None  # a system message's {kind, params}


@dataclass(slots=True)
class StoredMessage:
    message_id: str
    conversation_id: str
    seq: int
    sender_role: str
    sender_id: str
    sender_name: str
    text: str
    client_msg_id: str | None
    ts: datetime
    user_id: str
    agent_id: str | None
    duplicate: bool = False
    conversation_status: str = ""
    # references (hub.store.attachments.ref) whose links the caller signs
    # (hub.attachments.links.AttachmentLinks.frame) before the frame goes out
    attachments: tuple[dict, ...] = ()
    texts: dict[str, str] | None = None  # a system text in every language
    system: dict | None = None  # a system message's {kind, params}

    def frame(self) -> dict:
        """The `message` frame clients receive (attachments still unsigned: a fresh copy
        each call, for the caller to sign); a system text carries `texts` (every language),
        from which each user device takes its own."""
        frame: dict[str, Any] = {
            "type": "message",
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "message_id": self.message_id,
            "sender": {"role": self.sender_role, "id": self.sender_id, "name": self.sender_name},
            "text": self.text,
            "ts": self.ts.isoformat(),
        }
        if self.client_msg_id is not None:
            frame["client_msg_id"] = self.client_msg_id
        if self.attachments:
            frame["attachments"] = [dict(ref) for ref in self.attachments]
        if self.texts:
            frame["texts"] = dict(self.texts)
        if self.system is not None:
            frame["system"] = self.system
        return frame


async def write_messages(conn: asyncpg.Connection, ops: list[MessageWrite]) -> list[Any]:
    """Insert chat messages with the next seq of their conversation; idempotent on
    (conversation, sender, client_msg_id). Must run inside a transaction."""
    conv_ids = sorted({op.conversation_id for op in ops})
    convs = {
        r["id"]: r
        for r in await conn.fetch(
            "select id, user_id, agent_id, status, last_seq from conversations"
            " where id = any($1::text[]) order by id for update",
            conv_ids,
        )
    }
    keyed = [op for op in ops if op.client_msg_id is not None]
    existing: dict[tuple, asyncpg.Record] = {}
    if keyed:
        rows = await conn.fetch(
            "select m.* from messages m join unnest($1::text[], $2::text[], $3::text[])"
            " k(c, s, k) on m.conversation_id = k.c and m.sender_id = k.s and m.client_msg_id = k.k",
            [o.conversation_id for o in keyed],
            [o.sender_id for o in keyed],
            [o.client_msg_id for o in keyed],
        )
        existing = {(r["conversation_id"], r["sender_id"], r["client_msg_id"]): r for r in rows}
    files = await _attachments(conn, ops)
    earlier = {}
    if files is not None and existing:
        earlier = await attachment_store.of_messages(conn, [r["id"] for r in existing.values()])

    now = datetime.now(UTC)
    last_seq = {cid: r["last_seq"] for cid, r in convs.items()}
    first_agent_reply: set[str] = set()
    results: list[Any] = []
    fresh: list[StoredMessage] = []
    in_batch: dict[tuple, StoredMessage] = {}
    for op in ops:
        conv = convs.get(op.conversation_id)
        key = (op.conversation_id, op.sender_id, op.client_msg_id)
        if op.client_msg_id is not None and key in existing:
            r = existing[key]
            results.append(
                StoredMessage(
                    r["id"], r["conversation_id"], r["seq"], r["sender_role"], r["sender_id"],
                    r["sender_name"], r["text"], r["client_msg_id"], r["created_at"],
                    conv["user_id"] if conv else "", conv["agent_id"] if conv else None, True,
                    attachments=tuple(earlier.get(r["id"], ())), texts=r["texts"], system=r["system"],
                )
            )  # fmt: skip
            continue
        if op.client_msg_id is not None and key in in_batch:
            dup = in_batch[key]
            results.append(StoredMessage(**{**_as_dict(dup), "duplicate": True}))
            continue
        refusal = may_write(op.sender_role, op.sender_id, conv)
        refs: tuple[dict, ...] = ()
        if refusal is None and op.attachments:
            refs, refusal = _attached(op, files or {})
        if refusal is not None:
            results.append(refusal)
            continue
        assert conv is not None  # may_write refuses a conversation that does not exist
        last_seq[op.conversation_id] += 1
        msg = StoredMessage(
            new_id(), op.conversation_id, last_seq[op.conversation_id], op.sender_role,
            op.sender_id, op.sender_name, op.text, op.client_msg_id, now,
            conv["user_id"], conv["agent_id"], False, conv["status"], refs,
            dict(op.texts) if op.texts else None, op.system,
        )  # fmt: skip
        if op.sender_role == "agent":
            first_agent_reply.add(op.conversation_id)
        if op.client_msg_id is not None:
            in_batch[key] = msg
        fresh.append(msg)
        results.append(msg)

    if fresh:
        await conn.execute(
            "insert into messages (id, conversation_id, seq, sender_role, sender_id, sender_name,"
            " text, client_msg_id, created_at, texts, system)"
            " select i, c, s, r, si, sn, t, cm, ca, tx::jsonb, sy from unnest($1::text[],"
            " $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],"
            " $8::text[], $9::timestamptz[], $10::text[], $11::jsonb[])"
            " as u(i, c, s, r, si, sn, t, cm, ca, tx, sy)",
            [m.message_id for m in fresh],
            [m.conversation_id for m in fresh],
            [m.seq for m in fresh],
            [m.sender_role for m in fresh],
            [m.sender_id for m in fresh],
            [m.sender_name for m in fresh],
            [m.text for m in fresh],
            [m.client_msg_id for m in fresh],
            [m.ts for m in fresh],
            [orjson.dumps(m.texts).decode() if m.texts else None for m in fresh],
            [m.system for m in fresh],
        )
        links = [
            (m.message_id, position, ref["attachment_id"])
            for m in fresh
            for position, ref in enumerate(m.attachments)
        ]
        if links:  # same transaction as the messages: a message never lacks its files
            await attachment_store.link(conn, links)
        touched = sorted({m.conversation_id for m in fresh})
        await conn.execute(
            "update conversations c set last_seq = v.seq, last_activity_at = now(),"
            " first_response_at = case when v.agent and c.first_response_at is null"
            " then now() else c.first_response_at end"
            " from unnest($1::text[], $2::bigint[], $3::bool[]) v(id, seq, agent) where c.id = v.id",
            touched,
            [last_seq[c] for c in touched],
            [c in first_agent_reply for c in touched],
        )
    return results


async def _attachments(conn: asyncpg.Connection, ops: list[MessageWrite]) -> dict | None:
    """id -> row of every attachment the batch names; None when it names none."""
    wanted = {a for op in ops for a in op.attachments}
    if not wanted:
        return None
    return {r["id"]: r for r in await attachment_store.for_messages(conn, sorted(wanted))}


def _attached(op: MessageWrite, files: dict) -> tuple[tuple[dict, ...], NotFound | None]:
    """The references of the files `op` names, or the refusal: each must have been
    uploaded to this conversation by this sender (an upload no message carries yet is
    seen by its uploader alone)."""
    refs = []
    for attachment_id in op.attachments:
        row = files.get(attachment_id)
        if (
            row is None
            or row["conversation_id"] != op.conversation_id
            or row["uploader_id"] != op.sender_id
        ):
            return (), NotFound(f"no such attachment in this conversation: {attachment_id}")
        refs.append(attachment_store.ref(row))
    return tuple(refs), None


def _as_dict(msg: StoredMessage) -> dict:
    return {name: getattr(msg, name) for name in StoredMessage.__slots__}
