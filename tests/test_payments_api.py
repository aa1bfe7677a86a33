"""The payments HTTP contract on a real server: payments, accounts, authorization,
validation, unfreezing, devices and the maintenance switch."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from hub.store import agents
from payments.seed import add_account
from tests.verification import record_passed_verification

TX_ID = re.compile(r"tx_[0-9a-f]{16}")


@pytest.fixture
async def users(hub, services, clean):
    """Accounts alice (100.00), bob (20.00), carol (0.00)."""
    for user_id, balance in [("alice", "100.00"), ("bob", "20.00"), ("carol", "0.00")]:
        await add_account(services.dsn, user_id, user_id.title(), balance)
    return hub


@pytest.fixture
async def people(users, db):
    """The users, and agents with and without the security skill."""
    hub = users
    await agents.upsert(db, username="sec", password="pw-sec-1", name="Sec", skills=["security"], capacity=3)  # fmt: skip
    await agents.upsert(db, username="gen", password="pw-gen-1", name="Gen", skills=["payment"], capacity=3)  # fmt: skip
    return hub


def body(to="bob", amount="10.00", speed="instant", key=None, **extra) -> dict:
    return {
        "to_account": to,
        "amount": amount,
        "speed": speed,
        "idempotency_key": key or uuid.uuid4().hex,
        **extra,
    }


async def post_payment(hub, sub: str, payload: dict):
    async with hub.http(hub.token(sub)) as http:
        return await http.post("/api/payments", json=payload)


async def test_a_payment_and_reading_it_back(people):
    hub = people
    resp = await post_payment(hub, "alice", body(memo="lunch"))
    assert resp.status_code == 202
    payment = resp.json()
    assert TX_ID.fullmatch(payment["transaction_id"])
    assert payment["status"] == "succeeded" and "reason" not in payment
    assert (payment["amount"], payment["currency"], payment["speed"]) == ("10.00", "CNY", "instant")
    tx = payment["transaction_id"]

    for sub, role in [("alice", "user"), ("bob", "user"), ("sec", "agent"), ("hub", "service")]:
        async with hub.http(hub.token(sub, role)) as http:
            got = await http.get(f"/api/payments/{tx}")
        assert got.status_code == 200, (sub, got.text)
        assert got.json()["transaction_id"] == tx and got.json()["memo"] == "lunch"
    async with hub.http(hub.token("carol")) as http:
        assert (await http.get(f"/api/payments/{tx}")).status_code == 403
        assert (await http.get("/api/payments/tx_0000000000000000")).status_code == 404

    async with hub.http(hub.token("alice")) as http:
        account = (await http.get("/api/accounts/alice")).json()
        listing = (await http.get("/api/payments", params={"limit": 5})).json()
        assert (await http.get("/api/accounts/bob")).status_code == 403
        assert (await http.get("/api/payments", params={"user_id": "bob"})).status_code == 403
    assert account["user_id"] == "alice" and account["name"] == "Alice"
    assert (account["balance"], account["currency"], account["frozen"]) == ("90.00", "CNY", False)
    assert [p["transaction_id"] for p in listing["payments"]] == [tx]
    assert listing["payments"][0]["direction"] == "out"

    async with hub.http(hub.token("bob")) as http:
        incoming = (await http.get("/api/payments")).json()["payments"]
        assert (await http.get("/api/accounts/bob")).json()["balance"] == "30.00"
    assert [(p["transaction_id"], p["direction"]) for p in incoming] == [(tx, "in")]

    async with hub.http(hub.token("gen", "agent")) as http:
        assert (await http.get("/api/accounts/alice")).json()["balance"] == "90.00"
        assert (await http.get("/api/accounts/nobody")).status_code == 404
        listed = (await http.get("/api/payments", params={"user_id": "bob"})).json()
        assert [p["transaction_id"] for p in listed["payments"]] == [tx]


@pytest.mark.parametrize(
    "payload",
    [
        body(amount="abc"),
        body(amount="-5"),
        body(amount="1.234"),
        body(amount="0"),
        body(amount="0.00"),
        body(amount="1e3"),
        body(amount=" 5"),
        body(amount=12.5),
        body(amount=10),
        body(amount=True),
        body(amount=None),
        body(amount="1000000.01"),
        body(speed="fast"),
        body(to=""),
        {k: v for k, v in body().items() if k != "amount"},
        {k: v for k, v in body().items() if k != "to_account"},
        {k: v for k, v in body().items() if k != "speed"},
        {k: v for k, v in body().items() if k != "idempotency_key"},
    ],
)
async def test_malformed_payments_get_422_and_record_nothing(users, db, payload):
    resp = await post_payment(users, "alice", payload)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    assert await db.fetchval("select count(*) from transactions") == 0
    assert await db.fetchval("select count(*) from outbox") == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (body(amount="100.01"), "insufficient_balance"),
        (body(to="nobody"), "invalid_payee"),
        (body(to="alice"), "invalid_payee"),
    ],
)
async def test_business_refusals_are_202_failed(users, db, payload, reason):
    resp = await post_payment(users, "alice", payload)
    assert resp.status_code == 202
    assert (resp.json()["status"], resp.json()["reason"]) == ("failed", reason)
    assert await db.fetchval("select status from transactions") == "failed"
    assert await db.fetchval("select balance from accounts where user_id = 'alice'") == 100


async def test_the_same_key_returns_the_same_payment(people, db):
    payload = body(amount="7.00", key="same-key")
    first = await post_payment(people, "alice", payload)
    again = await post_payment(people, "alice", payload)
    assert first.status_code == again.status_code == 202
    assert first.json()["transaction_id"] == again.json()["transaction_id"]
    assert await db.fetchval("select balance from accounts where user_id = 'alice'") == 93
    changed = await post_payment(people, "alice", {**payload, "amount": "8.00"})
    assert changed.status_code == 409


async def test_standard_payment_arrives_after_expected_by(users):
    hub = users
    resp = await post_payment(hub, "alice", body(speed="standard"))
    assert resp.status_code == 202
    payment = resp.json()
    assert payment["status"] == "processing" and "T" in payment["expected_by"]
    # the server's own settlement worker credits the payee (test delay: 1 s)
    async with hub.http(hub.token("bob")) as http:
        for _ in range(100):
            got = (await http.get(f"/api/payments/{payment['transaction_id']}")).json()
            if got["status"] != "processing":
                break
            await asyncio.sleep(0.05)
        assert got["status"] == "succeeded" and got["settled_at"] >= payment["expected_by"]
        assert (await http.get("/api/accounts/bob")).json()["balance"] == "30.00"


async def test_who_may_pay(people):
    hub = people
    async with hub.http() as http:
        assert (await http.post("/api/payments", json=body())).status_code == 401
    async with hub.http("not-a-token") as http:
        assert (await http.post("/api/payments", json=body())).status_code == 401
    async with hub.http(hub.token("alice", ttl=-10)) as http:
        assert (await http.get("/api/accounts/alice")).status_code == 401
    async with hub.http(hub.token("sec", "agent")) as http:
        assert (await http.post("/api/payments", json=body())).status_code == 403
    resp = await post_payment(hub, "no-account", body())
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


async def freeze_by_velocity(hub, user="alice") -> list[dict]:
    results = []
    for _ in range(11):
        resp = await post_payment(hub, user, body(amount="1.00"))
        results.append(resp.json())
    assert results[-1]["reason"] == "account_frozen"
    return results


async def test_unfreeze_needs_a_security_agent(people, db):
    hub = people
    await freeze_by_velocity(hub)
    url = "/api/accounts/alice/unfreeze"
    reason = {"reason": "customer verified by video call"}
    for token in [hub.token("alice"), hub.token("gen", "agent"), hub.token("hub", "service")]:
        async with hub.http(token) as http:
            assert (await http.post(url, json=reason)).status_code == 403
    async with hub.http(hub.token("sec", "agent")) as http:
        assert (await http.post(url, json={})).status_code == 422
        assert (await http.post("/api/accounts/nobody/unfreeze", json=reason)).status_code == 404
        refused = await http.post(url, json=reason)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "verification_required"
        await record_passed_verification(db, "alice")
        resp = await http.post(url, json=reason)
        assert resp.status_code == 200 and resp.json()["frozen"] is False
        assert (await http.post(url, json=reason)).status_code == 409
        alerts = (await http.get("/api/accounts/alice/alerts")).json()["alerts"]
    assert [a["alert"] for a in alerts[:3]] == [
        "account_unfrozen",
        "account_frozen",
        "suspicious_activity",
    ]
    assert alerts[0]["details"] == {
        "reason": "customer verified by video call",
        "by": "sec",
        "frozen_reason": alerts[1]["details"]["reason"],
    }
    assert (await post_payment(hub, "alice", body(amount="1.00"))).json()["status"] == "succeeded"


async def test_a_frozen_account_shows_it_and_cannot_pay(people):
    hub = people
    await freeze_by_velocity(hub)
    async with hub.http(hub.token("alice")) as http:
        account = (await http.get("/api/accounts/alice")).json()
        alerts = (await http.get("/api/accounts/alice/alerts")).json()["alerts"]
        assert (await http.get("/api/accounts/bob/alerts")).status_code == 403
    assert account["frozen"] is True and account["frozen_reason"]
    assert alerts[0]["alert"] == "account_frozen" and alerts[0]["severity"] == "critical"
    resp = await post_payment(hub, "alice", body(amount="1.00"))
    assert (resp.status_code, resp.json()["reason"]) == (202, "account_frozen")


async def test_device_logins(people, db):
    hub = people
    async with hub.http(hub.token("alice")) as http:
        first = (await http.post("/api/devices/login", json={"device_id": "phone"})).json()
        again = (await http.post("/api/devices/login", json={"device_id": "phone"})).json()
        new = await http.post(
            "/api/devices/login",
            json={"device_id": "tablet", "device_name": "iPad", "ip": "203.0.113.9"},
        )
        other = await http.post("/api/devices/login", json={"user_id": "bob", "device_id": "x"})
        assert (await http.post("/api/devices/login", json={})).status_code == 422
    assert (first["new_device"], first["alert"]) == (True, None)
    assert (again["new_device"], again["alert"]) == (False, None)
    assert new.json() == {
        "user_id": "alice",
        "device_id": "tablet",
        "new_device": True,
        "alert": "new_device_login",
    }
    assert other.status_code == 403
    async with hub.http(hub.token("hub", "service")) as http:
        by_service = await http.post(
            "/api/devices/login", json={"user_id": "bob", "device_id": "p"}
        )
        alerts = (await http.get("/api/accounts/alice/alerts")).json()["alerts"]
    assert by_service.status_code == 200 and by_service.json()["user_id"] == "bob"
    [alert] = alerts
    assert (alert["alert"], alert["severity"]) == ("new_device_login", "warning")
    assert alert["details"]["device_name"] == "iPad" and alert["details"]["ip"] == "203.0.113.9"


async def test_maintenance_switch(people):
    hub = people
    watcher = await hub.client("carol")
    try:
        async with hub.http(hub.token("alice")) as http:
            denied = await http.post("/api/maintenance", json={"on": True})
            assert denied.status_code == 403
        async with hub.http(hub.token("sam", "supervisor")) as http:
            assert (await http.post("/api/maintenance", json={"on": "yes"})).status_code == 422
            on = await http.post("/api/maintenance", json={"on": True, "message": "至 02:00"})
            assert on.status_code == 200 and on.json()["active"] is True
            assert on.json()["broadcast_id"]
        notice = await watcher.expect("notification", kind="system.notice")
        assert notice["body"] == "至 02:00" and notice["data"] == {"maintenance": True}

        resp = await post_payment(hub, "alice", body())
        assert (resp.status_code, resp.json()["reason"]) == (202, "maintenance")
        async with hub.http(hub.token("alice")) as http:
            assert (await http.get("/api/maintenance")).json()["active"] is True
        async with hub.http(hub.token("hub", "service")) as http:
            off = await http.post("/api/maintenance", json={"on": False})
            assert off.status_code == 200 and off.json()["active"] is False
        assert (await post_payment(hub, "alice", body())).json()["status"] == "succeeded"
    finally:
        await watcher.close()
        async with hub.http(hub.token("hub", "service")) as http:
            await http.post("/api/maintenance", json={"on": False})


async def test_the_list_names_both_sides_and_searches_the_whole_history(people):
    """Account names in lists (the help bot shows people by name); amount, time and
    counterpart filters look past the latest `limit` payments."""
    hub = people
    first = (await post_payment(hub, "alice", body(to="bob", amount="7.00"))).json()
    for _ in range(3):
        assert (await post_payment(hub, "alice", body(to="bob", amount="1.00"))).status_code == 202
    async with hub.http(hub.token("bob")) as http:
        latest = (await http.get("/api/payments", params={"limit": 2})).json()["payments"]
        found = (
            await http.get(
                "/api/payments", params={"limit": 2, "amount": "7", "counterpart": "alice"}
            )
        ).json()["payments"]
        assert [p["amount"] for p in latest] == ["1.00", "1.00"]
        none = await http.get("/api/payments", params={"counterpart": "carol"})
        assert none.json()["payments"] == []
        later = await http.get(
            "/api/payments", params={"since": "2999-01-01T00:00:00+08:00", "amount": "7.00"}
        )
        assert later.json()["payments"] == []
        window = await http.get(
            "/api/payments",
            params={
                "since": "2000-01-01T00:00:00Z",
                "until": "2999-01-01T00:00:00Z",
                "amount": "7.00",
            },
        )
        for bad in ({"amount": "7.001"}, {"since": "yesterday"}, {"since": "2025-01-01T00:00:00"}):
            assert (await http.get("/api/payments", params=bad)).status_code == 422, bad
    assert [p["transaction_id"] for p in found] == [first["transaction_id"]]
    assert [p["transaction_id"] for p in window.json()["payments"]] == [first["transaction_id"]]
    p = found[0]
    assert (p["direction"], p["from_name"], p["to_name"]) == ("in", "Alice", "Bob")
    async with hub.http(hub.token("hub", "service")) as http:
        staff = await http.get("/api/payments", params={"counterpart": "bob", "amount": "7.00"})
    assert [p["transaction_id"] for p in staff.json()["payments"]] == [first["transaction_id"]]
