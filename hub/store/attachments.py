"""Attachments: the uploaded files' rows, and the references `message` frames carry."""

from __future__ import annotations

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
