"""The notifications' write keeps looking up event ids and open chats through indexes
however the tables grow after its plan was cached.

asyncpg prepares the write once per connection, and after five executions PostgreSQL may
keep a generic plan for it, made with the tables' sizes at that moment. Made while
`notifications` and `conversations` were small, the plan read both tables whole on every
batch, and kept doing so as they grew, until an ANALYZE replaced it. The write's statement
is checked alone and inside a transaction (a savepoint), with the users' heads loaded
from the store (`notif_heads`) before it."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from hub.store.notifications import NotificationWrite, write_notifications
from supporthub_core.db import init_connection

TABLES = ("notifications", "conversations")


def _batch(rows: int) -> list[NotificationWrite]:
    return [
        NotificationWrite(f"u-{i}", "transaction.status", "t", "b", {}, f"ev-{uuid.uuid4().hex}")
        for i in range(rows)
    ]


async def _on_generic_plans(conn: asyncpg.Connection) -> int:
    """How many of the write's statements run on a cached generic plan."""
    return await conn.fetchval(
        "select count(*) from pg_prepared_statements"
        " where statement like '%insert into notifications%' and generic_plans > 0"
        " and statement not like '%pg_prepared_statements%'"
    )


async def _grow(conn: asyncpg.Connection, rows: int) -> None:
    await conn.execute(
        "insert into users (id) select 'old-user-' || g from generate_series(1, $1) g", rows
    )
    await conn.execute(
        "insert into notifications (id, user_id, seq, kind, title, body, event_id)"
        " select 'old-' || g, 'old-user-' || g, 1, 'k', 't', 'b', 'old-ev-' || g"
        " from generate_series(1, $1) g",
        rows,
    )
    await conn.execute(
        "insert into conversations (id, user_id, topic, status)"
        " select 'old-chat-' || g, 'old-user-' || g, 'payment', 'bot'"
        " from generate_series(1, $1) g",
        rows,
    )


async def _seq_scans(conn: asyncpg.Connection) -> dict[str, int]:
    """Sequential scans of TABLES in the current transaction so far."""
    rows = await conn.fetch(
        "select t, pg_stat_get_xact_numscans(t::regclass) from unnest($1::text[]) t", TABLES
    )
    return {t: n for t, n in rows}


@pytest.mark.parametrize("analysed_empty", [False, True], ids=["never-analysed", "analysed-empty"])
async def test_a_plan_cached_on_small_tables_does_not_scan_them(isolated, analysed_empty):
    conn = await asyncpg.connect(isolated.dsn)  # the statement cache on, as the hub's writers
    try:
        await init_connection(conn)
        if analysed_empty:
            await conn.execute("analyze notifications; analyze conversations")
        for _ in range(8):  # five custom plans, then the generic one is kept
            await write_notifications(conn, _batch(4))
            async with conn.transaction():
                await write_notifications(conn, _batch(4))
        assert await _on_generic_plans(conn) == 1, "the test needs the cached generic plan"
        await _grow(conn, 20_000)
        plans: list[str] = []
        conn.add_log_listener(lambda _conn, message: plans.append(message.message))
        await conn.execute(
            "load 'auto_explain'; set auto_explain.log_min_duration = 0;"
            " set auto_explain.log_nested_statements = on; set client_min_messages = log"
        )
        alone = await write_notifications(conn, _batch(4))
        assert all(n is not None for n in alone)
        async with conn.transaction():
            before = await _seq_scans(conn)
            stored = await write_notifications(conn, _batch(4))
            after = await _seq_scans(conn)
        assert all(n is not None for n in stored)
        assert await _on_generic_plans(conn) == 1
        plan = "\n".join(plans)
        for table in TABLES:
            assert f"Seq Scan on {table}" not in plan, plan
            assert after[table] == before[table], plan
    finally:
        await conn.close()
