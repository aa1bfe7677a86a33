"""PostgreSQL pool and migrations.

Migrations are SQL files applied in file-name order under an advisory lock, each in its
own transaction and recorded in `schema_migrations`, so two processes starting at once
apply each file exactly once.
"""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg
import orjson

log = logging.getLogger(__name__)

MIGRATION_PACKAGES = ("hub.store", "payments")
_MIGRATION_LOCK = 0x5375_7070  # "Supp"


async def init_connection(conn: asyncpg.Connection) -> None:
    # binary format: jsonb is a version byte and the JSON text; no str round trip per value
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        command_timeout=30,
        server_settings={"application_name": "supporthub"},
    )


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) for every migration of every package, in apply order."""
    found = []
    for package in MIGRATION_PACKAGES:
        folder = resources.files(package) / "migrations"
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.endswith(".sql"):
                found.append((entry.name, f"{package}:{entry.name}", entry.read_text("utf-8")))
    found.sort()
    return [(version, sql) for _, version, sql in found]


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    conn = await asyncpg.connect(dsn)
    applied_now = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "create table if not exists schema_migrations ("
            " version text primary key, applied_at timestamptz not null default now())"
        )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("insert into schema_migrations(version) values ($1)", version)
            applied_now.append(version)
            log.info("applied migration %s", version)
    finally:
        try:
            await conn.execute("select pg_advisory_unlock($1)", _MIGRATION_LOCK)
        finally:
            await conn.close()
    return applied_now
