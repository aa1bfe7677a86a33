"""New chats, stored many at a time.

Thousands of customers may open a chat in the same second (an outage, a campaign).
One at a time, each open takes a pooled connection, sets or reads the customer's
language, inserts, and gives the connection back (a reset, one more round trip). Here a
group writer (hub.store.writer) stores whatever opened while the last statement ran in
one statement: the languages the customers chose, and the chats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


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


# One statement: no BEGIN and COMMIT round trips. A customer's language is what the last
# open of the batch that names one says; an open that names none takes the one an earlier
# open of the same batch named, else the stored one. `clock_timestamp()`, not `now()`:
# the chats of a batch are enqueued in the order they came, not all at one instant.
OPEN_SQL = """
with v as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::float8[]) with ordinality
    as v(id, user_id, topic, priority, status, lang, channel, window_s, n)
), chosen as (
  update users u set lang = l.lang
  from (select distinct on (user_id) user_id, lang from v where lang is not null
        order by user_id, n desc) l
  where u.id = l.user_id
  returning u.id
)
insert into conversations (id, user_id, topic, priority, status, lang, enqueued_at,
                           previous_agent_id, channel)
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
  v.channel
from v order by v.n
returning *
"""


async def open_chats(db: asyncpg.Connection, opens: list[ChatOpen]) -> list[Any]:
    """Store `opens`; the stored rows, in the same order. When the batch breaks a
    constraint (a customer the hub does not know) each open is stored on its own, and the
    one that breaks it gets its error in place of a row: one bad open fails alone."""
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
    rows = await db.fetch(
        OPEN_SQL,
        [o.conversation_id for o in opens],
        [o.user_id for o in opens],
        [o.topic for o in opens],
        [o.priority for o in opens],
        [o.status for o in opens],
        [o.lang for o in opens],
        [o.channel for o in opens],
        [float(o.returning_window_s) for o in opens],
    )
    by_id = {r["id"]: r for r in rows}
    return [by_id[o.conversation_id] for o in opens]
