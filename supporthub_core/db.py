"""PostgreSQL pool and migrations.

Migrations are SQL files applied in file-name order, each in its own transaction that
first takes a transaction-scoped advisory lock and re-reads `schema_migrations`, so two
processes starting at once apply each file exactly once.

Nothing here depends on a server session outliving a transaction (no session-level
advisory locks, no LISTEN, no session SET), so the hub and payments work through PgBouncer
in transaction pooling mode. Such a pooler cannot keep asyncpg's named prepared statements
(PgBouncer before 1.21, or without `max_prepared_statements`): the statement cache is then
turned off with `HUB_DB_STATEMENT_CACHE=0` or by adding `pgbouncer=1` to the DSN's query
parameters (removed before connecting).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

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


_PGBOUNCER_FLAGS = ("1", "true", "yes", "on")


def connect_options(dsn: str, statement_cache: int | None = None) -> tuple[str, dict[str, Any]]:
    """The DSN asyncpg is given and the options that go with it. `statement_cache`: the
    prepared statement cache size per connection (0 turns it off: PgBouncer in
    transaction mode); None: off when the DSN says `pgbouncer=1`, asyncpg's default
    otherwise. The `pgbouncer` parameter itself is taken out of the DSN: asyncpg would
    send it to the server as a setting."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flag = [v for k, v in query if k == "pgbouncer"]
    if flag:
        dsn = urlunsplit(
            parts._replace(query=urlencode([(k, v) for k, v in query if k != "pgbouncer"]))
        )
    options: dict[str, Any] = {}
    if statement_cache is None and flag and flag[-1].lower() in _PGBOUNCER_FLAGS:
        statement_cache = 0
    if statement_cache is not None:
        options["statement_cache_size"] = statement_cache
    return dsn, options


async def connect(dsn: str, statement_cache: int | None = None) -> asyncpg.Connection:
    """One connection (migrations, tools), with the options `connect_options` picks."""
    dsn, options = connect_options(dsn, statement_cache)
    return await asyncpg.connect(dsn, **options)


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, statement_cache: int | None = None
) -> asyncpg.Pool:
    dsn, options = connect_options(dsn, statement_cache)
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        command_timeout=30,
        server_settings={"application_name": "supporthub"},
        **options,
    )


def as_connection(proxy: PoolConnectionProxy) -> asyncpg.Connection:
    """A pool's connection as the `asyncpg.Connection` every SQL function takes: the proxy
    forwards each method to it (and passes `isinstance`), but the stubs type the two apart."""
    return cast(asyncpg.Connection, proxy)


@asynccontextmanager
async def acquire(
    pool: asyncpg.Pool, timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """`pool.acquire()`, typed as the connection it lends."""
    async with pool.acquire(timeout=timeout) as proxy:
        yield as_connection(proxy)


async def ping(db: asyncpg.Connection, timeout: float) -> bool:
    """The server answers a query (readiness checks)."""
    return await db.fetchval("select 1", timeout=timeout) == 1


async def fetch_one(db: asyncpg.Connection, query: str, *args: object) -> asyncpg.Record:
    """`fetchrow` for a statement that always yields a row (`insert ... returning`, the
    update of a row the caller holds, an aggregate): none is a broken invariant."""
    row = await db.fetchrow(query, *args)
    if row is None:
        raise LookupError(f"no row for: {' '.join(query.split())[:80]}")
    return row


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


async def migrate(dsn: str, *, statement_cache: int | None = None) -> list[str]:
    """Apply pending migrations; return the versions applied now.

    Every step is one transaction holding `pg_advisory_xact_lock`, never a session lock:
    through a transaction-pooling PgBouncer, consecutive statements of one client may run
    on different server sessions, so a session lock could be taken on one and "released"
    on another. A process that waited for the lock re-reads `schema_migrations` under it
    and skips what the other applied meanwhile."""
    conn = await connect(dsn, statement_cache)
    applied_now = []
    try:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "create table if not exists schema_migrations ("
                " version text primary key, applied_at timestamptz not null default now())"
            )
            done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                if await conn.fetchval(
                    "select 1 from schema_migrations where version = $1", version
                ):
                    continue  # another process applied it while this one waited
                await conn.execute(sql)
                await conn.execute("insert into schema_migrations(version) values ($1)", version)
            applied_now.append(version)
            log.info("applied migration %s", version)
    finally:
        await conn.close()
    return applied_now
