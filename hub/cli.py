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
    # username, password, name, skills, capacity, supervisor, security back-up
    ("alice", "alice123", "Alice 王丽", ["account", "payment", "arrival", "technical", "feedback", "other"], 4, False, True),
    ("bob", "bob123", "Bob 陈波", ["security", "account", "payment"], 3, False, False),
    ("sam", "sam123", "Sam 李森 (supervisor)", ["account", "payment", "arrival", "security", "technical", "feedback", "other"], 5, True, False),
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
    """Apply the migrations; PostgreSQL not answering is a one-line error (exit code 4)."""
    from hub.preflight import check_postgres
    from supporthub_core.db import migrate

    await check_postgres(dsn)
    return await migrate(dsn, statement_cache=Settings().db_statement_cache)


async def _seed_demo(dsn: str) -> None:
    from hub.store import agents
    from hub.store import mail as mail_store
    from supporthub_core.db import connect

    db = await connect(dsn, Settings().db_statement_cache)
    try:
        for username, password, name, skills, capacity, supervisor, backup in DEMO_AGENTS:
            if not await agents.has_username(db, username):
                await agents.upsert(db, username=username, password=password, name=name,
                                    skills=skills, capacity=capacity, supervisor=supervisor,
                                    security_backup=backup)  # fmt: skip
        for user_id, address in DEMO_EMAILS:  # the e-mail channel: verified addresses
            await mail_store.add_address(db, user_id, address, verified=True)
    finally:
        await db.close()
    try:
        from payments.seed import seed_demo_accounts
    except ImportError:
        return
    await seed_demo_accounts(dsn)


DEMO_EMAILS = [
    ("u-alice", "alice@demo.example"),
    ("u-bob", "bob@demo.example"),
    ("u-carol", "carol@demo.example"),
    ("u-dave", "dave@demo.example"),
]


def _raise_open_files_limit() -> None:
    """One address may hold 10,000 sockets: lift the soft file limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1_048_576), hard))
    except (ImportError, ValueError, OSError):
        pass


def serve_app(app, settings: Settings, node, sock=None) -> None:
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
        # the hub pings every socket itself, from one timer (hub.ws.keepalive)
        ws_ping_interval=None,
        ws_ping_timeout=None,
        loop="uvloop" if _has_uvloop() else "asyncio",
        http="httptools" if _has("httptools") else "h11",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        backlog=4096,
        proxy_headers=False,  # the hub reads them itself, from trusted proxies only
    )
    server = Server(config)
    server.run(sockets=[sock] if sock is not None else None)
    if not server.started:
        from supporthub_core.exits import CommandError

        raise CommandError("the server did not start (the log above says why)")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_uvloop() -> bool:
    return _has("uvloop")


def cmd_web(args, *, dev: bool, with_payments: bool) -> None:
    from hub.app import create_app
    from hub.logs import setup_logging
    from hub.preflight import check_redis, listen_socket
    from hub.runtime import start_runtime

    settings = _settings(args)
    setup_logging(settings.log_format or ("text" if dev else "json"))
    # the port first: a second `dev` must say so before it starts anything or prints a banner
    sock = listen_socket(settings.host, settings.port, args.command)
    try:
        rt = start_runtime(settings, dev=dev, command=args.command, adopt=args.adopt,
                           url=_own_url(settings))  # fmt: skip
        try:
            applied = _run(_migrate(rt.dsn))
            _run(check_redis(rt.redis_url))
            if applied:
                log.info("migrations applied: %s", ", ".join(applied))
            if dev:
                _run(_seed_demo(rt.dsn))
            app = create_app(settings, dsn=rt.dsn, redis_url=rt.redis_url, secret=rt.secret,
                             events_key=rt.events_key, with_payments=with_payments, dev=dev,
                             vapid_private_key=rt.vapid_private_key)  # fmt: skip
            if dev:
                _print_dev_banner(settings, rt.data_dir)
            serve_app(app, settings, app.state.hub.node, sock)
        finally:
            rt.stop()
    finally:
        sock.close()


def _own_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _print_dev_banner(settings: Settings, data_dir=None) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "supporthub dev is running",
        f"  agents' console : {base}/console/",
        f"  user web chat   : {base}/widget/",
        f"  health          : {base}/healthz",
        "  demo agents     : " + ", ".join(f"{u}/{p}" for u, p, *_ in DEMO_AGENTS),
        "  demo users      : the web chat signs you in as a demo user (try ?user=u-alice)",
        f"  e-mail          : mail from alice@demo.example to {settings.support_email};"
        f" sent mail at {base}/dev/mail",
        f"  data directory  : {data_dir}" if data_dir else "",
        "  self-test       : supporthub doctor   (stop: Ctrl-C)",
        "",
    ]
    print("\n".join(lines), flush=True)


def cmd_payments(args) -> None:
    from hub.logs import setup_logging
    from hub.preflight import check_redis, listen_socket
    from hub.runtime import start_runtime

    settings = _settings(args)
    setup_logging(settings.log_format or "json")
    sock = listen_socket(settings.host, settings.port, args.command)
    try:
        rt = start_runtime(settings, dev=False, command="payments", adopt=args.adopt,
                           url=_own_url(settings))  # fmt: skip
        try:
            _run(_migrate(rt.dsn))
            _run(check_redis(rt.redis_url))
            from hub.services.broadcasts import announcer
            from hub.services.verification import passed_verification
            from payments.service import serve_standalone

            serve_standalone(settings, rt, announcer(rt.secret), passed_verification, sock=sock)
        finally:
            rt.stop()
    finally:
        sock.close()


def cmd_migrate(args) -> None:
    from hub.logs import setup_logging
    from hub.runtime import start_runtime

    setup_logging("text")
    rt = start_runtime(Settings(), dev=True, need_secret=False, need_redis=False,
                       command="migrate", create=args.init)  # fmt: skip
    try:
        applied = _run(_migrate(rt.dsn))
    finally:
        rt.stop()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


def cmd_token(args) -> None:
    from hub.datadir import open_data_dir
    from hub.runtime import resolve_secret
    from supporthub_core.auth import issue_token

    settings = Settings()
    data_dir = None if settings.secret else open_data_dir(settings, create=args.init)
    secret = resolve_secret(settings, dev=True, data_dir=data_dir)
    print(issue_token(secret, args.sub, args.role, name=args.name, ttl=args.ttl))


def cmd_agent_add(args) -> None:
    from hub.runtime import start_runtime

    rt = start_runtime(Settings(), dev=True, need_secret=False, need_redis=False,
                       command="agent add", create=args.init)  # fmt: skip

    async def go():
        from hub.store import agents
        from supporthub_core.db import connect

        await _migrate(rt.dsn)
        db = await connect(rt.dsn, Settings().db_statement_cache)
        try:
            skills = [s.strip() for s in args.skills.split(",") if s.strip()]
            row = await agents.upsert(db, username=args.username, password=args.password, name=args.name,
                                      skills=skills, capacity=args.capacity, supervisor=args.supervisor,
                                      security_backup=args.security_backup)  # fmt: skip
            flags = [f for f in ("supervisor", "security_backup") if row[f]]
            print(
                f"agent {row['username']} saved (skills: {', '.join(row['skills'])}, capacity {row['capacity']}"
                + "".join(f", {f.replace('_', ' ')}" for f in flags)
                + ")"
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

    done = _run(_with_store(go, args))
    if disabled:
        print(f"agent {args.username} disabled: its sockets are closed on every node,"
              f" {len(done['requeued'])} chat(s) requeued")  # fmt: skip
    else:
        print(f"agent {args.username} enabled")


def cmd_account_add(args) -> None:
    from hub.runtime import start_runtime

    rt = start_runtime(Settings(), dev=True, need_secret=False, need_redis=False,
                       command="account add", create=args.init)  # fmt: skip

    async def go():
        from payments.seed import add_account

        await _migrate(rt.dsn)
        account = await add_account(rt.dsn, args.user, args.name, args.balance)
        print(f"account for {args.user} saved: balance {account['balance']} {account['currency']}")

    try:
        _run(go())
    finally:
        rt.stop()


def cmd_email_add(args) -> None:
    """A user's e-mail address (verified unless `--unverified`): mail from a verified one
    opens or continues that user's chats."""
    from hub.runtime import start_runtime
    from hub.store import mail as mail_store
    from supporthub_core.db import connect

    rt = start_runtime(Settings(), dev=True, need_secret=False, need_redis=False,
                       command="email add", create=args.init)  # fmt: skip

    async def go():
        await _migrate(rt.dsn)
        db = await connect(rt.dsn, Settings().db_statement_cache)
        try:
            await mail_store.add_address(db, args.user, args.address, verified=not args.unverified)
        finally:
            await db.close()
        state = "unverified" if args.unverified else "verified"
        print(f"{args.address.lower()} saved for {args.user} ({state})")

    try:
        _run(go())
    finally:
        rt.stop()


async def _with_store(fn, args):
    """Run `fn(pool, redis, secret)` against the configured servers, or the embedded ones
    of the data directory (those of the `dev` running there)."""
    from hub.preflight import check_redis
    from hub.runtime import start_runtime
    from supporthub_core import redis_client
    from supporthub_core.db import create_pool

    rt = start_runtime(Settings(), dev=True, command=args.command, create=args.init)
    try:
        await _migrate(rt.dsn)
        await check_redis(rt.redis_url)
        pool = await create_pool(
            rt.dsn, min_size=1, max_size=2, statement_cache=Settings().db_statement_cache
        )
        redis = redis_client.client(rt.redis_url, cluster=Settings().redis_cluster)
        try:
            return await fn(pool, redis, rt.secret)
        finally:
            await redis.aclose()
            await pool.close()
    finally:
        rt.stop()


def cmd_broadcast(args) -> None:
    from hub.services.broadcasts import announce

    async def go(pool, redis, secret):
        return await announce(pool, redis, secret, args.title, args.body, {})

    bid = _run(_with_store(go, args))
    print(f"broadcast {bid} stored; connected users get it now, the others when they connect")


def cmd_maintenance(args) -> None:
    from datetime import datetime

    from hub.rules.campaigns import local_send_at
    from hub.services.broadcasts import announce
    from payments import ledger
    from payments.api import maintenance_notice

    on = args.state == "on"
    window = {}
    for name, value in (("starts_at", args.start), ("expected_end", args.until)):
        if value:
            try:
                window[name] = local_send_at(datetime.fromisoformat(value), args.tz)
            except ValueError as exc:
                raise SystemExit(f"maintenance: {exc}") from exc
    functions = [f for f in (args.functions or "").split(",") if f]
    if any(f not in ("instant", "standard") for f in functions):
        raise SystemExit("maintenance: --functions takes instant, standard or both")

    async def go(pool, redis, secret):
        async with pool.acquire() as db:
            state = await ledger.set_maintenance(db, on, args.message, "cli", functions=functions,
                                                 **window)  # fmt: skip
        if state["changed"] or (on and (window or functions)):
            title, body, data = maintenance_notice(args.message, state)
            if on or state.get("expected_end") or state.get("functions"):
                await announce(pool, redis, secret, title, body, data)
        return state

    state = _run(_with_store(go, args))
    print(f"maintenance {'on' if state['active'] else 'off'}")


def cmd_doctor(args) -> None:
    from hub.doctor import Doctor, probe_secret, report
    from hub.simulate import default_url

    settings = Settings()
    secret = probe_secret(settings)
    urls = [u.rstrip("/") for u in (args.url or [default_url()])]
    print(f"supporthub doctor: {', '.join(urls)}", flush=True)
    doctor = Doctor(urls, args.payments_url, secret, timeout=args.timeout, max_skew=args.max_skew)
    code = report(_run(doctor.run()))
    if code:
        raise SystemExit(code)


def cmd_chat(args: argparse.Namespace) -> None:
    from hub.simulate import default_url
    from supporthub_client.terminal import ChatOptions, chat

    opts = ChatOptions(
        url=(args.url or default_url()).rstrip("/"), user=args.user, name=args.name,
        token=args.token, topic=args.topic, handoff=args.handoff, codec=args.codec,
        lang=args.lang, connect_timeout=args.connect_timeout,
    )  # fmt: skip
    code = _run(chat(opts))
    if code:
        raise SystemExit(code)


def cmd_simulate(args) -> None:
    from hub.simulate import main as simulate_main

    simulate_main(args)


HOST_HELP = "address to listen on (default: HUB_HOST or 127.0.0.1; 0.0.0.0 for every interface)"
PORT_HELP = "port to listen on (default: HUB_PORT or 8000)"
ADOPT_HELP = (
    "take over the embedded PostgreSQL and Redis that a killed run left running in the data"
    " directory (default: stop them and start afresh); they stop with this run"
)
INIT_HELP = (
    "create a data directory here if none is found (by default the command refuses, so that"
    " it never works against a new, empty one by mistake)"
)


def build_parser() -> argparse.ArgumentParser:
    from supporthub_core.exits import SUMMARY

    parser = argparse.ArgumentParser(
        prog="supporthub",
        description="support chat and notification hub",
        epilog=SUMMARY + "\n\nsettings: environment variables HUB_* (docs/operations.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, help_text in [
        ("dev", "everything in one process, embedded PostgreSQL and Redis, demo data"),
        ("serve", "the hub web process"),
        ("payments", "the payments API and its workers"),
    ]:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=SUMMARY,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        p.add_argument("--host", help=HOST_HELP)
        p.add_argument("--port", type=int, help=PORT_HELP)
        p.add_argument("--adopt", action="store_true", help=ADOPT_HELP)

    p = sub.add_parser("migrate", help="apply database migrations (idempotent)")
    p.add_argument("--init", action="store_true", help=INIT_HELP)

    p = sub.add_parser("token", help="print a signed token (for scripts and tests)")
    p.add_argument("--sub", required=True, metavar="ID",
                   help="whom the token is for: a user id, an agent's id, a service name")  # fmt: skip
    p.add_argument("--role", required=True, choices=["user", "agent", "supervisor", "service"],
                   help="what the token may do")  # fmt: skip
    p.add_argument("--name", help="display name carried in the token (default: none)")
    p.add_argument("--ttl", type=int, default=3600, metavar="SECONDS",
                   help="lifetime in seconds (default: 3600)")  # fmt: skip
    p.add_argument("--init", action="store_true", help=INIT_HELP)

    p = sub.add_parser("agent", help="manage agents")
    agent_sub = p.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    a = agent_sub.add_parser("add", help="create or update an agent")
    a.add_argument("--username", required=True, help="login name (an existing one is updated)")
    a.add_argument("--password", required=True, help="login password (stored as an argon2 hash)")
    a.add_argument("--name", required=True, help="name shown to users and colleagues")
    a.add_argument("--skills", default="", metavar="LIST",
                   help="comma-separated topics the agent takes, e.g. account,payment,security")  # fmt: skip
    a.add_argument("--capacity", type=int, default=3, metavar="N",
                   help="chats the agent holds at once (default: 3)")  # fmt: skip
    a.add_argument("--supervisor", action="store_true",
                   help="make the agent a supervisor (queue, stats, audit log, transfers)")  # fmt: skip
    a.add_argument(
        "--security-backup",
        action="store_true",
        help="takes urgent security chats when no security agent or supervisor can",
    )
    a.add_argument("--init", action="store_true", help=INIT_HELP)
    for name, help_text in [
        ("disable", "disconnect an agent on every node and refuse its logins"),
        ("enable", "let a disabled agent sign in again"),
    ]:
        a = agent_sub.add_parser(name, help=help_text)
        a.add_argument("--username", required=True, help="the agent's login name")
        a.add_argument("--reason", help="why, for the audit log")
        a.add_argument("--init", action="store_true", help=INIT_HELP)

    p = sub.add_parser("account", help="manage payment accounts")
    account_sub = p.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    a = account_sub.add_parser("add", help="create a user with a payment account")
    a.add_argument("--user", required=True, metavar="ID", help="the user id (e.g. u-alice)")
    a.add_argument("--name", required=True, help="the account holder's name")
    a.add_argument("--balance", required=True, metavar="AMOUNT",
                   help="balance to set, with at most 2 decimals (e.g. 100.00)")  # fmt: skip
    a.add_argument("--init", action="store_true", help=INIT_HELP)

    p = sub.add_parser("email", help="manage users' e-mail addresses (the e-mail channel)")
    email_sub = p.add_subparsers(dest="email_command", required=True, metavar="ACTION")
    a = email_sub.add_parser("add", help="add (or re-verify) a user's e-mail address")
    a.add_argument("--user", required=True, metavar="ID", help="the user id (e.g. u-alice)")
    a.add_argument("--address", required=True, help="the e-mail address")
    a.add_argument("--unverified", action="store_true",
                   help="not verified yet: mail from it gets the generic answer")  # fmt: skip
    a.add_argument("--init", action="store_true", help=INIT_HELP)

    p = sub.add_parser("broadcast", help="send a system notice to every user")
    p.add_argument("--title", required=True, help="the notice's title")
    p.add_argument("--body", required=True, help="the notice's text")
    p.add_argument("--init", action="store_true", help=INIT_HELP)

    from hub.cli_campaigns import add_parser as add_campaign_parser

    add_campaign_parser(sub, INIT_HELP)

    p = sub.add_parser(
        "maintenance", help="switch payments maintenance on or off (tells every user)"
    )
    p.add_argument(
        "state", choices=["on", "off"], help="on: new payments fail; off: back to normal"
    )
    p.add_argument("--message", help="text of the notice sent to users (default: a standard one)")
    p.add_argument("--start", help="when the window starts, ISO 8601 (default: now)")
    p.add_argument("--until", help="when it is expected to end, ISO 8601 (told to customers)")
    p.add_argument("--tz", help="the zone of --start/--until without an offset (IANA)")
    p.add_argument("--functions", help="what it pauses: instant, standard (default: all payments)")
    p.add_argument("--init", action="store_true", help=INIT_HELP)

    p = sub.add_parser(
        "doctor",
        help="self-test a running deployment: sockets, a probe notification end to end,"
        " readiness, routing, clocks",
    )
    p.add_argument("--url", action="append", metavar="URL",
                   help="a hub node's base URL; repeat it for every node (default: the running"
                   " `dev` of this data directory, else http://HUB_HOST:HUB_PORT)")  # fmt: skip
    p.add_argument("--payments-url", metavar="URL",
                   help="the payments API's base URL (default: the first --url, as in `dev`)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=10, metavar="SECONDS",
                   help="how long to wait for each answer and for the probe (default: 10)")  # fmt: skip
    p.add_argument("--max-skew", type=float, default=2, metavar="SECONDS",
                   help="clock difference allowed between a node and this machine, and between"
                   " nodes (default: 2)")  # fmt: skip

    p = sub.add_parser("simulate", help="drive realistic payment traffic")
    p.add_argument("--url", help="base URL of the running `supporthub dev` (default: the one"
                   " running on this data directory, else http://HUB_HOST:HUB_PORT)")  # fmt: skip
    p.add_argument("--users", type=int, default=20, metavar="N",
                   help="simulated users paying each other (default: 20)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=30, help="how long to run (default: 30)")
    p.add_argument("--rate", type=float, default=5, metavar="N",
                   help="payments a second (default: 5)")  # fmt: skip

    p = sub.add_parser(
        "chat",
        help="chat as a user in the terminal against a running hub: type lines, see replies,"
        " typing and notifications live",
        description="Chat as a user against a running hub. Each line is a message (the first"
        " opens a chat unless one is open); /agent asks for a person, /close ends the chat,"
        " /quit (or the end of the input, once every line is acked) leaves.",
    )
    p.add_argument("--url", help="base URL of the hub (default: the `dev` running on this data"
                   " directory, else http://HUB_HOST:HUB_PORT)")  # fmt: skip
    p.add_argument("--user", metavar="ID",
                   help="the user to chat as (e.g. u-alice; default: a new demo user)")  # fmt: skip
    p.add_argument("--name", help="display name (default: the account's name, else the id)")
    p.add_argument("--token", help="a user token to use instead of asking the `dev` server for"
                   " a demo one (`serve` has no demo tokens: see `supporthub token`)")  # fmt: skip
    p.add_argument("--topic", default="other",
                   choices=["account", "payment", "arrival", "security", "technical",
                            "feedback", "other"],
                   help="topic of a new chat (default: other)")  # fmt: skip
    p.add_argument("--handoff", default="bot", choices=["bot", "agent"],
                   help="bot: the help bot answers first (default); agent: straight to a person")  # fmt: skip
    p.add_argument("--codec", default="msgpack", choices=["msgpack", "json"],
                   help="wire format (default: msgpack)")  # fmt: skip
    p.add_argument("--lang", choices=["zh", "en"], help="language of the bot and notices")
    p.add_argument("--connect-timeout", type=float, default=30, metavar="SECONDS",
                   help="give up (exit 4) when the hub has not answered by then (default: 30)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> None:
    from supporthub_core.errors import HubError
    from supporthub_core.exits import USAGE, CommandError

    args = build_parser().parse_args(argv)
    try:
        with _cleanup_on_sigterm():
            _dispatch(args)
    except CommandError as exc:
        print(f"supporthub: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(exc.code) from None
    except HubError as exc:
        print(f"supporthub: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(USAGE) from None
    except KeyboardInterrupt:  # Ctrl-C before the server runs (it handles its own)
        raise SystemExit(130) from None


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
        case "email":
            cmd_email_add(args)
        case "broadcast":
            cmd_broadcast(args)
        case "maintenance":
            cmd_maintenance(args)
        case "campaign":
            from hub import cli_campaigns

            cli_campaigns.run(args, _with_store, _run)
        case "simulate":
            cmd_simulate(args)
        case "chat":
            cmd_chat(args)
        case "doctor":
            cmd_doctor(args)


if __name__ == "__main__":
    main()
