"""Conversation search for staff: by message text (any script), by customer id or name,
and by transaction id (the customer's payment notifications carry it)."""

from __future__ import annotations

import asyncpg

MAX_RESULTS = 100


def like_pattern(query: str) -> str:
    """`%query%` with the LIKE wildcards of the query taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def conversations(
    db: asyncpg.Connection, query: str, *, agent_id: str | None, limit: int
) -> list[asyncpg.Record]:
    """Conversations matching `query`, newest first, each with how it matched (`message`,
    `customer`, `transaction`) and, for a message, its newest matching text and seq.
    `agent_id` None: every conversation (supervisors); else those the agent held, and
    every chat of the customers it serves now (what the access rule lets it read)."""
    return await db.fetch(_SEARCH, like_pattern(query), agent_id, query, min(limit, MAX_RESULTS))


_SEARCH = """
with visible as (
    select c.* from conversations c
    where $2::text is null
       or c.agent_id = $2
       or exists (select 1 from conversation_agents ca
                  where ca.conversation_id = c.id and ca.agent_id = $2)
       or c.user_id in (select user_id from conversations
                        where agent_id = $2 and status = 'assigned')
),
by_text as (
    select distinct on (m.conversation_id) m.conversation_id, m.text, m.seq, 1 as rank
    from messages m join visible v on v.id = m.conversation_id
    where m.text ilike $1 and m.sender_role <> 'system'
    order by m.conversation_id, m.seq desc
),
by_customer as (
    select v.id as conversation_id, null::text as text, null::bigint as seq, 2 as rank
    from visible v left join users u on u.id = v.user_id
    where v.user_id = $3 or u.name ilike $1
),
by_transaction as (
    select v.id, null::text, null::bigint, 3
    from visible v
    where exists (select 1 from notifications n where n.user_id = v.user_id
                  and n.data->>'transaction_id' = $3)
),
best as (
    select distinct on (conversation_id) * from (
        select * from by_text union all select * from by_customer
        union all select * from by_transaction
    ) h order by conversation_id, rank
)
select v.id as conversation_id, v.user_id, u.name as user_name, v.status, v.topic,
       v.created_at, v.agent_id, b.text, b.seq,
       case b.rank when 1 then 'message' when 2 then 'customer' else 'transaction' end
           as matched
from best b join visible v on v.id = b.conversation_id
left join users u on u.id = v.user_id
order by v.created_at desc
limit $4
"""
