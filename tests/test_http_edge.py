"""The REST edge refuses what the store cannot hold: NUL characters anywhere in a request
(path, query, JSON body) and integers out of range, with the JSON error shape; never a 500
or a dropped connection."""

from __future__ import annotations

import pytest

from tests.edge import payments_alone


def _is_json_error(resp, status: int) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == "invalid" and error["message"]


NUL_GETS = [
    ("agent", "/api/conversations?user_id=a%00b"),
    ("agent", "/api/conversations?status=%00"),
    ("agent", "/api/conversations/c%00d"),
    ("supervisor", "/api/payments?user_id=%00"),
    ("supervisor", "/api/payments/tx_%00"),
    ("supervisor", "/api/accounts/bob%00"),
    ("supervisor", "/api/accounts/%00/alerts"),
    ("user", "/api/help/search?q=%E8%BD%AC%00"),
    ("user", "/api/help/articles/payment-failed%00"),
    ("user", "/api/conversations?x%00=1"),
]


@pytest.mark.parametrize(("role", "url"), NUL_GETS)
async def test_nul_in_path_or_query_is_400(hub, role, url):
    async with hub.http(hub.token("someone", role)) as http:
        _is_json_error(await http.get(url), 400)


NUL_POSTS = [
    ("user", "/api/agents/login", {"username": "a\x00", "password": "pw"}),
    ("user", "/api/agents/login", {"username": "a", "password": "\x00"}),
    ("supervisor", "/api/broadcasts", {"title": "t", "body": "b", "data": {"k": "v\x00"}}),
    ("supervisor", "/api/broadcasts", {"title": "t", "body": "b", "data": {"k\x00": 1}}),
    ("supervisor", "/api/broadcasts", {"title": "t", "body": "b", "data": {"a": [["\x00"]]}}),
    ("user", "/api/payments", {"to_account": "bob\x00", "amount": "1.00", "speed": "instant",
                               "idempotency_key": "k"}),
    ("user", "/api/payments", {"to_account": "bob", "amount": "1.00", "speed": "instant",
                               "idempotency_key": "k", "memo": "\x00"}),
    ("user", "/api/devices/login", {"device_id": "d\x00"}),
    ("supervisor", "/api/maintenance", {"on": False, "message": "\x00"}),
]  # fmt: skip


@pytest.mark.parametrize(("role", "url", "body"), NUL_POSTS)
async def test_nul_in_a_json_body_is_400(hub, db, clean, role, url, body):
    async with hub.http(hub.token("someone", role)) as http:
        _is_json_error(await http.post(url, json=body), 400)
    assert await db.fetchval("select count(*) from broadcasts") == 0
    assert await db.fetchval("select count(*) from transactions") == 0
    assert await db.fetchval("select count(*) from devices") == 0


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("service", "/api/events?after_id=99999999999999999999"),
        ("service", "/api/events?after_id=-99999999999999999999"),
        ("service", "/api/events?limit=99999999999999999999"),
        ("supervisor", "/api/payments?limit=18446744073709551616"),
        ("supervisor", "/api/conversations?limit=9223372036854775808"),
        ("user", "/api/help/search?q=x&limit=%C2%B2"),  # "²" is a digit to str.isdigit
        ("user", "/api/help/search?q=x&limit=1_0"),
        ("supervisor", "/api/conversations?limit=%EF%BC%95"),  # a full-width 5
    ],
)
async def test_out_of_range_or_odd_integers_are_422(hub, role, url):
    async with hub.http(hub.token("someone", role)) as http:
        _is_json_error(await http.get(url), 422)


async def test_payments_alone_refuses_nul_too(services):
    async with payments_alone(services.dsn, services.redis_url) as server:
        async with server.http(server_token("supervisor")) as http:
            _is_json_error(await http.get("/api/accounts/a%00"), 400)
            _is_json_error(await http.post("/api/maintenance", json={"on": "\x00"}), 400)


def server_token(role: str) -> str:
    from supporthub_core.auth import issue_token
    from tests.conftest import SECRET

    return issue_token(SECRET, "someone", role)
