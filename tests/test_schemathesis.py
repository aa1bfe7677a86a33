"""Schemathesis over /openapi.json against a real hub with payments (as in `dev`), with its
own database and Redis: for every operation, generated valid and invalid requests with a
fitting token get no 5xx, only documented status codes, content types, headers and bodies
that match the document; and a refused request stores nothing.

The server runs in the test's event loop, and schemathesis calls it with a blocking HTTP
client: the generation and the calls run in a worker thread."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.store import agents as agent_store
from payments.seed import add_account
from tests.conftest import start_hub

#: a 1x1 PNG: an upload the supervisor's token may make to the seeded chat
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)
EXAMPLES = 15  # per operation and per mode (valid, invalid): the whole run stays well under 60 s
# Not negative_data_rejection: unknown query parameters are ignored on purpose (a client's
# cache-buster must not break a call), and the token is ours, not a generated header.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

#: What a refused request must leave as it was: one figure per kind of thing stored.
SNAPSHOT = """
select (select count(*) from transactions) as transactions,
       (select count(*) from devices) as devices,
       (select count(*) from accounts where frozen) as frozen,
       (select count(*) from broadcasts) as broadcasts,
       (select coalesce(max(active::int), 0) from payments_maintenance) as maintenance,
       (select count(*) from agents) as agents,
       (select count(*) from attachments) as attachments,
       (select count(*) from agents where disabled) as disabled_agents,
       (select count(*) from feedback) as feedback
"""
WRITES = {
    ("POST", "/api/payments"),
    ("POST", "/api/accounts/{user_id}/freeze"),
    ("POST", "/api/accounts/{user_id}/unfreeze"),
    ("POST", "/api/devices/login"),
    ("POST", "/api/maintenance"),
    ("POST", "/api/broadcasts"),
    ("POST", "/api/agents/login"),
    ("POST", "/api/attachments"),
    ("POST", "/api/agents/{agent_id}/disable"),
    ("POST", "/api/agents/{agent_id}/enable"),
    ("POST", "/api/conversations/{conversation_id}/feedback"),
}


@pytest.fixture
async def live(isolated, services):
    """A hub with payments on its own stores, with accounts, a security agent, a chat with
    a message and a payment to find."""
    server = await start_hub(isolated)
    try:
        for user_id, balance in [("alice", "100000.00"), ("bob", "10.00")]:
            await add_account(isolated.dsn, user_id, user_id.title(), balance)
        conn = await asyncpg.connect(isolated.dsn)
        try:
            await agent_store.upsert(conn, username="sec", password="pw-sec-1", name="Sec",
                                     skills=["security"], capacity=3)  # fmt: skip
            sec_id = await conn.fetchval("select id from agents where username = 'sec'")
        finally:
            await conn.close()
        user = await server.client("alice")
        opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        cid = opened["conversation_id"]
        await user.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "m1", "text": "hi"}
        )
        await user.close()
        pay = {"to_account": "bob", "amount": "1.00", "speed": "instant", "idempotency_key": "k0"}
        async with server.http(server.token("alice")) as http:
            tx = (await http.post("/api/payments", json=pay)).json()["transaction_id"]
        yield server, {"conversation_id": cid, "transaction_id": tx, "sec": sec_id}
    finally:
        await server.stop()


def _token_for(server, seeded: dict, method: str, path: str) -> str:
    if (method, path) in {("POST", "/api/payments"), ("POST", "/api/devices/login")}:
        return server.token("alice")
    if path.startswith("/api/accounts/{user_id}/") and method == "POST":
        return server.token(seeded["sec"], "agent", name="Sec")
    return server.token("boss", "supervisor")


# schemathesis' own negative-case strategies call the `random` module for some schemas;
# Hypothesis warns about it (a FutureWarning, so not ignored with DeprecationWarning) and
# the warning, turned into an error, made a case fail once and pass when replayed
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
async def test_schemathesis_finds_no_5xx_and_nothing_undocumented(live, isolated):
    server, seeded = live
    loop = asyncio.get_running_loop()
    conn = await asyncpg.connect(isolated.dsn)
    lock = asyncio.Lock()

    async def snapshot() -> dict:
        async with lock:
            return dict(await conn.fetchrow(SNAPSHOT))

    def stored() -> dict:  # from the worker thread
        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(10)

    known_good = [
        ("GET", "/api/conversations/{conversation_id}",
         {"conversation_id": seeded["conversation_id"]}, None, None),
        ("GET", "/api/conversations", None, {"limit": 5, "status": "open"}, None),
        ("GET", "/api/payments/{transaction_id}",
         {"transaction_id": seeded["transaction_id"]}, None, None),
        ("GET", "/api/payments", None, {"limit": 3}, None),
        ("GET", "/api/accounts/{user_id}", {"user_id": "alice"}, None, None),
        ("GET", "/api/accounts/{user_id}/alerts", {"user_id": "alice"}, None, None),
        ("GET", "/api/events", None, {"after_id": 0}, None),
        ("GET", "/api/stats", None, None, None),
        ("GET", "/api/stats/export.csv", None, None, None),
        ("GET", "/api/feedback", None, {"days": 7, "kind": "suggestion"}, None),
        ("GET", "/api/feedback/export.csv", None, {"days": 30}, None),
        ("GET", "/api/agents", None, None, None),
        ("GET", "/api/help/search", None, {"q": "转账", "lang": "zh"}, None),
        ("GET", "/api/help/articles/{slug}", {"slug": "payment-failed"}, None, None),
        ("POST", "/api/payments", None, None,
         {"to_account": "bob", "amount": "2.50", "speed": "standard", "idempotency_key": "k1"}),
        ("POST", "/api/devices/login", None, None, {"device_id": "d-1", "device_name": "Phone"}),
        ("POST", "/api/agents/login", None, None, {"username": "sec", "password": "pw-sec-1"}),
        ("POST", "/api/attachments", None, None,
         {"conversation_id": seeded["conversation_id"], "file": TINY_PNG}),
        ("POST", "/api/conversations/{conversation_id}/feedback",
         {"conversation_id": seeded["conversation_id"]}, None, {"note": "wants fees shown first"}),
    ]  # fmt: skip

    def run() -> dict:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        seen: dict[str, set[int]] = {}

        def call(case, method: str, path: str):
            token = _token_for(server, seeded, method, path)
            before = stored() if (method, path) in WRITES else None
            headers = {"Authorization": f"Bearer {token}"}
            response = case.call(base_url=server.url, headers=headers, timeout=20)
            case.validate_response(response, checks=CHECKS, headers=headers)
            seen.setdefault(f"{method} {path}", set()).add(response.status_code)
            if before is not None and response.status_code >= 400:
                assert stored() == before, (method, path, response.status_code, case.body)
            return response

        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        by_key = {(op.method.upper(), op.path): op for op in operations}
        for method, path, path_parameters, query, body in known_good:
            op = by_key[(method, path)]
            kwargs = {"path_parameters": path_parameters, "query": query}
            if body is not None:
                kwargs["body"] = body
            response = call(op.Case(**{k: v for k, v in kwargs.items() if v is not None}),
                            method, path)  # fmt: skip
            assert response.status_code < 300, (method, path, response.text)

        def fuzzer(op, mode):
            method, path = op.method.upper(), op.path

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      derandomize=True, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=op.as_strategy(generation_mode=mode))
            def fuzz(case):
                call(case, method, path)

            return fuzz

        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzzer(op, mode)()
                except Unsatisfiable:
                    # nothing to make invalid: no parameter, no body, no token (the VAPID key)
                    if mode is not GenerationMode.NEGATIVE:
                        raise
        return seen

    started = time.monotonic()
    try:
        seen = await asyncio.to_thread(run)
    finally:
        await conn.close()
    elapsed = time.monotonic() - started
    assert elapsed < 100, f"schemathesis took {elapsed:.0f} s (meant to stay under a minute)"
    # every operation was reached, and some requests got through to the handlers
    assert len(seen) >= 15
    assert any(s < 300 for codes in seen.values() for s in codes)
    print(f"schemathesis: {sum(map(len, seen.values()))} distinct statuses, {elapsed:.1f} s")
