"""A deployment of real processes for the fault suite: a PostgreSQL and a Redis of the
test's own (to stop, restart, flush at will), `supporthub serve` nodes and a
`supporthub payments` process, each a child process started, killed (-9) and restarted
by pid."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis

from hub.embedded import EmbeddedPostgres, EmbeddedRedis
from supporthub_core.auth import issue_token
from supporthub_core.db import migrate
from tests.conftest import ROOT, SECRET, free_port


class Proc:
    """One `supporthub <command>` child process on a port of its own."""

    def __init__(self, stack: Stack, command: str, name: str, env: dict[str, str]) -> None:
        self.stack = stack
        self.command = command
        self.name = name
        self.port = free_port()
        self.env = env
        self.log = stack.root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def spawn(self) -> None:
        if self.alive():
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "HUB_DATABASE_URL": self.stack.dsn,
            "HUB_REDIS_URL": self.stack.redis_url,
            "HUB_SECRET": SECRET,
            "HUB_PORT": str(self.port),
            "HUB_LOG_FORMAT": "text",
            "HUB_ATTACHMENT_DIR": str(self.stack.root / "attachments"),
            **self.env,
        })  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", self.command], cwd=ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1

    async def wait_ready(
        self, timeout: float = 60, path: str = "/readyz", *, supervised: bool = False
    ) -> None:
        """Until it answers `path` with 200; a process that ended fails at once, unless
        `supervised` (Stack.supervise starts it again)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if not supervised:
                    assert self.proc is not None and self.proc.poll() is None, self.output()
                try:
                    if (await http.get(self.url + path, timeout=2)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} did not become ready:\n{self.output()[-3000:]}")

    async def start(self) -> Proc:
        self.spawn()
        await self.wait_ready(path="/healthz" if self.command == "payments" else "/readyz")
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = EmbeddedPostgres(root / "pg", durable=True)  # a crash must not lose commits
        self.redis = EmbeddedRedis(root / "r")
        self.procs: list[Proc] = []

    @property
    def dsn(self) -> str:
        return self.pg.dsn

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def token(self, sub: str, role: str = "user", name: str | None = None) -> str:
        return issue_token(SECRET, sub, role, name=name, ttl=3600)

    def node(self, name: str | None = None, **env: str) -> Proc:
        name = name or f"node-{len(self.procs) + 1}"
        defaults = {
            "HUB_NODE_ID": name,
            "HUB_BUS_PROBE_INTERVAL_S": "0.5",
            "HUB_BUS_PROBE_TIMEOUT_S": "2",
            "HUB_POSITION_CHECK_S": "2",
            "HUB_ROUTING_SWEEP_S": "0.5",
            "HUB_AGENT_GRACE_S": "3",
            "HUB_OUTBOX_POLL_S": "0.2",
        }
        payments = next((p for p in self.procs if p.command == "payments"), None)
        if payments is not None:
            defaults["HUB_PAYMENTS_URL"] = payments.url
        proc = Proc(self, "serve", name, {**defaults, **env})
        self.procs.append(proc)
        return proc

    def payments(self, **env: str) -> Proc:
        defaults = {
            "HUB_RISK_VELOCITY_MAX": "1000000",
            "HUB_RISK_FAILURES_MAX": "1000000",
            "HUB_SETTLEMENT_DELAY_S": "1",
            "HUB_OUTBOX_POLL_S": "0.1",
        }
        proc = Proc(self, "payments", "payments", {**defaults, **env})
        self.procs.append(proc)
        return proc

    async def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def redis_command(self, *args: str) -> object:
        client = aioredis.from_url(self.redis_url)
        try:
            return await client.execute_command(*args)
        finally:
            await client.aclose()

    def restart_pg(self) -> None:
        self.pg.stop("fast")
        self.pg.start()

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.redis.stop()
        self.pg.stop("immediate")

    async def supervise(self, restart_s: float = 1.0) -> None:
        """What systemd does for the units in deploy/: start again, `restart_s` later,
        any process that ended (a kill, or an exit because Redis or PostgreSQL was
        unreachable when it started). Runs until cancelled."""
        dead_since: dict[int, float] = {}
        while True:
            now = time.monotonic()
            for proc in self.procs:
                if proc.proc is None or proc.alive():
                    dead_since.pop(id(proc), None)
                elif now - dead_since.setdefault(id(proc), now) >= restart_s:
                    proc.spawn()
                    dead_since.pop(id(proc), None)
            await asyncio.sleep(0.2)

    async def statements(self) -> int:
        """Statements PostgreSQL has run so far, all clients (pg_stat_statements)."""
        rows = await self.sql("select coalesce(sum(calls), 0)::bigint n from pg_stat_statements")
        return int(rows[0]["n"])


@asynccontextmanager
async def stack(*, statements: bool = False) -> AsyncIterator[Stack]:
    """A PostgreSQL (migrated) and a Redis of their own, and whatever processes the test
    starts on them; all of it ended, by pid, afterwards. `statements`: with
    pg_stat_statements, to count what the database was asked."""
    root = Path(tempfile.mkdtemp(prefix="shf-", dir="/tmp"))
    s = Stack(root)
    try:
        s.pg.start()
        if statements:
            await s.sql("alter system set shared_preload_libraries = 'pg_stat_statements'")
            s.restart_pg()
            await s.sql("create extension if not exists pg_stat_statements")
        s.redis.start()
        await migrate(s.dsn)
        yield s
    finally:
        s.close()
        if os.environ.get("SUPPORTHUB_FAULT_LOGS"):
            kept = Path(os.environ["SUPPORTHUB_FAULT_LOGS"]) / f"{root.name}-{uuid.uuid4().hex[:4]}"
            shutil.copytree(
                root, kept, ignore=shutil.ignore_patterns("pg", "r"), dirs_exist_ok=True
            )
        shutil.rmtree(root, ignore_errors=True)
