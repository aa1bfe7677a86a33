"""Request bodies over the cap are refused with 413 before they are read, on every HTTP
endpoint of the hub and of payments (alone or in `dev`)."""

from __future__ import annotations

import asyncio

import pytest

from supporthub_core.http import MAX_BODY
from tests.edge import open_raw, payments_alone, read_response, request_head

# a GET, an unauthenticated POST, authenticated POSTs of hub and payments, and a path
# that matches no route: the cap does not depend on the handler reading the body
PATHS = [
    ("POST", "/api/agents/login"),
    ("POST", "/api/broadcasts"),
    ("POST", "/api/payments"),
    ("GET", "/api/conversations"),
    ("POST", "/api/no-such-thing"),
]


async def _huge_content_length(base_url: str, method: str, path: str) -> None:
    reader, writer = await open_raw(base_url)
    try:
        headers = {"Content-Type": "application/json", "Content-Length": str(256 << 20)}
        writer.write(request_head(method, path, headers) + b'{"username": "x", "pa')
        await writer.drain()
        # the server must answer now: it has 20 bytes of the 256 MiB it was promised
        resp = await asyncio.wait_for(read_response(reader), 5)
    finally:
        writer.close()
    assert resp.status == 413, resp
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == "invalid" and "large" in error["message"]
    assert resp.headers.get("connection") == "close"


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_a_huge_content_length_is_refused_without_reading(hub, method, path):
    await _huge_content_length(hub.url, method, path)


async def test_payments_alone_refuses_a_huge_content_length(services):
    async with payments_alone(services.dsn, services.redis_url) as server:
        await _huge_content_length(server.url, "POST", "/api/payments")
        await _huge_content_length(server.url, "POST", "/api/devices/login")


async def _endless_chunked(base_url: str, path: str, token: str | None) -> None:
    """Chunks far past the cap and never the final empty chunk: a server that reads the
    whole body before deciding never answers."""
    reader, writer = await open_raw(base_url)
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    chunk = b'{"x": "' + b"a" * (16 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    total = 64 << 20  # 64 MiB offered
    sent = 0

    async def pump() -> None:
        nonlocal sent
        writer.write(request_head("POST", path, headers))
        while sent < total:
            writer.write(frame)
            await writer.drain()
            sent += len(chunk)

    pumping = asyncio.create_task(pump())
    try:
        resp = await asyncio.wait_for(read_response(reader), 10)
        await asyncio.wait([pumping], timeout=5)
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
        writer.close()
    assert resp.status == 413, resp
    assert resp.json()["error"]["code"] == "invalid"
    # answered and hung up long before the client was done: the rest was never read
    assert sent < total // 2, sent
    assert pumping.done()


async def test_a_chunked_body_is_cut_off_at_the_cap(hub):
    await _endless_chunked(hub.url, "/api/agents/login", None)
    await _endless_chunked(hub.url, "/api/payments", hub.token("alice"))


async def test_bodies_under_the_cap_still_work(hub):
    async with hub.http() as http:
        pad = "x" * (MAX_BODY - 200)
        r = await http.post(
            "/api/agents/login", json={"username": "nobody", "password": "pw", "pad": pad}
        )
        assert r.status_code == 401  # read, parsed and answered
