"""The e-mail channel's rows: users' addresses, the Message-IDs of messages, e-mail
conversations' reply address and subject, and the outbox of mail to send."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from hub.rules.mail import Known


async def add_address(
    db: asyncpg.Connection, user_id: str, address: str, *, verified: bool = True
) -> None:
    await db.execute(
        "insert into user_emails (address, user_id, verified) values (lower($1), $2, $3)"
        " on conflict (address) do update set user_id = excluded.user_id,"
        " verified = excluded.verified",
        address, user_id, verified,
    )  # fmt: skip


async def owner(db: asyncpg.Connection, address: str) -> asyncpg.Record | None:
    """(user_id, verified, name, lang) of the user this address belongs to."""
    return await db.fetchrow(
        "select e.user_id, e.verified, u.name, u.lang from user_emails e"
        " left join users u on u.id = e.user_id where e.address = lower($1)",
        address,
    )


async def verified_address(db: asyncpg.Connection, user_id: str) -> str | None:
    """A verified address of the user (the newest), if any."""
    return await db.fetchval(
        "select address from user_emails where user_id = $1 and verified"
        " order by created_at desc limit 1",
        user_id,
    )


async def known_ids(db: asyncpg.Connection, mail_ids: Sequence[str]) -> dict[str, Known]:
    """Those of `mail_ids` a message carries, with its conversation."""
    if not mail_ids:
        return {}
    rows = await db.fetch(
        "select m.mail_id, c.id, c.user_id, c.status = any('{bot,queued,assigned}'::text[])"
        " as open from messages m join conversations c on c.id = m.conversation_id"
        " where m.mail_id = any($1::text[])",
        list(mail_ids),
    )
    return {r["mail_id"]: Known(r["id"], r["user_id"], r["open"]) for r in rows}


async def set_mail_id(db: asyncpg.Connection, message_id: str, mail_id: str) -> None:
    await db.execute("update messages set mail_id = $2 where id = $1", message_id, mail_id)


async def set_reply_email(
    db: asyncpg.Connection, conversation_id: str, address: str, subject: str | None
) -> None:
    """Replies in this conversation go to `address` by mail too (the subject: kept)."""
    await db.execute(
        "update conversations set reply_email = $2,"
        " mail_subject = coalesce(mail_subject, $3) where id = $1",
        conversation_id, address, subject,
    )  # fmt: skip


async def notice(
    db: asyncpg.Connection,
    to_address: str,
    subject: str,
    body: str,
    in_reply_to: str | None,
    conversation_id: str | None = None,
    per_hour: int = 5,
) -> None:
    """A mail the hub writes itself (the generic answer, a refused file), sent like a
    reply; at most `per_hour` to one address an hour (no mail bombing a forged From)."""
    await db.execute(
        "insert into mail_outbox (kind, to_address, subject, body, in_reply_to,"
        " conversation_id) select 'notice', $1, $2, $3, $4, $5"
        " where (select count(*) from mail_outbox where to_address = $1 and kind = 'notice'"
        "  and created_at > now() - interval '1 hour') < $6",
        to_address, subject, body, in_reply_to, conversation_id, per_hour,
    )  # fmt: skip


async def claim_due(
    db: asyncpg.Connection, lease_s: float, limit: int = 20
) -> list[asyncpg.Record]:
    """Mail due now, leased for `lease_s` (another node skips it meanwhile): each with its
    message and conversation. Runs in its own transaction."""
    async with db.transaction():
        return await db.fetch(
            "with due as (select id from mail_outbox where sent_at is null and next_at <= now()"
            "  order by id limit $2 for update skip locked)"
            " update mail_outbox o set next_at = now() + make_interval(secs => $1)"
            " from due where o.id = due.id returning o.*",
            lease_s, limit,
        )  # fmt: skip


async def reply_context(db: asyncpg.Connection, message_id: str) -> asyncpg.Record | None:
    """The reply's message with its conversation's subject and user."""
    return await db.fetchrow(
        "select m.id, m.seq, m.text, m.sender_name, m.conversation_id, m.mail_id,"
        " c.mail_subject, c.user_id, c.lang, u.name as user_name"
        " from messages m join conversations c on c.id = m.conversation_id"
        " left join users u on u.id = c.user_id where m.id = $1",
        message_id,
    )


async def thread_before(
    db: asyncpg.Connection, conversation_id: str, seq: int, limit: int = 50
) -> list[asyncpg.Record]:
    """The people's messages before `seq`, oldest first (quoting, References)."""
    rows = await db.fetch(
        "select seq, sender_role, sender_name, text, mail_id from messages"
        " where conversation_id = $1 and seq < $2 and sender_role in ('user', 'agent')"
        " order by seq desc limit $3",
        conversation_id, seq, limit,
    )  # fmt: skip
    return list(reversed(rows))


async def attachments_of(db: asyncpg.Connection, message_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "select a.id, a.name, a.content_type, a.size from message_attachments ma"
        " join attachments a on a.id = ma.attachment_id where ma.message_id = $1"
        " order by ma.position",
        message_id,
    )


async def fix_mail_id(db: asyncpg.Connection, outbox_id: int, mail_id: str) -> str:
    """The Message-ID of this mail: the one fixed before an earlier try, else `mail_id`."""
    return await db.fetchval(
        "update mail_outbox set mail_id = coalesce(mail_id, $2) where id = $1 returning mail_id",
        outbox_id, mail_id,
    )  # fmt: skip


async def sent(
    db: asyncpg.Connection, outbox_id: int, message_id: str | None, mail_id: str
) -> None:
    async with db.transaction():
        await db.execute(
            "update mail_outbox set sent_at = now(), attempts = attempts + 1, last_error = null"
            " where id = $1",
            outbox_id,
        )
        if message_id is not None:
            await set_mail_id(db, message_id, mail_id)


async def failed(db: asyncpg.Connection, outbox_id: int, retry_in_s: float, error: str) -> int:
    """Try again in `retry_in_s`; the number of attempts so far."""
    return await db.fetchval(
        "update mail_outbox set attempts = attempts + 1, last_error = $3,"
        " next_at = now() + make_interval(secs => $2) where id = $1 returning attempts",
        outbox_id, retry_in_s, error[:500],
    )  # fmt: skip


async def pending(db: asyncpg.Connection) -> int:
    return await db.fetchval("select count(*) from mail_outbox where sent_at is null")


async def ensure_user(db: asyncpg.Connection, user_id: str, name: str | None) -> None:
    await db.execute(
        "insert into users (id, name) values ($1, $2) on conflict (id) do nothing", user_id, name
    )


async def opened_by(db: asyncpg.Connection, mail_id: str) -> str | None:
    """The conversation this mail opened, if it did."""
    return await db.fetchval(
        "select conversation_id from mail_received where mail_id = $1", mail_id
    )


async def enqueue_opened(db: asyncpg.Connection, conversation_id: str) -> bool:
    """A chat opened by mail, held until its first message was stored, joins the queue;
    False when it was not held (queued before, or not opened by mail)."""
    done = await db.execute(
        "update conversations set status = 'queued', enqueued_at = now(),"
        " last_activity_at = now() where id = $1 and status = 'bot' and channel = 'email'",
        conversation_id,
    )
    return done != "UPDATE 0"


async def record_opening(db: asyncpg.Connection, mail_id: str, conversation_id: str) -> None:
    await db.execute(
        "insert into mail_received (mail_id, conversation_id) values ($1, $2)"
        " on conflict (mail_id) do nothing",
        mail_id, conversation_id,
    )  # fmt: skip
