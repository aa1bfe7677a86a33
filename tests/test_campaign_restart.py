"""A `serve` node killed (SIGKILL) in the middle of a campaign: another node takes the
campaign over when the lease runs out and carries on from the stored cursor; every user
of the audience gets exactly one copy, with no gap in their seq."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
import httpx

from supporthub_core.auth import issue_token
from tests.client import HubClient
from tests.conftest import ROOT, SECRET, free_port, reap

USERS = 3000
TEXTS = {
    "zh": {"title": "系统维护预告", "body": "周六凌晨维护两小时。"},
    "en": {"title": "Planned maintenance", "body": "Two hours early on Saturday."},
}


def serve(port: int, iso) -> subprocess.Popen:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": iso.dsn,
        "HUB_REDIS_URL": iso.redis_url,
        "HUB_SECRET": SECRET,
        "HUB_PORT": str(port),
        "HUB_LOG_FORMAT": "json",
        "HUB_CAMPAIGN_RATE_PER_S": "400",
        "HUB_CAMPAIGN_BATCH": "100",
        "HUB_CAMPAIGN_POLL_S": "0.2",
        "HUB_CAMPAIGN_LEASE_S": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def ready(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "serve exited"
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("serve did not become ready")


async def test_a_node_killed_mid_campaign_loses_and_doubles_nothing(isolated):
    db = await asyncpg.connect(isolated.dsn)
    users = [f"k-{i:05d}" for i in range(USERS)]
    await db.execute("insert into users (id) select x from unnest($1::text[]) x", users)
    # one of them already has a notification: the campaign's copy comes next in their seq
    await db.execute(
        "insert into notifications (id, user_id, seq, kind, title, body)"
        " values ('n-before', $1, 1, 'system.notice', 't', 'b')",
        users[-1],
    )
    first_port, second_port = free_port(), free_port()
    first = serve(first_port, isolated)
    second = None
    try:
        await ready(first_port, first)
        token = issue_token(SECRET, "ops", "service")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{first_port}",
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            r = await http.post(
                "/api/campaigns", json={"texts": TEXTS, "audience": {"kind": "all"}}
            )
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
        for _ in range(600):  # under way, far from done
            delivered = await db.fetchval("select delivered from campaigns where id = $1", cid)
            if delivered >= 300:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(20)
        at_kill = await db.fetchrow(
            "select delivered, cursor, status from campaigns where id = $1", cid
        )
        assert at_kill["status"] == "sending" and 0 < at_kill["delivered"] < USERS

        second = serve(second_port, isolated)
        await ready(second_port, second)
        last = await HubClient.connect(
            f"ws://127.0.0.1:{second_port}/ws",
            issue_token(SECRET, users[-1], "user"),
            resume={"notifications_after": 0},
        )
        for _ in range(1200):
            status = await db.fetchval("select status from campaigns where id = $1", cid)
            if status == "sent":
                break
            await asyncio.sleep(0.1)
        assert status == "sent"

        rows = await db.fetch(
            "select user_id, count(*) as n from notifications where campaign_id = $1 group by user_id",
            cid,
        )
        assert len(rows) == USERS and {r["n"] for r in rows} == {1}
        assert await db.fetchval("select delivered from campaigns where id = $1", cid) == USERS
        # every user's seq is whole: the campaign's copy is their next, never a gap
        gaps = await db.fetchval(
            "select count(*) from users u where u.id like 'k-%' and notif_head(u.id) <>"
            " (select count(*) from notifications n where n.user_id = u.id)"
        )
        assert gaps == 0
        # the last user (resumed on the second node) sees their old notice, then one card
        got = [await last.expect("notification", timeout=30) for _ in range(2)]
        assert [n["seq"] for n in got] == [1, 2]
        assert got[1]["data"]["campaign_id"] == cid
        await last.quiet("notification", 0.5)
        await last.close()
        sent_by = await db.fetch(
            "select actor_id from audit_log where action = 'campaign.sent'"
            " and details->>'campaign_id' = $1",
            str(cid),
        )
        assert len(sent_by) == 1
    finally:
        reap(first)
        if second is not None:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(30)
            finally:
                reap(second)
        await db.close()


async def test_two_live_nodes_one_sender_one_copy_each(isolated):
    """Both nodes look for due campaigns; the lease lets one send it, whole."""
    from tests.conftest import start_hub

    db = await asyncpg.connect(isolated.dsn)
    users = [f"t-{i:05d}" for i in range(1500)]
    await db.execute("insert into users (id) select x from unnest($1::text[]) x", users)
    fast = dict(campaign_poll_s=0.1, campaign_rate_per_s=3000, campaign_batch=100)
    nodes = [await start_hub(isolated, **fast), await start_hub(isolated, **fast)]
    try:
        async with nodes[0].http(nodes[0].token("ops", "service")) as http:
            r = await http.post(
                "/api/campaigns", json={"texts": TEXTS, "audience": {"kind": "all"}}
            )
            cid = r.json()["id"]
            for _ in range(600):
                got = (await http.get(f"/api/campaigns/{cid}")).json()
                if got["status"] == "sent":
                    break
                await asyncio.sleep(0.1)
        assert got["status"] == "sent" and got["counts"]["delivered"] == len(users)
        assert sorted(n.hub.campaigns.sent for n in nodes) == [0, len(users)]
        n = await db.fetchval(
            "select count(distinct user_id) from notifications where campaign_id = $1", cid
        )
        assert n == len(users)
    finally:
        for node in nodes:
            await node.stop()
        await db.close()
