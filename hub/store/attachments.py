"""Attachments: the uploaded files' rows, and the references `message` frames carry."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from supporthub_core.db import fetch_one

#: One attachment as a `message` frame refers to it, before its links are signed
#: (hub.attachments.links): attachment_id, content_type, size, name, thumbnail, width, height.
REF_SQL = (
    "jsonb_build_object('attachment_id', a.id, 'content_type', a.content_type,"
    " 'size', a.size, 'name', a.name, 'thumbnail', a.thumbnail_size is not null,"
    " 'width', a.width, 'height', a.height)"
)


def ref(r: asyncpg.Record) -> dict:
    return {
        "attachment_id": r["id"],
        "content_type": r["content_type"],
        "size": r["size"],
        "name": r["name"],
        "thumbnail": r["thumbnail_size"] is not None,
        "width": r["width"],
        "height": r["height"],
    }


async def insert(
    db: asyncpg.Connection,
    *,
    attachment_id: str,
    conversation_id: str,
    uploader_role: str,
    uploader_id: str,
    name: str,
    content_type: str,
    size: int,
    sha256: str,
    width: int | None,
    height: int | None,
    thumbnail_size: int | None,
) -> asyncpg.Record:
    return await fetch_one(
        db,
        "insert into attachments (id, conversation_id, uploader_role, uploader_id, name,"
        " content_type, size, sha256, width, height, thumbnail_size)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *",
        attachment_id, conversation_id, uploader_role, uploader_id, name, content_type,
        size, sha256, width, height, thumbnail_size,
    )  # fmt: skip


async def get(db: asyncpg.Connection, attachment_id: str) -> asyncpg.Record | None:
    """The attachment with whether a message carries it (`sent`)."""
    return await db.fetchrow(
        "select a.*, exists (select 1 from message_attachments ma"
        " where ma.attachment_id = a.id) as sent from attachments a where a.id = $1",
        attachment_id,
    )


async def for_messages(conn: asyncpg.Connection, ids: Sequence[str]) -> list[asyncpg.Record]:
    """The attachments a batch of `chat.send` names (inside the group commit)."""
    return await conn.fetch(
        "select id, conversation_id, uploader_id, name, content_type, size, width, height,"
        " thumbnail_size from attachments where id = any($1::text[])",
        list(ids),
    )


async def link(conn: asyncpg.Connection, links: Sequence[tuple[str, int, str]]) -> None:
    """(message_id, position, attachment_id) rows, in the message's transaction."""
    await conn.execute(
        "insert into message_attachments (message_id, position, attachment_id)"
        " select * from unnest($1::text[], $2::int[], $3::text[])",
        [m for m, _, _ in links],
        [p for _, p, _ in links],
        [a for _, _, a in links],
    )


async def of_messages(conn: asyncpg.Connection, message_ids: Sequence[str]) -> dict[str, list]:
    """message_id -> its attachment references, in order (for messages sent again with
    the same client_msg_id)."""
    rows = await conn.fetch(
        f"select ma.message_id, {REF_SQL} as ref from message_attachments ma"
        " join attachments a on a.id = ma.attachment_id"
        " where ma.message_id = any($1::text[]) order by ma.message_id, ma.position",
        list(message_ids),
    )
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r["message_id"], []).append(r["ref"])
    return out
