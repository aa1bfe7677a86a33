"""Campaigns in the store: the campaign rows, their audiences as SQL, the lease one node
holds while it sends, the batch that materialises copies and moves the cursor in one
transaction, late copies for users first seen afterwards, and the counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hub.rules.campaigns import Audience
from hub.store.notifications import notification_frame
from supporthub_core.audit import AuditEntry
from supporthub_core.audit import append as audit_append

LATE_MAX_AGE = "7 days"  # a user first seen later still gets campaigns this recent
_FIELDS = "id, category, texts, link, audience, send_at, status, cursor, delivered," \
          " created_by, created_at, updated_at, started_at, finished_at"  # fmt: skip


def _predicate(a: Audience, first: int) -> tuple[str, list[Any]]:
    """The audience as a condition on `users u`, its parameters numbered from `first`."""
    if a.kind == "lang":
        return f"u.lang = ${first}", [a.lang]
    if a.kind == "active":
        return f"coalesce(u.last_seen_at, u.created_at) > now() - make_interval(days => ${first})", [a.days]  # fmt: skip
    if a.kind == "alert":
        return (
            "exists (select 1 from notifications n where n.user_id = u.id"
            f" and n.kind = 'security.alert' and n.data->>'alert' = ${first}"
            f" and n.created_at > now() - make_interval(days => ${first + 1}))",
            [a.alert, a.days],
        )
    return "true", []


def _row(r: asyncpg.Record) -> dict[str, Any]:
    out = dict(r)
    for name in ("send_at", "created_at", "updated_at", "started_at", "finished_at"):
        if out.get(name) is not None:
            out[name] = out[name].isoformat()
    return out


async def create(
    db: asyncpg.Connection,
    *,
    category: str,
    texts: dict[str, Any],
    link: str | None,
    audience: Audience,
    send_at: datetime,
    created_by: str,
    user_ids: list[str],
    audit: AuditEntry,
) -> dict[str, Any]:
    async with db.transaction():
        row = await db.fetchrow(
            "insert into campaigns (category, texts, link, audience, send_at, created_by)"
            f" values ($1, $2, $3, $4, $5, $6) returning {_FIELDS}",
            category,
            texts,
            link,
            audience.as_json(),
            send_at,
            created_by,
        )
        assert row is not None
        if user_ids:
            await db.execute(
                "insert into campaign_users (campaign_id, user_id)"
                " select $1, x from unnest($2::text[]) x on conflict do nothing",
                row["id"],
                user_ids,
            )
        await audit_append(db, _with_id(audit, row["id"]))
    return _row(row)


def _with_id(entry: AuditEntry, campaign_id: int) -> AuditEntry:
    return AuditEntry(entry.actor_role, entry.actor_id, entry.action,
                      details={"campaign_id": campaign_id, **entry.details},
                      address=entry.address)  # fmt: skip


async def now(db: asyncpg.Connection) -> datetime:
    """The database's clock: every node judges "has it started" by the same one."""
    value: datetime = await db.fetchval("select now()")
    return value


async def get(db: asyncpg.Connection, campaign_id: int) -> dict[str, Any] | None:
    row = await db.fetchrow(f"select {_FIELDS} from campaigns where id = $1", campaign_id)
    if row is None:
        return None
    return {**_row(row), "counts": await counts(db, campaign_id)}


async def recent(db: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(f"select {_FIELDS} from campaigns order by id desc limit $1", limit)
    known = await counts_of(db, [r["id"] for r in rows])
    return [{**_row(r), "counts": known[r["id"]]} for r in rows]


COUNTS = ("delivered", "read", "clicked", "dismissed")


async def counts(db: asyncpg.Connection, campaign_id: int) -> dict[str, int]:
    """Delivered (copies stored), read (acknowledged with notifications.ack), clicked and
    dismissed (each user once)."""
    return (await counts_of(db, [campaign_id]))[campaign_id]


async def counts_of(db: asyncpg.Connection, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """The counts of these campaigns, as kept while they happen (migration 0018): the
    sender's `delivered` plus the sums of each campaign's `campaign_counts` rows."""
    rows = await db.fetch(
        "select c.id, c.delivered + coalesce(sum(k.delivered), 0) as delivered,"
        " coalesce(sum(k.read), 0) as read, coalesce(sum(k.clicked), 0) as clicked,"
        " coalesce(sum(k.dismissed), 0) as dismissed"
        " from campaigns c left join campaign_counts k on k.campaign_id = c.id"
        " where c.id = any($1::bigint[]) group by c.id",
        campaign_ids,
    )
    found = {r["id"]: {k: int(r[k]) for k in COUNTS} for r in rows}
    return {cid: found.get(cid, dict.fromkeys(COUNTS, 0)) for cid in campaign_ids}


async def _count(db: asyncpg.Connection, campaign_id: int, user_id: str, what: str) -> None:
    """One more of `what` for the campaign, on the row of the user's shard."""
    column = {"delivered": "delivered", "clicked": "clicked", "dismissed": "dismissed"}[what]
    await db.execute(
        f"insert into campaign_counts (campaign_id, shard, {column})"
        " values ($1, hashtext($2) & 15, 1) on conflict (campaign_id, shard)"
        f" do update set {column} = campaign_counts.{column} + 1",
        campaign_id,
        user_id,
    )


async def audience_size(
    db: asyncpg.Connection, audience: Audience, user_ids: list[str] | None = None
) -> int:
    """How many users the audience has now (a list: its distinct ids)."""
    if audience.kind == "list":
        return len(set(user_ids or []))
    where, args = _predicate(audience, 1)
    return int(await db.fetchval(f"select count(*) from users u where {where}", *args))


async def change(
    db: asyncpg.Connection,
    campaign_id: int,
    fields: dict[str, Any],
    user_ids: list[str] | None,
    audit: AuditEntry,
) -> dict[str, Any] | None:
    """Edit or cancel (`fields` {"status": "cancelled"}) a campaign that has not started:
    None when there is none that is still scheduled for later."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
    async with db.transaction():
        row = await db.fetchrow(
            f"update campaigns set {sets}, updated_at = now() where id = $1"
            f" and status = 'scheduled' and send_at > now() returning {_FIELDS}",
            campaign_id,
            *fields.values(),
        )
        if row is None:
            return None
        if user_ids is not None:
            await db.execute("delete from campaign_users where campaign_id = $1", campaign_id)
            await db.execute(
                "insert into campaign_users (campaign_id, user_id)"
                " select $1, x from unnest($2::text[]) x on conflict do nothing",
                campaign_id,
                user_ids,
            )
        await audit_append(db, _with_id(audit, campaign_id))
    return _row(row)


async def list_size(db: asyncpg.Connection, campaign_id: int) -> int:
    return int(
        await db.fetchval("select count(*) from campaign_users where campaign_id = $1", campaign_id)
    )


# --- sending -------------------------------------------------------------------------


async def claim(db: asyncpg.Connection, node_id: str, lease_s: float) -> dict[str, Any] | None:
    """Take the lease of one due campaign nobody holds (or whose holder let it run out):
    the campaign this node sends next, or None."""
    row = await db.fetchrow(
        "update campaigns c set status = 'sending', lease_owner = $1,"
        " lease_until = now() + make_interval(secs => $2),"
        " started_at = coalesce(c.started_at, now())"
        " where c.id = (select id from campaigns where status in ('scheduled', 'sending')"
        "   and send_at <= now() and (lease_until is null or lease_until < now()"
        "   or lease_owner = $1) order by send_at, id limit 1 for update skip locked)"
        f" returning {_FIELDS}",
        node_id,
        lease_s,
    )
    return None if row is None else dict(row)


async def release(db: asyncpg.Connection, campaign_id: int, node_id: str) -> None:
    await db.execute(
        "update campaigns set lease_owner = null, lease_until = null"
        " where id = $1 and lease_owner = $2",
        campaign_id,
        node_id,
    )


@dataclass(slots=True)
class Batch:
    copies: list[tuple[str, dict[str, Any]]]  # (user id, notification frame)
    done: bool  # the audience is exhausted: the campaign is sent
    lost: bool = False  # another node holds the lease now (or it was cancelled)


async def send_batch(
    db: asyncpg.Connection, campaign_id: int, node_id: str, limit: int, lease_s: float
) -> Batch:
    """Materialise the next `limit` users of the audience past the cursor, in one
    transaction with the cursor's move, under the campaign's row lock and only while this
    node holds the lease: a batch is stored whole or not at all, and never twice."""
    async with db.transaction():
        c = await db.fetchrow(
            "select id, category, texts, link, audience, cursor, status, lease_owner"
            " from campaigns where id = $1 for update",
            campaign_id,
        )
        if c is None or c["status"] != "sending" or c["lease_owner"] != node_id:
            return Batch([], done=False, lost=True)
        audience = Audience.from_json(c["audience"])
        if audience.kind == "list":
            ids = [r["user_id"] for r in await db.fetch(
                "select user_id from campaign_users where campaign_id = $1 and user_id > $2"
                " order by user_id limit $3", campaign_id, c["cursor"], limit)]  # fmt: skip
            if ids:  # a listed user the hub has not seen yet gets a row, as on connect
                await db.execute(
                    "insert into users (id) select x from unnest($1::text[]) x order by x"
                    " on conflict do nothing",
                    ids,
                )
        else:
            where, args = _predicate(audience, 3)
            ids = [r["id"] for r in await db.fetch(
                f"select u.id from users u where u.id > $1 and {where} order by u.id limit $2",
                c["cursor"], limit, *args)]  # fmt: skip
        if not ids:
            await db.execute(
                "update campaigns set status = 'sent', finished_at = now(), lease_owner = null,"
                " lease_until = null where id = $1",
                campaign_id,
            )
            await audit_append(db, AuditEntry("system", node_id, "campaign.sent",
                                              details={"campaign_id": campaign_id}))  # fmt: skip
            return Batch([], done=True)
        rows = await _materialise(db, c, ids)
        await db.execute(
            "update campaigns set cursor = $2, delivered = delivered + $3,"
            " lease_until = now() + make_interval(secs => $4) where id = $1",
            campaign_id,
            ids[-1],
            len(rows),
            lease_s,
        )
    return Batch([(r["user_id"], notification_frame(r)) for r in rows], done=False)


# Each user's copy: their next seq (numbered from their head, `notif_head`), their
# language's text (the device re-renders it from data.texts for its own:
# hub.rules.notices.localize), at most one per user and campaign (the unique index
# notifications_campaign), under the user's row lock (taken in id order; the notice's
# chunks and `materialise_broadcasts` take it too). The head is read as of the statement:
# a notification the hub stores meanwhile for the same seq (it does not take the lock) is
# waited for and, once committed, makes the copy skip, as does a copy of the same campaign
# committed meanwhile (ON CONFLICT DO NOTHING on every unique index); `_WITHOUT_COPY` tells
# which of the users still have none, numbered again by a new statement.
_MATERIALISE = """
with target as (
  select u.id, u.lang from users u where u.id = any($2::text[])
    and not exists (select 1 from notifications n where n.campaign_id = $1 and n.user_id = u.id)
  order by u.id for update of u
)
insert into notifications (id, user_id, seq, kind, title, body, data, campaign_id)
select md5(random()::text || clock_timestamp()::text || b.id), b.id,
  (select coalesce(max(n.seq), 0) from notifications n where n.user_id = b.id) + 1,
  'system.notice',
  coalesce($3::jsonb -> b.lang ->> 'title', $3::jsonb -> 'zh' ->> 'title', $3::jsonb -> 'en' ->> 'title'),
  coalesce($3::jsonb -> b.lang ->> 'body', $3::jsonb -> 'zh' ->> 'body', $3::jsonb -> 'en' ->> 'body'),
  $4::jsonb, $1
from target b order by b.id
on conflict do nothing
returning *
"""
# Those of these users (known ones) who have no copy of the campaign.
_WITHOUT_COPY = """
select u.id from users u where u.id = any($2::text[])
  and not exists (select 1 from notifications n where n.campaign_id = $1 and n.user_id = u.id)
order by u.id
"""


def card_data(c: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The `data` of a campaign's notification: what the widget's card needs."""
    data: dict[str, Any] = {"campaign_id": c["id"], "category": c["category"], "texts": c["texts"]}
    if c["link"]:
        data["link"] = c["link"]
    return data


async def _materialise(
    db: asyncpg.Connection, c: asyncpg.Record | dict[str, Any], ids: list[str]
) -> list[asyncpg.Record]:
    """The copies stored for these users (in the caller's transaction, which holds their
    row locks to the end): those whose copy skipped its seq, taken by a write committed
    meanwhile, are numbered again until each user has their one copy."""
    rows: list[asyncpg.Record] = []
    todo = ids
    while todo:
        got = await db.fetch(_MATERIALISE, c["id"], todo, c["texts"], card_data(c))
        rows.extend(got)
        if len(got) == len(todo):
            break
        stored = {r["user_id"] for r in got}
        left = [u for u in todo if u not in stored]
        todo = [r["id"] for r in await db.fetch(_WITHOUT_COPY, c["id"], left)]
    return sorted(rows, key=lambda r: r["user_id"])


async def materialise_late(db: asyncpg.Connection, user_id: str) -> None:
    """A user first seen after a campaign to everyone (or to their language) passed them
    by gets their copy now, once. Campaigns still sending count once the cursor is past
    the user (the sender would not come back for them)."""
    rows = await db.fetch(
        "select c.id, c.category, c.texts, c.link, c.audience from campaigns c, users u"
        " where u.id = $1 and c.status in ('sending', 'sent')"
        " and (c.status = 'sent' or c.cursor >= u.id)"
        " and coalesce(c.finished_at, now()) > now() - interval '" + LATE_MAX_AGE + "'"
        " and (c.audience->>'kind' = 'all'"
        "   or (c.audience->>'kind' = 'lang' and c.audience->>'lang' = u.lang))"
        " and not exists (select 1 from notifications n where n.campaign_id = c.id"
        "   and n.user_id = u.id) order by c.id",
        user_id,
    )
    for c in rows:
        async with db.transaction():
            # none stored when the sender got there first: one copy
            if await _materialise(db, c, [user_id]):
                # not in the sender's `delivered`: the campaign's row stays its alone
                await _count(db, c["id"], user_id, "delivered")


async def mark(db: asyncpg.Connection, campaign_id: int, user_id: str, what: str) -> bool:
    """Record that the user opened the link (`clicked`) or dismissed the card
    (`dismissed`), the first time only; False when they never got the campaign."""
    column = {"clicked": "clicked_at", "dismissed": "dismissed_at"}[what]
    got = await db.fetchval(
        "select 1 from notifications where campaign_id = $1 and user_id = $2",
        campaign_id,
        user_id,
    )
    if not got:
        return False
    async with db.transaction():
        first = await db.fetchval(
            f"insert into campaign_marks (campaign_id, user_id, {column}) values ($1, $2, now())"
            f" on conflict (campaign_id, user_id) do update set {column} = now()"
            f" where campaign_marks.{column} is null returning true",
            campaign_id,
            user_id,
        )
        if first:  # a second mark of the same user waits on the row, then finds it set
            await _count(db, campaign_id, user_id, what)
    return True


async def dismissed(db: asyncpg.Connection, user_id: str) -> list[int]:
    """The campaigns whose card this user dismissed (never shown again)."""
    rows = await db.fetch(
        "select campaign_id from campaign_marks where user_id = $1 and dismissed_at is not null",
        user_id,
    )
    return [r["campaign_id"] for r in rows]


async def maintenance_window(db: asyncpg.Connection) -> dict[str, Any] | None:
    """The maintenance window last announced (`data.window` of the newest notice that has
    one), while it is still on; None when there is none or its end was announced."""
    data = await db.fetchval(
        "select data from broadcasts where data ? 'window' and created_at > now() - interval '"
        + LATE_MAX_AGE
        + "' order by id desc limit 1"
    )
    window = data.get("window") if isinstance(data, dict) else None
    return window if isinstance(window, dict) and window.get("active") is True else None
