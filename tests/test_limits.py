"""Limits shared by every node (hub.limits), the client's address behind trusted proxies
(supporthub_core.addresses), and how a socket over an address limit is refused."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import httpx
import pytest
import websockets

from hub.limits import LocalCounters, Rule, storage_uri
from supporthub_core.addresses import client_address, limit_key, parse_networks
from tests.client import MSGPACK, HubClient
from tests.conftest import free_port, reap, start_hub
from tests.test_chat_flow import add_agent

pytestmark = pytest.mark.usefixtures("clean")


async def _login(server, username: str, password: str, headers: dict | None = None) -> int:
    async with server.http() as http:
        r = await http.post(
            "/api/agents/login",
            json={"username": username, "password": password},
            headers=headers or {},
        )
    return r.status_code


# --- shared across nodes -----------------------------------------------------------------


async def test_two_nodes_share_the_login_limit(hub, services, db):
    """Two processes (an in-process node and a `supporthub serve`): guesses split across
    them count together."""
    from tests.test_delivery import _serve, _wait_ready

    await add_agent(db, "guessme", ["account"])
    port = free_port()
    proc = _serve(port, services)
    try:
        await _wait_ready(port, proc)
        other = f"http://127.0.0.1:{port}"
        codes = [await _login_at((hub.url, other)[i % 2], "guessme", f"wrong-{i}")
                 for i in range(10)]  # fmt: skip
        assert codes == [401] * 10
        # ten guesses split five and five: both nodes now refuse the eleventh
        assert await _login_at(hub.url, "guessme", "wrong-a") == 429
        assert await _login_at(other, "guessme", "wrong-b") == 429
        assert await _login_at(other, "guessme", "pw-guessme") == 429
    finally:
        proc.terminate()
        reap(proc)


async def _login_at(url: str, username: str, password: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        r = await http.post("/api/agents/login", json={"username": username, "password": password})
    return r.status_code


async def test_parallel_guesses_cannot_slip_past_the_limit(hub, db):
    await add_agent(db, "guessme", ["account"])
    codes = await asyncio.gather(*(_login(hub, "guessme", f"x{i}") for i in range(30)))
    assert sorted(codes) == [401] * 10 + [429] * 20


async def test_guessing_many_usernames_from_one_address_is_limited(services, db):
    server = await start_hub(services, login_attempts_per_address=15)
    try:
        codes = [await _login(server, f"who-{i}", "pw") for i in range(17)]
        assert codes == [401] * 15 + [429] * 2
    finally:
        await server.stop()


async def test_spraying_many_keys_does_not_reset_a_limited_key(services, db):
    # more keys than the in-process fallback holds (limits_fallback_keys), scaled down
    # from the default 100,000 so that the spray is 1,001 round trips, not 100,001
    server = await start_hub(services, limits_fallback_keys=1_000)
    try:
        await add_agent(db, "guessme", ["account"])
        for i in range(10):
            assert await _login(server, "guessme", f"x{i}") == 401
        assert await _login(server, "guessme", "x10") == 429
        # an attacker fills the limiter with more keys than it holds...
        limits = server.hub.limits
        sprayed = limits.local.max_keys + 1

        async def spray(first: int) -> None:
            for i in range(first, sprayed, 64):
                await limits.hit(limits.login_pair, f"spray-{i}\x00203.0.113.{i % 250}")

        await asyncio.gather(*(spray(i) for i in range(64)))
        # ...and the limited key is still limited, the right password too
        assert await _login(server, "guessme", "pw-guessme") == 429
    finally:
        await server.stop()


def test_the_in_process_fallback_is_bounded_and_never_wiped():
    counters = LocalCounters(max_keys=1000)
    rule = Rule("login", 3, 300, True)
    for _ in range(3):
        assert counters.hit(rule, "victim", now=0.0)
    assert not counters.hit(rule, "victim", now=0.0)
    for i in range(100_001):  # a spray of new keys
        counters.hit(rule, f"spray-{i}", now=1.0)
    assert len(counters.counts) <= 1001  # bounded: new keys past the cap share one counter
    assert not counters.hit(rule, "victim", now=2.0)  # still limited
    # windows end key by key: the victim's count goes when its own window passes, the
    # sprayed keys when theirs do
    assert counters.hit(rule, "victim", now=301.5)
    assert len(counters.counts) == 1


async def test_login_limits_fall_back_to_the_process_when_redis_is_away(isolated):
    import asyncpg

    from hub.store import agents

    conn = await asyncpg.connect(isolated.dsn)
    try:
        await agents.upsert(conn, username="guessme", password="pw-guessme", name="G",
                            skills=["account"], capacity=2)  # fmt: skip
    finally:
        await conn.close()
    server = await start_hub(isolated, limits_timeout_s=0.2)
    try:
        isolated.redis.stop()
        started = time.monotonic()
        codes = [await _login(server, "guessme", f"x{i}") for i in range(12)]
        assert codes == [401] * 10 + [429] * 2  # still limited, in this process
        assert time.monotonic() - started < 20
        async with server.http() as http:
            metrics = (await http.get("/metrics")).text
        assert "supporthub_limits_local_total" in metrics
    finally:
        isolated.redis.start()
        await server.stop()


def test_limits_storage_uris():
    assert storage_uri("redis://h:6379/0") == "async+redis://h:6379/0"
    assert storage_uri("rediss://:pw@h:6380") == "async+rediss://:pw@h:6380"
    assert storage_uri("unix:///tmp/r.sock") == "async+redis+unix:///tmp/r.sock"
    # a Redis Cluster: its nodes from the URL, no database number
    assert storage_uri("redis+cluster://h:7000") == "async+redis+cluster://h:7000"
    assert storage_uri("rediss+cluster://:pw@h:7000/0") == "async+redis+cluster://:pw@h:7000"
    assert storage_uri("redis://h:7000/0", cluster=True) == "async+redis+cluster://h:7000"
    with pytest.raises(ValueError):
        storage_uri("memcached://h")


# --- trusted proxies ------------------------------------------------------------------------


def test_forwarded_addresses_are_believed_only_from_trusted_proxies():
    lb = parse_networks("10.0.0.0/8, 192.168.1.7")
    xff = [("x-forwarded-for", "203.0.113.9")]
    assert client_address("198.51.100.1", xff, lb) == "198.51.100.1"  # untrusted peer
    assert client_address("10.1.2.3", xff, lb) == "203.0.113.9"  # from our balancer
    assert client_address("10.1.2.3", xff, ()) == "10.1.2.3"  # nobody trusted
    # a client's own entries (left of what our proxies saw) are never believed
    chain = [("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.9.9.9")]
    assert client_address("10.1.2.3", chain, lb) == "203.0.113.9"
    split = [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.9:4711")]
    assert client_address("192.168.1.7", split, lb) == "203.0.113.9"
    # garbage where the address should be: the nearest trusted hop stands for the client
    assert client_address("10.1.2.3", [("x-forwarded-for", "nonsense")], lb) == "10.1.2.3"
    assert client_address("10.1.2.3", [("x-forwarded-for", "1.2.3.4, unknown")], lb) == "10.1.2.3"
    assert client_address("10.1.2.3", [], lb) == "10.1.2.3"
    # RFC 7239, when that is the header the proxy writes; the other one is then ignored
    fwd = [("forwarded", 'for=6.6.6.6, for="[2001:db8::1]:443";proto=https'),
           ("x-forwarded-for", "7.7.7.7")]  # fmt: skip
    assert client_address("10.1.2.3", fwd, lb, "forwarded") == "2001:db8::1"
    assert client_address("10.1.2.3", fwd, lb, "x-forwarded-for") == "7.7.7.7"
    assert client_address("::ffff:10.1.2.3", xff, lb) == "203.0.113.9"
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, not-a-network")


def test_ipv6_clients_are_counted_per_64():
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.9") == "203.0.113.9"
    assert ipaddress.ip_network(limit_key("2001:db8:1:2::1")).prefixlen == 64


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(services, db):
    server = await start_hub(services, max_connections_per_address=1)
    try:
        first = await _socket(server, {"X-Forwarded-For": "203.0.113.1"})
        # another forwarded address changes nothing: the peer (127.0.0.1) is the client
        second = await _socket(server, {"X-Forwarded-For": "203.0.113.2"}, hello=False)
        assert await second.wait_closed() == 1008
        await first.close()
        await add_agent(db, "alice", ["account"])
        await _login(server, "alice", "pw-alice", {"X-Forwarded-For": "203.0.113.7"})
        assert await _last_login_address(db) == "127.0.0.1"
    finally:
        await server.stop()


async def test_x_forwarded_for_from_a_trusted_proxy_is_used(services, db):
    server = await start_hub(services, max_connections_per_address=1,
                             trusted_proxies="127.0.0.0/8, ::1")  # fmt: skip
    try:
        # a reconnect storm behind the balancer is many clients, not one
        clients = [await _socket(server, {"X-Forwarded-For": f"203.0.113.{i}"})
                   for i in range(1, 6)]  # fmt: skip
        for c in clients:
            assert (await c.request({"type": "ping"}))["type"] == "pong"
        same = await _socket(server, {"X-Forwarded-For": "6.6.6.6, 203.0.113.1"}, hello=False)
        assert await same.wait_closed() == 1008  # 203.0.113.1 holds its one socket already
        for c in clients:
            await c.close()
        await add_agent(db, "alice", ["account"])
        await _login(server, "alice", "pw-alice", {"X-Forwarded-For": "203.0.113.7"})
        assert await _last_login_address(db) == "203.0.113.7"
    finally:
        await server.stop()


async def _socket(server, headers: dict, *, hello: bool = True) -> HubClient:
    token = server.token(f"u-{time.monotonic_ns()}")
    return await HubClient.connect(server.ws_url, token, hello=hello, additional_headers=headers)


async def _last_login_address(db) -> str:
    return await db.fetchval(
        "select address from audit_log where action = 'agent.login' order by id desc limit 1"
    )


# --- refusing a socket over a limit ------------------------------------------------------


@pytest.mark.parametrize("proto", [None, MSGPACK])
async def test_too_many_open_sockets_are_refused_after_the_upgrade_with_1008(services, proto):
    server = await start_hub(services, max_connections_per_address=2)
    try:
        before = await _refused_open(server)
        kept = [await server.client() for _ in range(2)]
        extra = await HubClient.connect(server.ws_url, hello=False,
                                        **({"proto": proto} if proto else {}))  # fmt: skip
        assert await extra.wait_closed() == 1008
        assert extra.ws.close_reason == "too many connections from this address"
        told = await extra.expect("error")
        assert told["code"] == "rate_limited"
        for c in kept:
            await c.close()
        again = await server.client()  # a socket closed: room again
        await again.close()
        assert await _refused_open(server) == before + 1
    finally:
        await server.stop()


async def _refused_open(server) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{server.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith('supporthub_ws_refused_total{reason="open"}'):
            return float(line.split()[-1])
    return 0.0


async def test_too_many_new_sockets_a_second_are_refused_with_1013(services):
    server = await start_hub(services, connects_per_s_per_address=3)
    try:
        clients = [await HubClient.connect(server.ws_url, hello=False) for _ in range(8)]
        await asyncio.sleep(0.5)
        refused = [c for c in clients if c.close_code == 1013]
        assert len(refused) >= 4, [c.close_code for c in clients]
        assert all(c.close_code in (None, 1013) for c in clients)
        assert refused[0].ws.close_reason.startswith("too many new connections")
        assert (await refused[0].expect("error"))["code"] == "rate_limited"
        await asyncio.sleep(2.1)  # the window has passed: accepted again
        fine = await server.client()
        await fine.close()
        for c in clients:
            await c.close()
    finally:
        await server.stop()


async def test_a_refused_origin_is_still_refused_before_the_upgrade(hub):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(hub.ws_url, origin="https://evil.example")
    assert refused.value.response.status_code == 403
