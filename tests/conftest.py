"""Fixtures: a private embedded PostgreSQL and Redis for the whole session (never the
machine's own servers), and real hub servers on free ports."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

from hub.app import create_app
from hub.embedded import PG_DB, EmbeddedPostgres, EmbeddedRedis
from supporthub_core.auth import issue_token
from supporthub_core.db import migrate
from supporthub_core.settings import Settings
from tests.client import HubClient

SECRET = "test-secret-" + uuid.uuid4().hex
ROOT = Path(__file__).resolve().parent.parent
TABLES_TO_KEEP = {"schema_migrations", "audit_log"}  # the audit log refuses TRUNCATE


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "the chaos test (tests/test_chaos.py)")
    group.addoption("--chaos-seconds", type=float, default=None,
                    help="how long faults are injected (default 15, or SUPPORTHUB_CHAOS_SECONDS)")  # fmt: skip
    group.addoption("--chaos-seed", type=int, default=None,
                    help="the schedule's seed (default 1, or SUPPORTHUB_CHAOS_SEED)")  # fmt: skip


@dataclass
class Services:
    root: Path
    pg: EmbeddedPostgres
    redis: EmbeddedRedis

    @property
    def dsn(self) -> str:
        return self.pg.dsn

    @property
    def redis_url(self) -> str:
        return self.redis.url


def tracked_changes() -> set[str] | None:
    """`git status --porcelain` of the tracked files; None outside a git work tree."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return set(result.stdout.splitlines())


@pytest.fixture(scope="session", autouse=True)
def work_tree_untouched():
    """A test run leaves the tracked files as it found them (screenshots, fixtures and
    caches go to temporary directories): fails the run at its end otherwise."""
    before = tracked_changes()
    yield
    after = tracked_changes()
    if before is not None and after is not None and after != before:
        changed = sorted(after ^ before)
        pytest.fail("the tests changed tracked files:\n" + "\n".join(changed), pytrace=False)


@pytest.fixture(scope="session")
def services():
    # short path: Unix socket paths are limited to ~100 bytes
    root = Path(tempfile.mkdtemp(prefix="sh-", dir="/tmp"))
    pg = EmbeddedPostgres(root / "pg", durable=False)
    redis = EmbeddedRedis(root / "r")
    pg.start()
    redis.start()
    asyncio.run(migrate(pg.dsn))
    yield Services(root, pg, redis)
    redis.stop()
    pg.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(**overrides) -> Settings:
    base = dict(
        secret=SECRET,
        host="127.0.0.1",
        port=0,
        bus_probe_interval_s=0.5,
        bus_probe_timeout_s=2.0,
        routing_sweep_s=0.5,
        agent_grace_s=2.0,
        settlement_delay_s=1.0,
        outbox_poll_s=0.1,
        # a loaded machine answers from Redis in more than the default half second; the
        # limits would count in-process then, beside what Redis counted (tests of that
        # fallback set their own)
        limits_timeout_s=5.0,
    )
    base.update(overrides)
    return Settings(**base)


@dataclass
class HubServer:
    url: str
    ws_url: str
    app: object
    server: uvicorn.Server
    task: asyncio.Task
    secret: str = SECRET

    @property
    def hub(self):
        return self.app.state.hub

    @property
    def node(self):
        return self.app.state.hub.node

    def token(
        self, sub: str, role: str = "user", *, name: str | None = None, ttl: int = 3600
    ) -> str:
        return issue_token(self.secret, sub, role, name=name, ttl=ttl)

    async def client(self, sub: str | None = None, role: str = "user", **kwargs) -> HubClient:
        sub = sub or f"u-{uuid.uuid4().hex[:8]}"
        return await HubClient.connect(
            self.ws_url, self.token(sub, role, name=kwargs.pop("name", None)), **kwargs
        )

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=20)

    async def stop(self, timeout: float = 60.0) -> None:
        """Stop the hub: uvicorn closes the sockets, then the lifespan stops the node. The
        bound is generous (a loaded machine runs a shutdown at a fraction of a core); a hub
        still stopping after it fails with the stacks of what it was waiting on."""
        self.server.should_exit = True
        done, _ = await asyncio.wait([self.task], timeout=timeout)
        if not done:
            stacks = io.StringIO()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    print(f"--- task {task.get_name()}", file=stacks)
                    task.print_stack(limit=15, file=stacks)
            self.task.cancel()
            raise AssertionError(
                f"the hub did not stop in {timeout} s; tasks:\n{stacks.getvalue()}"
            )
        self.task.result()


async def start_hub(services: Services, **overrides) -> HubServer:
    dev = overrides.pop("dev", True)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    overrides.setdefault("port", port)
    # files of every hub of a test share one directory, as nodes of one deployment must
    root = getattr(services, "root", None) or Path(tempfile.gettempdir()) / "sh-attachments"
    overrides.setdefault("attachment_dir", root / "attachments")
    settings = make_settings(**overrides)
    app = create_app(
        settings, dsn=services.dsn, redis_url=services.redis_url, secret=SECRET,
        with_payments=True, dev=dev,
    )  # fmt: skip
    config = uvicorn.Config(
        app, ws="websockets-sansio", ws_max_size=settings.max_frame_bytes, lifespan="on",
        ws_per_message_deflate=settings.ws_compression, ws_ping_interval=None,
        log_config=None, access_log=False, proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("hub did not start")
        await asyncio.sleep(0.02)
    return HubServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", app, server, task)


@dataclass
class IsolatedServices:
    """A database of its own in the session's cluster and a Redis of its own: what a test
    needs when no other hub (the session's) may see its events."""

    dsn: str
    redis: EmbeddedRedis
    root: Path

    @property
    def redis_url(self) -> str:
        return self.redis.url


@pytest.fixture
async def isolated(services):
    name = "iso_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(services.dsn)
    try:
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    dsn = services.dsn.replace(f"/{PG_DB}?", f"/{name}?")
    await migrate(dsn)
    redis = EmbeddedRedis(services.root / name)
    redis.start()
    try:
        yield IsolatedServices(dsn, redis, services.root / name)
    finally:
        redis.destroy()
        admin = await asyncpg.connect(services.dsn)
        try:
            await admin.execute(f"drop database {name} with (force)")
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def hub(services):
    server = await start_hub(services)
    yield server
    await server.stop()


@pytest.fixture
async def db(services):
    conn = await asyncpg.connect(services.dsn)
    from supporthub_core.db import init_connection

    await init_connection(conn)
    yield conn
    await conn.close()


async def truncate_all(dsn: str) -> None:
    """Empty every table. Retried: a running hub's writer may hold row locks in an order
    that deadlocks with TRUNCATE's table locks, and PostgreSQL then fails one side."""
    for attempt in range(10):
        try:
            await _truncate(dsn)
            return
        except asyncpg.DeadlockDetectedError:
            if attempt == 9:
                raise
            await asyncio.sleep(0.1)


async def _truncate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
            if r["tablename"] not in TABLES_TO_KEEP
        ]
        if tables:
            await conn.execute("truncate " + ", ".join(tables) + " restart identity cascade")
    finally:
        await conn.close()


@pytest.fixture
async def clean(services):
    """A store with no conversations, agents or accounts left over from other tests, and
    no counts of the shared limits (hub.limits: every test signs in from 127.0.0.1)."""
    await truncate_all(services.dsn)
    await forget_limits(services.redis_url)
    yield


async def forget_limits(redis_url: str) -> None:
    from hub.limits import KEY_PREFIX

    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{KEY_PREFIX}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def reap(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Make sure `proc` has ended (killed if it has not) and close its pipes, which are
    otherwise left to the garbage collector."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
