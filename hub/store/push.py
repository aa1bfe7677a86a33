"""Push subscriptions: the devices of a user that can be woken when no socket is open."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from hub.store.ids import new_id
from supporthub_core.db import fetch_one

COLUMNS = "id, user_id, kind, endpoint, keys, created_at, updated_at, last_sent_at"


async def save(
    db: asyncpg.Connection, user_id: str, kind: str, endpoint: str, keys: dict, keep: int
) -> asyncpg.Record:
    """Insert or refresh a subscription; keep the user's `keep` most recent ones.

    A browser has one endpoint per profile: when another user registers it, it moves to
    them, so the previous user's notifications never reach a device they left."""
    async with db.transaction():
        row = await fetch_one(
            db,
            "insert into push_subscriptions (id, user_id, kind, endpoint, keys)"
            " values ($1, $2, $3, $4, $5)"
            " on conflict (kind, endpoint) do update set user_id = excluded.user_id,"
            " keys = excluded.keys, updated_at = now()"
            f" returning {COLUMNS}",
            new_id(), user_id, kind, endpoint, keys,
        )  # fmt: skip
        await db.execute(
            "delete from push_subscriptions where id in (select id from push_subscriptions"
            " where user_id = $1 order by updated_at desc, id offset $2)",
            user_id,
            keep,
        )
    return row


async def remove(
    db: asyncpg.Connection,
    user_id: str,
    *,
    endpoint: str | None = None,
    subscription_id: str | None = None,
) -> bool:
    """Delete one of the user's subscriptions, by endpoint or id; False if none matched."""
    deleted = await db.fetchval(
        "delete from push_subscriptions where user_id = $1"
        " and (endpoint = $2 or id = $3) returning id",
        user_id, endpoint, subscription_id,
    )  # fmt: skip
    return deleted is not None


async def forget(db: asyncpg.Connection, subscription_id: str) -> None:
    """The push service said the subscription is gone (404/410)."""
    await db.execute("delete from push_subscriptions where id = $1", subscription_id)


async def of_user(db: asyncpg.Connection, user_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        f"select {COLUMNS} from push_subscriptions where user_id = $1 order by updated_at desc",
        user_id,
    )


async def of_users(db: asyncpg.Connection, user_ids: Sequence[str]) -> list[asyncpg.Record]:
    return await db.fetch(
        f"select {COLUMNS} from push_subscriptions where user_id = any($1::text[])",
        list(user_ids),
    )


async def sent(db: asyncpg.Connection, subscription_ids: Sequence[str]) -> None:
    await db.execute(
        "update push_subscriptions set last_sent_at = now() where id = any($1::text[])",
        list(subscription_ids),
    )


async def broadcast_copies_for_push(
    db: asyncpg.Connection, broadcast_id: int, after_user: str, limit: int
) -> list[asyncpg.Record]:
    """A page (by user id) of a broadcast's copies whose users have a push subscription."""
    return await db.fetch(
        "select n.id, n.user_id, n.kind, n.title, n.body, n.created_at from notifications n"
        " where n.broadcast_id = $1 and n.user_id > $2"
        " and exists (select 1 from push_subscriptions s where s.user_id = n.user_id)"
        " order by n.user_id limit $3",
        broadcast_id, after_user, limit,
    )  # fmt: skip
