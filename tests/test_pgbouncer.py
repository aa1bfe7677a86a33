"""The hub and payments through a real PgBouncer in transaction pooling mode: chat both
ways, payment notifications, the sweeper's one-node-at-a-time lock, and migrations run
twice at once. PgBouncer multiplexes the hub's connections over fewer server sessions,
so anything that relied on a session outliving a transaction would break here."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from hub.embedded import PG_USER, _run_as
from hub.services.sweeper import SWEEP_LOCK
from hub.store import agents, locks
from payments.seed import add_account
from supporthub_core.db import create_pool, migrate, migration_files
from tests.conftest import free_port, start_hub
from tests.events import publish_signed
from tests.test_chat_flow import online_agent

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer") if os.path.exists(p)), None
)

pytestmark = pytest.mark.skipif(
    PGBOUNCER is None, reason="the pgbouncer binary is not installed (apt-get install pgbouncer)"
)

SERVER_SESSIONS = 6  # fewer than a hub's pool: clients really share server sessions


class PgBouncer:
    """A private PgBouncer on a free loopback port in front of the session's PostgreSQL."""

    def __init__(self, root: Path, pg_socket_dir: Path):
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "userlist.txt").write_text(f'"{PG_USER}" ""\n')
        (root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={pg_socket_dir} port=5432 user={PG_USER}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {root / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_SESSIONS}\n"
            "max_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {root / 'pgbouncer.log'}\n"
            f"pidfile = {root / 'pgbouncer.pid'}\n"
        )

    def dsn(self, database: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def start(self) -> None:
        user = _run_as()  # PgBouncer refuses to run as root, like PostgreSQL
        if user:
            import pwd

            entry = pwd.getpwnam(user)
            for p in [self.root, *self.root.iterdir()]:
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self.proc = subprocess.Popen(
            [PGBOUNCER, str(self.root / "pgbouncer.ini")],
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = self.root / "pgbouncer.log"
                    raise RuntimeError(
                        "pgbouncer did not start: "
                        + (log.read_text()[-2000:] if log.exists() else "no log")
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None


@pytest.fixture
def pgbouncer(services):
    bouncer = PgBouncer(services.root / f"pgb-{uuid.uuid4().hex[:6]}", services.pg.socket_dir)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.root, ignore_errors=True)


@dataclass
class Through:
    """`isolated` services, with the database reached through PgBouncer."""

    dsn: str
    redis_url: str


def _db_name(dsn: str) -> str:
    return dsn.split("?", 1)[0].rsplit("/", 1)[1]


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_the_hub_chats_notifies_pays_and_sweeps_through_pgbouncer(isolated, pgbouncer):
    direct = isolated.dsn
    through = Through(pgbouncer.dsn(_db_name(direct)), isolated.redis_url)
    db = await asyncpg.connect(direct)
    hub = await start_hub(through, db_statement_cache=0, db_pool_max=12)
    try:
        # chat both ways
        agent = await online_agent(hub, db, "alice", ["payment"])
        user = await hub.client(uid(), name="Zhang San")
        opened = await user.request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "转账失败了"}
        )
        assert opened["status"] == "assigned"
        cid = opened["conversation_id"]
        await agent.expect("chat.assigned", conversation_id=cid)
        ack = await agent.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1", "text": "您好"}
        )
        assert ack["seq"] == 2
        assert (await user.expect("message", conversation_id=cid, seq=2))["text"] == "您好"
        ack = await user.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "u1", "text": "谢谢"}
        )
        assert (await agent.expect("message", conversation_id=cid, seq=3))["text"] == "谢谢"

        # a notification from a payments event on the bus, stored through PgBouncer
        someone = uid()
        phone = await hub.client(someone)
        await publish_signed(
            through.redis_url,
            [
                {
                    "event_id": f"ev-{uuid.uuid4().hex}",
                    "type": "transaction.status",
                    "user_id": someone,
                    "occurred_at": "2026-11-25T08:00:00+00:00",
                    "transaction_id": f"tx_{uuid.uuid4().hex[:16]}",
                    "status": "succeeded",
                    "amount": "12.50",
                    "currency": "CNY",
                    "speed": "instant",
                }
            ],
        )
        assert (await phone.expect("notification", timeout=15))["seq"] == 1

        # a payment: the ledger, the outbox and its relay all through PgBouncer
        payer = uid()
        await add_account(direct, payer, "Poor", "5.00")
        await add_account(direct, "shop-pgb", "Shop", "0.00")
        device = await hub.client(payer)
        async with hub.http(hub.token(payer)) as http:
            r = await http.post(
                "/api/payments",
                json={"to_account": "shop-pgb", "amount": "50.00", "speed": "instant",
                      "idempotency_key": uuid.uuid4().hex},
            )  # fmt: skip
        assert r.status_code == 202 and r.json()["reason"] == "insufficient_balance"
        n = await device.expect("notification", timeout=15)
        assert n["data"]["status"] == "failed"

        # the sweeper: a console that vanished an hour ago is marked away, and it samples
        await agents.upsert(db, username="bob", password="pw-bob", name="Bob", skills=["x"],
                            capacity=1, supervisor=False)  # fmt: skip
        await db.execute(
            "update agents set status = 'online', status_at = now() - interval '1 hour'"
            " where id = 'bob'"
        )
        deadline = time.monotonic() + 15
        while await db.fetchval("select status from agents where id = 'bob'") != "away":
            assert time.monotonic() < deadline, "the sweeper did not run through PgBouncer"
            await asyncio.sleep(0.1)
        assert await db.fetchval("select count(*) from queue_samples") >= 1
        for c in (agent, user, phone, device):
            await c.close()
    finally:
        await hub.stop()
        await db.close()


async def test_the_sweep_lock_is_one_holder_at_a_time_through_pgbouncer(isolated, pgbouncer):
    """Two pools through PgBouncer: while one transaction holds the lock the other is
    refused, and after it ends the lock is free: nothing stays held by a server session."""
    dsn = pgbouncer.dsn(_db_name(isolated.dsn), pgbouncer="1")
    a = await create_pool(dsn, min_size=1, max_size=3)
    b = await create_pool(dsn, min_size=1, max_size=3)
    try:
        for _ in range(5):
            async with a.acquire() as ca, locks.try_hold(ca, SWEEP_LOCK) as mine:
                assert mine
                async with b.acquire() as cb, locks.try_hold(cb, SWEEP_LOCK) as theirs:
                    assert not theirs
            async with b.acquire() as cb, locks.try_hold(cb, SWEEP_LOCK) as theirs:
                assert theirs
        # many at once: never two inside, and no lock is left behind
        inside = 0
        most = 0
        wins = 0

        async def attempt(pool):
            nonlocal inside, most, wins
            async with pool.acquire() as c, locks.try_hold(c, SWEEP_LOCK) as mine:
                if mine:
                    inside += 1
                    wins += 1
                    most = max(most, inside)
                    await asyncio.sleep(0.01)
                    inside -= 1

        await asyncio.gather(*(attempt(p) for _ in range(20) for p in (a, b)))
        assert most == 1 and wins >= 1
        direct = await asyncpg.connect(isolated.dsn)
        try:
            left = await direct.fetchval(
                "select count(*) from pg_locks where locktype = 'advisory' and database ="
                " (select oid from pg_database where datname = current_database())"
            )  # pg_locks spans the cluster: the session's other hubs lock in their own database
            assert left == 0
        finally:
            await direct.close()
    finally:
        await a.close()
        await b.close()


async def test_migrations_twice_at_once_through_pgbouncer(services, pgbouncer):
    name = "pgb_mig_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(services.dsn)
    await admin.execute(f"create database {name}")
    try:
        dsn = pgbouncer.dsn(name, pgbouncer="1")  # the DSN flag turns the cache off
        first, second = await asyncio.gather(migrate(dsn), migrate(dsn))
        every = [version for version, _ in migration_files()]
        assert sorted(first + second) == sorted(every)  # each applied once, by one of them
        assert await migrate(dsn) == []
        db = await asyncpg.connect(services.dsn.replace("/supporthub?", f"/{name}?"))
        try:
            stored = [r["version"] for r in await db.fetch("select version from schema_migrations")]
        finally:
            await db.close()
        assert sorted(stored) == sorted(every)
    finally:
        # PgBouncer keeps server sessions to the database: drop it by force
        await admin.execute(f"drop database {name} with (force)")
        await admin.close()
