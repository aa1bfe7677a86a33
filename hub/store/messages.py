"""Chat messages written through the group writer: what a write asks for, what the store
returns, who may write into a conversation, and the set-based SQL of one batch.

A batch is one statement: sequence numbers are assigned while it holds the row lock of
the conversation counter, so two nodes can never hand out the same number. Rows are
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
    (conversation, sender, client_msg_id). One statement (`_WRITE_MESSAGES`): atomic on
    its own, so it needs no transaction around it (it may run inside one)."""
    if not ops:
        return []
    ids = [new_id() for _ in ops]
    now = datetime.now(UTC)
    files = [(i, pos, a) for i, op in enumerate(ops) for pos, a in enumerate(op.attachments)]
    rows = await conn.fetch(
        _WRITE_MESSAGES,
        ids,
        [o.conversation_id for o in ops],
        [o.sender_role for o in ops],
        [o.sender_id for o in ops],
        [o.sender_name for o in ops],
        [o.text for o in ops],
        [o.client_msg_id for o in ops],
        [orjson.dumps(o.texts).decode() if o.texts else None for o in ops],
        [o.system for o in ops],
        list(range(len(ops))),
        now,
        [i for i, _, _ in files],
        [p for _, p, _ in files],
        [a for _, _, a in files],
    )
    results: list[Any] = []
    in_batch: dict[tuple, StoredMessage] = {}
    for op, nid, r in zip(ops, ids, sorted(rows, key=lambda r: r["ord"]), strict=True):
        conv = None if r["user_id"] is None else r
        key = (op.conversation_id, op.sender_id, op.client_msg_id)
        if r["e_id"] is not None:  # sent before: the original, as it was stored
            results.append(
                StoredMessage(
                    r["e_id"], op.conversation_id, r["e_seq"], r["e_role"], op.sender_id,
                    r["e_name"], r["e_text"], op.client_msg_id, r["e_ts"],
                    conv["user_id"] if conv else "", conv["agent_id"] if conv else None, True,
                    attachments=tuple(r["refs"] or ()), texts=r["e_texts"], system=r["e_system"],
                )
            )  # fmt: skip
            continue
        if r["seq"] is not None:
            assert conv is not None
            msg = StoredMessage(
                nid, op.conversation_id, r["seq"], op.sender_role, op.sender_id,
                op.sender_name, op.text, op.client_msg_id, now, conv["user_id"],
                conv["agent_id"], False, conv["status"], tuple(r["refs"] or ()),
                dict(op.texts) if op.texts else None, op.system,
            )  # fmt: skip
            if op.client_msg_id is not None:
                in_batch[key] = msg
            results.append(msg)
            continue
        if op.client_msg_id is not None and key in in_batch:  # twice in this batch
            results.append(StoredMessage(**{**_as_dict(in_batch[key]), "duplicate": True}))
            continue
        refusal = may_write(op.sender_role, op.sender_id, conv)
        if refusal is None and r["bad_file"] is not None:
            refusal = NotFound(f"no such attachment in this conversation: {r['bad_file']}")
        if refusal is None:  # the statement's `allowed` and hub.rules.access disagree
            raise RuntimeError(f"message refused by the store but not by the rules: {op}")
        results.append(refusal)
    return results


# One statement, one round trip per batch (no BEGIN and COMMIT around it):
# * lock the batch's conversations in id order (two batches never deadlock) and read
#   them as they are now (a row another writer changed meanwhile is read anew);
# * `earlier`: resends of a client_msg_id already stored (the original is returned);
# * `allowed`: hub.rules.access.may_write in SQL (kept equal by a test over every case),
#   and every named file uploaded to that conversation by that sender;
# * the first of each client_msg_id in the batch, numbered from the conversation's
#   counter in batch order; the counter, the last activity and the first response move;
#   the messages and their files are inserted.
# Resends stored by another node after this statement's snapshot make the insert fail on
# the idempotency index: the writer retries the batch, which then finds them.
_WRITE_MESSAGES = f"""
with ops as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::int[])
    as t(id, c, role, sid, sname, body, cmid, texts, sys, ord)
),
locked as (
  select id, user_id, agent_id, status, last_seq from conversations
  where id = any($2::text[]) order by id for update
),
earlier as (
  select o.ord, m.id, m.seq, m.sender_role, m.sender_name, m.text, m.created_at, m.texts,
         m.system
  from ops o join messages m
    on m.conversation_id = o.c and m.sender_id = o.sid and m.client_msg_id = o.cmid
),
files as (
  select f.ord, f.pos, f.aid,
         a.id is null or a.conversation_id <> o.c or a.uploader_id <> o.sid as bad,
         case when a.id is not null then {attachment_store.REF_SQL} end as ref
  from unnest($12::int[], $13::int[], $14::text[]) f(ord, pos, aid)
  join ops o on o.ord = f.ord
  left join attachments a on a.id = f.aid
),
allowed as (
  select o.*, l.last_seq from ops o join locked l on l.id = o.c
  where not exists (select 1 from earlier e where e.ord = o.ord)
    and case o.role
          when 'user' then l.user_id = o.sid and l.status in {OPEN_STATUSES!r}
          when 'agent' then l.agent_id is not distinct from o.sid and l.status = 'assigned'
          when 'bot' then l.status in {OPEN_STATUSES!r}
          when 'system' then true
          else false
        end
    and not exists (select 1 from files f where f.ord = o.ord and f.bad)
),
fresh as (
  (select * from allowed where cmid is null)
  union all
  (select distinct on (c, sid, cmid) * from allowed where cmid is not null
   order by c, sid, cmid, ord)
),
numbered as (
  select f.*, f.last_seq + row_number() over (partition by f.c order by f.ord) as seq
  from fresh f
),
counters as (
  select c, max(seq) as seq, bool_or(role = 'agent') as agent from numbered group by c
),
bumped as (
  update conversations v set last_seq = n.seq, last_activity_at = now(),
    first_response_at = case when n.agent and v.first_response_at is null
                        then now() else v.first_response_at end
  from counters n where v.id = n.c and v.id = any($2::text[])  -- by the key, on any table size
),
inserted as (
  insert into messages (id, conversation_id, seq, sender_role, sender_id, sender_name,
                        text, client_msg_id, created_at, texts, system)
  select id, c, seq, role, sid, sname, body, cmid, $11, texts::jsonb, sys from numbered
),
linked as (
  insert into message_attachments (message_id, position, attachment_id)
  select n.id, f.pos, f.aid from numbered n join files f on f.ord = n.ord
)
select o.ord, l.user_id, l.agent_id, l.status, n.seq,
  e.id as e_id, e.seq as e_seq, e.sender_role as e_role, e.sender_name as e_name,
  e.text as e_text, e.created_at as e_ts, e.texts as e_texts, e.system as e_system,
  case
    when e.id is not null then
      (select jsonb_agg({attachment_store.REF_SQL} order by ma.position)
       from message_attachments ma join attachments a on a.id = ma.attachment_id
       where ma.message_id = e.id)
    when n.seq is not null then
      (select jsonb_agg(f.ref order by f.pos) from files f where f.ord = o.ord)
  end as refs,
  (select f.aid from files f where f.ord = o.ord and f.bad order by f.pos limit 1) as bad_file
from ops o
left join locked l on l.id = o.c
left join numbered n on n.ord = o.ord
left join earlier e on e.ord = o.ord
"""


def _as_dict(msg: StoredMessage) -> dict:
    return {name: getattr(msg, name) for name in StoredMessage.__slots__}
