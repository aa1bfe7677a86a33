"""Checks made before a command starts its work, so that what an operator can fix is
said in one line with the fix in it, and never as a traceback halfway through."""

from __future__ import annotations

import asyncio
import errno
import socket
from urllib.parse import urlsplit, urlunsplit

from supporthub_core.exits import PORT_IN_USE, UNREACHABLE, USAGE, CommandError

CONNECT_TIMEOUT_S = 5.0


def listen_socket(host: str, port: int, command: str) -> socket.socket:
    """A socket bound to host:port, handed to the server as is (no window in which
    another process could take the port between the check and the bind)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(
            f"cannot listen on {host}:{port}: {exc.strerror}; set --host or HUB_HOST", USAGE
        ) from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"port {port} is in use: run `supporthub {command} --port {_free_port_after(host, port)}`"
                " or set HUB_PORT",
                PORT_IN_USE,
            ) from None
        raise CommandError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --host/--port"
            " (HUB_HOST, HUB_PORT)",
            USAGE,
        ) from None
    sock.set_inheritable(True)
    return sock


def _free_port_after(host: str, port: int) -> int:
    for candidate in range(port + 1, min(port + 50, 65535)):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host if ":" not in host else "127.0.0.1", candidate))
                return candidate
            except OSError:
                continue
    return port + 1


def redact(url: str) -> str:
    """A URL or DSN without its password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def check_postgres(dsn: str, *, setting: str = "HUB_DATABASE_URL") -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CommandError(
            f"PostgreSQL at {redact(dsn)} is unreachable ({_why(exc)}): start it, or fix {setting}",
            UNREACHABLE,
        ) from None
    except ValueError as exc:  # a DSN asyncpg cannot parse
        raise CommandError(f"{setting} is not a PostgreSQL URL: {exc}", USAGE) from None
    await conn.close()


async def check_redis(url: str, *, setting: str = "HUB_REDIS_URL") -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    try:
        client = aioredis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
        )
    except ValueError as exc:
        raise CommandError(f"{setting} is not a Redis URL: {exc}", USAGE) from None
    try:
        await asyncio.wait_for(client.ping(), CONNECT_TIMEOUT_S * 2)
    except (OSError, TimeoutError, RedisError) as exc:
        raise CommandError(
            f"Redis at {redact(url)} is unreachable ({_why(exc)}): start it, or fix {setting}",
            UNREACHABLE,
        ) from None
    finally:
        await client.aclose()


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
