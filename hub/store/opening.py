"""New chats, stored many at a time, each with its opening text.

Thousands of customers may open a chat in the same second (an outage, a campaign).
One at a time, each open takes a pooled connection, sets or reads the customer's
language, inserts, and gives the connection back (a reset, one more round trip). Here a
group writer (hub.store.writer) stores whatever opened while the last statement ran in
one statement: the languages the customers chose, the chats, and their opening texts as
message 1 (so a chat the store has is never without the words it was opened with, even
when the node that stored it never heard back). Each new `bot` chat is marked as having
its follow-up (the bot's first turn) still to do, taken on now by the node that opened it
(`open_follow_up_at`, hub.store.conversations.take_open_follow_up); a queued chat needs
no more: every routing pass, the sweep's too, places it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from hub.store.ids import new_id
from supporthub_core.errors import Unavailable


@dataclass(frozen=True, slots=True)
class ChatOpen:
    """A chat to store, `bot` or `queued` (enqueued now). `lang` None: the customer's
    language as stored (else `zh`); a language given becomes the customer's too. The
    agent who last served the customer within `returning_window_s` seconds is the chat's
    preferred agent (as `conversations.create`)."""

    conversation_id: str
    user_id: str
    topic: str
    priority: str
    status: str
    lang: str | None
    channel: str | None
    returning_window_s: float
    # opens of one customer with the same key are one chat while it is open
    # (hub.rules.opening); None: always a chat of its own
    open_key: str | None = None
    # the opening text as stored (masked), message 1 of the chat, by `sender_name`
    text: str | None = None
    sender_name: str = ""


# One statement: no BEGIN and COMMIT round trips. A customer's language is what the last
# open of the batch that names one says; an open that names none takes the one an earlier
# open of the same batch named, else the stored one. `clock_timestamp()`, not `now()`:
# the chats of a batch are enqueued in the order they came, not all at one instant. The
# opening text of each chat stored is its message 1; an open that stored nothing (its
# customer's chat with that key is open) writes no message either.
OPEN_SQL = """
with v as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::float8[], $9::text[], $10::text[],
                       $11::text[], $12::text[]) with ordinality
    as v(id, user_id, topic, priority, status, lang, channel, window_s, open_key, body,
         sname, mid, n)
), chosen as (
  update users u set lang = l.lang
  from (select distinct on (user_id) user_id, lang from v where lang is not null
        order by user_id, n desc) l
  where u.id = l.user_id
  returning u.id
), opened as (
  insert into conversations (id, user_id, topic, priority, status, lang, enqueued_at,
                             previous_agent_id, channel, open_key, last_seq,
                             open_follow_up_at)
  select v.id, v.user_id, v.topic, v.priority, v.status,
    coalesce(v.lang,
             (select e.lang from v e where e.user_id = v.user_id and e.lang is not null
              and e.n < v.n order by e.n desc limit 1),
             (select u.lang from users u where u.id = v.user_id),
             'zh'),
    case when v.status = 'queued' then clock_timestamp() end,
    (select ca.agent_id from conversation_agents ca join conversations c
       on c.id = ca.conversation_id where c.user_id = v.user_id
       and ca.assigned_at > now() - make_interval(secs => v.window_s)
       order by ca.assigned_at desc limit 1),
    v.channel, v.open_key, case when v.body is null then 0 else 1 end,
    case when v.status = 'bot' then now() end
  from v order by v.n
  on conflict (user_id, open_key)
    where open_key is not null and status in ('bot', 'queued', 'assigned') do nothing
  returning *
), first as (
  insert into messages (id, conversation_id, seq, sender_role, sender_id, sender_name,
                        text, created_at)
  select v.mid, o.id, 1, 'user', o.user_id, v.sname, v.body, o.created_at
  from opened o join v on v.id = o.id where v.body is not null
  returning id, conversation_id, created_at
)
select o.*, f.id as first_message_id, f.created_at as first_message_at
from opened o left join first f on f.conversation_id = o.id
"""

# The customers' open chats with the keys of the opens that stored none.
OPEN_ALREADY_SQL = """
select c.* from unnest($1::text[], $2::text[]) k(user_id, open_key)
join conversations c on c.user_id = k.user_id and c.open_key = k.open_key
  and c.status in ('bot', 'queued', 'assigned')
"""


async def open_chats(db: asyncpg.Connection, opens: list[ChatOpen]) -> list[Any]:
    """Store `opens`; the stored rows, in the same order, a chat stored with its opening
    text carrying its message 1 as `first_message_id` and `first_message_at`. An open
    whose customer has an open chat with its `open_key` already (stored by an earlier
    open, of this batch or another, on any node) stores nothing and yields that chat: its
    row's id is not the open's `conversation_id`. When the batch breaks a constraint (a
    customer the hub does not know) each open is stored on its own, and the one that
    breaks it gets its error in place of a row: one bad open fails alone."""
    try:
        return await _insert(db, opens)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
        if len(opens) == 1:
            raise
    results: list[Any] = []
    for one in opens:
        try:
            results.extend(await _insert(db, [one]))
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            results.append(exc)
    return results


async def _insert(db: asyncpg.Connection, opens: list[ChatOpen]) -> list[asyncpg.Record]:
    stored: dict[str, asyncpg.Record] = {}  # an open's own chat, by its id
    already: dict[tuple[str, str | None], asyncpg.Record] = {}  # (customer, key) -> the open chat
    todo = opens
    # again at most twice: the open chat that made an open store nothing may end before
    # it is read, and that open then stores its own
    for _ in range(3):
        for row in await _store(db, todo):
            stored[row["id"]] = row
            if row["open_key"] is not None:
                already[(row["user_id"], row["open_key"])] = row
        todo = [o for o in todo if o.conversation_id not in stored and _key(o) not in already]
        if not todo:
            break
        for row in await db.fetch(
            OPEN_ALREADY_SQL, [o.user_id for o in todo], [o.open_key for o in todo]
        ):
            already[(row["user_id"], row["open_key"])] = row
        todo = [o for o in todo if _key(o) not in already]
        if not todo:
            break
    if todo:
        raise Unavailable("chats opened and ended meanwhile, try again")
    return [stored.get(o.conversation_id) or already[_key(o)] for o in opens]


def _key(o: ChatOpen) -> tuple[str, str | None]:
    return (o.user_id, o.open_key)


async def _store(db: asyncpg.Connection, opens: list[ChatOpen]) -> list[asyncpg.Record]:
    return await db.fetch(
        OPEN_SQL,
        [o.conversation_id for o in opens],
        [o.user_id for o in opens],
        [o.topic for o in opens],
        [o.priority for o in opens],
        [o.status for o in opens],
        [o.lang for o in opens],
        [o.channel for o in opens],
        [float(o.returning_window_s) for o in opens],
        [o.open_key for o in opens],
        [o.text for o in opens],
        [o.sender_name for o in opens],
        [new_id() for _ in opens],
    )
