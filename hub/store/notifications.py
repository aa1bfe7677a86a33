"""Queries on users, notifications and broadcasts."""

from __future__ import annotations

import asyncpg

from hub.store.writer import new_id

BROADCAST_MAX_AGE = "7 days"  # a user first seen later still gets notices this recent


def notification_frame(r: asyncpg.Record) -> dict:
    return {
        "type": "notification",
        "seq": r["seq"],
        "notification_id": r["id"],
        "kind": r["kind"],
        "title": r["title"],
        "body": r["body"],
        "data": r["data"],
        "ts": r["created_at"].isoformat(),
    }


async def ensure_user(
    db: asyncpg.Connection, user_id: str, name: str | None = None, lang: str | None = None
) -> None:
    await db.execute(
        "insert into users (id, name, lang) values ($1, $2, coalesce($3, 'zh'))"
        " on conflict (id) do update set last_seen_at = now(),"
        " name = coalesce(excluded.name, users.name), lang = coalesce($3, users.lang)",
        user_id,
        name,
        lang,
    )


async def after(db: asyncpg.Connection, user_id: str, seq: int, limit: int) -> list[dict]:
    rows = await db.fetch(
        "select * from notifications where user_id = $1 and seq > $2 order by seq limit $3",
        user_id,
        seq,
        limit,
    )
    return [notification_frame(r) for r in rows]


async def ack(db: asyncpg.Connection, user_id: str, up_to: int) -> int:
    """Record what the user has seen; never moves backwards or past what exists."""
    return await db.fetchval(
        "update users set notif_acked = greatest(notif_acked, least($2, notif_seq))"
        " where id = $1 returning notif_acked",
        user_id,
        up_to,
    )


_BROADCAST_LOCK = 0x5368_4263  # "ShBc": one notice committing at a time


async def create_broadcast(db: asyncpg.Connection, title: str, body: str, data: dict) -> int:
    """Store a system notice and give every known user their copy with their next seq.
    Users first seen later get it from `materialise_broadcasts` when they connect.

    The lock, held until COMMIT, hands broadcast ids out in commit order (as the payments
    outbox does): a user's cursor moved past id N never skips an id below N that
    commits later, which concurrent notices would otherwise do."""
    async with db.transaction():
        await db.execute("select pg_advisory_xact_lock($1)", _BROADCAST_LOCK)
        bid = await db.fetchval(
            "insert into broadcasts (title, body, data) values ($1, $2, $3) returning id",
            title,
            body,
            data,
        )
        await db.execute(
            "with locked as (select id from users where broadcast_cursor < $1 order by id for update),"
            " bumped as (update users u set notif_seq = notif_seq + 1, broadcast_cursor = $1"
            "   from locked where u.id = locked.id returning u.id, u.notif_seq)"
            " insert into notifications (id, user_id, seq, kind, title, body, data, broadcast_id)"
            " select md5(random()::text || clock_timestamp()::text || bumped.id), bumped.id,"
            "   bumped.notif_seq, 'system.notice', $2, $3, $4, $1 from bumped",
            bid,
            title,
            body,
            data,
        )
    return bid


async def materialise_broadcasts(db: asyncpg.Connection, user_id: str) -> None:
    async with db.transaction():
        user = await db.fetchrow(
            "select broadcast_cursor, notif_seq from users where id = $1 for update", user_id
        )
        pending = await db.fetch(
            "select * from broadcasts where id > $1"
            f" and created_at > now() - interval '{BROADCAST_MAX_AGE}' order by id",
            user["broadcast_cursor"],
        )
        if not pending:
            return
        seq = user["notif_seq"]
        for b in pending:
            seq += 1
            await db.execute(
                "insert into notifications (id, user_id, seq, kind, title, body, data, broadcast_id)"
                " values ($1, $2, $3, 'system.notice', $4, $5, $6, $7)",
                new_id(),
                user_id,
                seq,
                b["title"],
                b["body"],
                b["data"],
                b["id"],
            )
        await db.execute(
            "update users set notif_seq = $2, broadcast_cursor = $3 where id = $1",
            user_id,
            seq,
            pending[-1]["id"],
        )


async def broadcast_copies(
    db: asyncpg.Connection, after_id: int, up_to_id: int, user_ids: list[str]
) -> list[tuple[str, dict]]:
    """The users' copies of the notices after `after_id` up to `up_to_id`, in seq order."""
    rows = await db.fetch(
        "select * from notifications where broadcast_id > $1 and broadcast_id <= $2"
        " and user_id = any($3::text[]) order by user_id, seq",
        after_id,
        up_to_id,
        user_ids,
    )
    return [(r["user_id"], notification_frame(r)) for r in rows]
