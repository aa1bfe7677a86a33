"""The `supporthub` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys

from supporthub_core.settings import Settings

log = logging.getLogger("supporthub")

DEMO_AGENTS = [
    # username, password, name, skills, capacity, supervisor
    ("alice", "alice123", "Alice 王丽", ["account", "payment", "arrival", "technical", "feedback", "other"], 4, False),
    ("bob", "bob123", "Bob 陈波", ["security", "account", "payment"], 3, False),
    ("sam", "sam123", "Sam 李森 (supervisor)", ["account", "payment", "arrival", "security", "technical", "feedback", "other"], 5, True),
]  # fmt: skip


def _settings(args) -> Settings:
    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return Settings(**overrides)


def _loop_factory():
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return asyncio.new_event_loop


def _run(coro):
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


async def _migrate(dsn: str) -> list[str]:
    from supporthub_core.db import migrate

    return await migrate(dsn)


async def _seed_demo(dsn: str) -> None:
    import asyncpg

    from hub.store import agents

    db = await asyncpg.connect(dsn)
    try:
        for username, password, name, skills, capacity, supervisor in DEMO_AGENTS:
            if not await agents.has_username(db, username):
                await agents.upsert(db, username=username, password=password, name=name,
                                    skills=skills, capacity=capacity, supervisor=supervisor)  # fmt: skip
    finally:
        await db.close()
    try:
        from payments.seed import seed_demo_accounts
    except ImportError:
        return
    await seed_demo_accounts(dsn)


def _raise_open_files_limit() -> None:
    """One address may hold 10,000 sockets: lift the soft file limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1_048_576), hard))
    except (ImportError, ValueError, OSError):
        pass


def serve_app(app, settings: Settings, node) -> None:
    import uvicorn

    _raise_open_files_limit()
    gc.set_threshold(10_000, 50, 100)  # fewer young-generation passes per message burst

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            # everything allocated so far lives as long as the process: keep the cyclic
            # collector from walking it again and again under load
            gc.collect()
            gc.freeze()

        async def shutdown(self, sockets=None):
            # close our sockets with 1001 first so clients reconnect to another node
            await node.drain()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        loop="uvloop" if _has_uvloop() else "asyncio",
        http="httptools" if _has("httptools") else "h11",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        backlog=4096,
        proxy_headers=False,  # the hub reads them itself, from trusted proxies only
    )
    Server(config).run()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_uvloop() -> bool:
    return _has("uvloop")


def cmd_web(args, *, dev: bool, with_payments: bool) -> None:
    from hub.app import create_app
    from hub.logs import setup_logging
    from hub.runtime import start_runtime

    settings = _settings(args)
    setup_logging(settings.log_format or ("text" if dev else "json"))
    rt = start_runtime(settings, dev=dev)
    try:
        applied = _run(_migrate(rt.dsn))
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        if dev:
            _run(_seed_demo(rt.dsn))
        app = create_app(settings, dsn=rt.dsn, redis_url=rt.redis_url, secret=rt.secret,
                         events_key=rt.events_key, with_payments=with_payments, dev=dev,
                         vapid_private_key=rt.vapid_private_key)  # fmt: skip
        if dev:
            _print_dev_banner(settings)
        serve_app(app, settings, app.state.hub.node)
    finally:
        rt.stop()


def _print_dev_banner(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "supporthub dev is running",
        f"  agents' console : {base}/console/",
        f"  user web chat   : {base}/widget/",
        f"  health          : {base}/healthz",
        "  demo agents     : " + ", ".join(f"{u}/{p}" for u, p, *_ in DEMO_AGENTS),
        "  demo users      : the web chat signs you in as a demo user (try ?user=u-alice)",
        "",
    ]
    print("\n".join(lines), flush=True)


def cmd_payments(args) -> None:
    from hub.logs import setup_logging
    from hub.runtime import start_runtime

    settings = _settings(args)
    setup_logging(settings.log_format or "json")
    rt = start_runtime(settings, dev=False)
    _run(_migrate(rt.dsn))
    from hub.services.broadcasts import announcer
    from hub.services.verification import passed_verification
    from payments.service import serve_standalone

    try:
        serve_standalone(settings, rt, announcer(rt.secret), passed_verification)
    finally:
        rt.stop()


def cmd_migrate(args) -> None:
    from hub.logs import setup_logging
    from hub.runtime import start_runtime

    setup_logging("text")
    rt = start_runtime(Settings(), dev=True, need_secret=False)
    try:
        applied = _run(_migrate(rt.dsn))
    finally:
        rt.stop()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


def cmd_token(args) -> None:
    from hub.runtime import resolve_secret
    from supporthub_core.auth import issue_token

    secret = resolve_secret(Settings(), dev=True)
    print(issue_token(secret, args.sub, args.role, name=args.name, ttl=args.ttl))


def cmd_agent_add(args) -> None:
    from hub.runtime import start_runtime

    rt = start_runtime(Settings(), dev=True, need_secret=False)

    async def go():
        import asyncpg

        from hub.store import agents

        await _migrate(rt.dsn)
        db = await asyncpg.connect(rt.dsn)
        try:
            skills = [s.strip() for s in args.skills.split(",") if s.strip()]
            row = await agents.upsert(db, username=args.username, password=args.password, name=args.name,
                                      skills=skills, capacity=args.capacity, supervisor=args.supervisor)  # fmt: skip
            print(
                f"agent {row['username']} saved (skills: {', '.join(row['skills'])}, capacity {row['capacity']})"
            )
        finally:
            await db.close()

    try:
        _run(go())
    finally:
        rt.stop()


def cmd_agent_access(args) -> None:
    """`agent disable` / `agent enable`: as a supervisor's REST call does, from here."""
    from hub.services.agent_access import set_disabled
    from hub.store import agents
    from supporthub_core.audit import AuditEntry
    from supporthub_core.errors import NotFound

    disabled = args.agent_command == "disable"

    async def go(pool, redis, secret):
        async with pool.acquire() as db:
            agent_id = await agents.id_of(db, args.username)
        if agent_id is None:
            raise NotFound(f"no such agent: {args.username}")
        actor = AuditEntry("system", "cli", "")
        return await set_disabled(pool, redis, secret, agent_id, disabled, actor, args.reason)

    done = _run(_with_store(go))
    if disabled:
        print(f"agent {args.username} disabled: its sockets are closed on every node,"
              f" {len(done['requeued'])} chat(s) requeued")  # fmt: skip
    else:
        print(f"agent {args.username} enabled")


def cmd_account_add(args) -> None:
    from hub.runtime import start_runtime

    rt = start_runtime(Settings(), dev=True, need_secret=False)

    async def go():
        from payments.seed import add_account

        await _migrate(rt.dsn)
        account = await add_account(rt.dsn, args.user, args.name, args.balance)
        print(f"account for {args.user} saved: balance {account['balance']} {account['currency']}")

    try:
        _run(go())
    finally:
        rt.stop()


async def _with_store(fn):
    """Run `fn(pool, redis, secret)` against the configured (or embedded) servers."""
    import redis.asyncio as aioredis

    from hub.runtime import resolve_secret, start_runtime
    from supporthub_core.db import create_pool

    rt = start_runtime(Settings(), dev=True, need_secret=False)
    try:
        await _migrate(rt.dsn)
        pool = await create_pool(rt.dsn, min_size=1, max_size=2)
        redis = aioredis.from_url(rt.redis_url)
        try:
            return await fn(pool, redis, resolve_secret(Settings(), dev=True))
        finally:
            await redis.aclose()
            await pool.close()
    finally:
        rt.stop()


def cmd_broadcast(args) -> None:
    from hub.services.broadcasts import announce

    async def go(pool, redis, secret):
        return await announce(pool, redis, secret, args.title, args.body, {})

    bid = _run(_with_store(go))
    print(f"broadcast {bid} stored; connected users get it now, the others when they connect")


def cmd_maintenance(args) -> None:
    from hub.services.broadcasts import announce
    from payments import ledger
    from payments.api import MAINTENANCE_BODY, MAINTENANCE_TITLE

    on = args.state == "on"

    async def go(pool, redis, secret):
        async with pool.acquire() as db:
            state = await ledger.set_maintenance(db, on, args.message, "cli")
        if on and state["changed"]:
            await announce(pool, redis, secret, MAINTENANCE_TITLE, args.message or MAINTENANCE_BODY,
                           {"maintenance": True})  # fmt: skip
        return state

    state = _run(_with_store(go))
    print(f"maintenance {'on' if state['active'] else 'off'}")


def cmd_simulate(args) -> None:
    from hub.simulate import main as simulate_main

    simulate_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supporthub", description="support chat and notification hub"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_text in [
        ("dev", "everything in one process, embedded PostgreSQL and Redis, demo data"),
        ("serve", "the hub web process"),
        ("payments", "the payments API and its workers"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host")
        p.add_argument("--port", type=int)

    sub.add_parser("migrate", help="apply database migrations (idempotent)")

    p = sub.add_parser("token", help="print a signed token")
    p.add_argument("--sub", required=True)
    p.add_argument("--role", required=True, choices=["user", "agent", "supervisor", "service"])
    p.add_argument("--name")
    p.add_argument("--ttl", type=int, default=3600)

    p = sub.add_parser("agent", help="manage agents")
    agent_sub = p.add_subparsers(dest="agent_command", required=True)
    a = agent_sub.add_parser("add", help="create or update an agent")
    a.add_argument("--username", required=True)
    a.add_argument("--password", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--skills", default="")
    a.add_argument("--capacity", type=int, default=3)
    a.add_argument("--supervisor", action="store_true")
    for name, help_text in [
        ("disable", "disconnect an agent on every node and refuse its logins"),
        ("enable", "let a disabled agent sign in again"),
    ]:
        a = agent_sub.add_parser(name, help=help_text)
        a.add_argument("--username", required=True)
        a.add_argument("--reason", help="for the audit log")

    p = sub.add_parser("account", help="manage payment accounts")
    account_sub = p.add_subparsers(dest="account_command", required=True)
    a = account_sub.add_parser("add", help="create a user with a payment account")
    a.add_argument("--user", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--balance", required=True)

    p = sub.add_parser("broadcast", help="send a system notice to every user")
    p.add_argument("--title", required=True)
    p.add_argument("--body", required=True)

    p = sub.add_parser(
        "maintenance", help="switch payments maintenance on or off (tells every user)"
    )
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--message")

    p = sub.add_parser("simulate", help="drive realistic payment traffic")
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--rate", type=float, default=5, help="payments a second")
    return parser


def main(argv: list[str] | None = None) -> None:
    from supporthub_core.errors import HubError

    args = build_parser().parse_args(argv)
    try:
        with _cleanup_on_sigterm():
            _dispatch(args)
    except HubError as exc:
        print(f"supporthub: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None


class _Terminated(BaseException):
    pass


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


@contextlib.contextmanager
def _cleanup_on_sigterm():
    """uvicorn re-raises SIGTERM once it has shut down; with the default handler that would
    kill the process before `finally` stops the embedded PostgreSQL and Redis. Unwind
    instead, then die of SIGTERM as the caller expects."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    terminated = False
    try:
        yield
    except _Terminated:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _dispatch(args) -> None:
    match args.command:
        case "dev":
            cmd_web(args, dev=True, with_payments=True)
        case "serve":
            cmd_web(args, dev=False, with_payments=False)
        case "payments":
            cmd_payments(args)
        case "migrate":
            cmd_migrate(args)
        case "token":
            cmd_token(args)
        case "agent" if args.agent_command in ("disable", "enable"):
            cmd_agent_access(args)
        case "agent":
            cmd_agent_add(args)
        case "account":
            cmd_account_add(args)
        case "broadcast":
            cmd_broadcast(args)
        case "maintenance":
            cmd_maintenance(args)
        case "simulate":
            cmd_simulate(args)


if __name__ == "__main__":
    main()
