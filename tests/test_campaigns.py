"""Campaigns on real servers: a scheduled notice to a targeted audience reaches exactly
that audience once (users who connect later included), a cancelled one sends nothing,
and the counts follow what users do."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import SECRET, run_cli, start_hub
from tests.events import publish_signed, tx_event

pytestmark = pytest.mark.usefixtures("clean")

TEXTS = {
    "zh": {"title": "谨防钓鱼网站", "body": "客服绝不会索要验证码。"},
    "en": {"title": "Beware of phishing", "body": "We never ask for your codes."},
}


def uid(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def fast_hub(services):
    server = await start_hub(services, campaign_poll_s=0.2, campaign_lease_s=2.0)
    yield server
    await server.stop()


async def cards(client, n: int) -> list[dict]:
    got = [await client.expect("notification", timeout=20) for _ in range(n)]
    await client.quiet("notification", 0.5)
    return got


async def wait_status(http, cid: int, status: str) -> dict:
    for _ in range(300):
        body = (await http.get(f"/api/campaigns/{cid}")).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"campaign {cid} never became {status}: {body}")


async def test_scheduled_campaign_reaches_its_language_once_including_later(fast_hub):
    hub = fast_hub
    en_online, en_offline, zh_online = uid("en"), uid("en"), uid("zh")
    en = await hub.client(en_online, hello_fields={"lang": "en"})
    zh = await hub.client(zh_online, hello_fields={"lang": "zh"})
    await (await hub.client(en_offline, hello_fields={"lang": "en"})).close()

    async with hub.http(hub.token("sup", "supervisor")) as http:
        audience = {"kind": "lang", "lang": "en"}
        preview = await http.post("/api/campaigns/preview", json={"audience": audience})
        assert preview.json() == {"size": 2}
        # later, in Beijing time: the zone is explicit
        send_at = (datetime.now(UTC) + timedelta(seconds=2)).astimezone(ZoneInfo("Asia/Shanghai"))
        created = await http.post(
            "/api/campaigns",
            json={
                "category": "security",
                "texts": TEXTS,
                "link": "account-security",
                "audience": audience,
                "send_at": send_at.replace(tzinfo=None).isoformat(),
                "tz": "Asia/Shanghai",
            },
        )
        assert created.status_code == 201, created.text
        campaign = created.json()
        assert campaign["status"] == "scheduled"
        assert datetime.fromisoformat(campaign["send_at"]) == send_at

        [card] = await cards(en, 1)
        assert card["kind"] == "system.notice"
        assert card["title"] == "Beware of phishing"
        assert card["data"]["campaign_id"] == campaign["id"]
        assert card["data"]["category"] == "security"
        assert card["data"]["link"] == "account-security"
        await zh.quiet("notification", 1.0)
        sent = await wait_status(http, campaign["id"], "sent")
        assert sent["counts"]["delivered"] == 2

        # offline then: on resume, once; first seen now, in English: once
        for user_id in (en_offline, uid("en-new")):
            late = await hub.client(user_id, resume={"notifications_after": 0},
                                    hello_fields={"lang": "en"})  # fmt: skip
            [got] = await cards(late, 1)
            assert got["data"]["campaign_id"] == campaign["id"]
            await late.close()
            again = await hub.client(user_id, resume={"notifications_after": 0},
                                     hello_fields={"lang": "en"})  # fmt: skip
            assert len(await cards(again, 1)) == 1  # still the one copy
            await again.close()
        newcomer_zh = await hub.client(uid("zh-new"), resume={"notifications_after": 0})
        await newcomer_zh.quiet("notification", 0.5)
        await newcomer_zh.close()

        # read (notifications.ack) and clicked (the card's link), each counted once
        await en.request({"type": "notifications.ack", "up_to": card["seq"]})
        async with hub.http(hub.token(en_online)) as user_http:
            for _ in range(2):
                r = await user_http.post(
                    f"/api/campaigns/{campaign['id']}/marks", json={"action": "clicked"}
                )
                assert r.status_code == 200
        async with hub.http(hub.token(zh_online)) as other:
            r = await other.post(
                f"/api/campaigns/{campaign['id']}/marks", json={"action": "clicked"}
            )
            assert r.status_code == 404  # never got it
        counts = (await http.get(f"/api/campaigns/{campaign['id']}")).json()["counts"]
        assert counts == {"delivered": 3, "read": 1, "clicked": 1, "dismissed": 0}

        actions = [e["action"] for e in (await http.get("/api/audit?limit=50")).json()]
        assert "campaign.create" in actions and "campaign.sent" in actions
    await en.close()
    await zh.close()


async def test_cancelled_before_start_sends_nothing(fast_hub):
    hub = fast_hub
    user = await hub.client(uid("u"))
    async with hub.http(hub.token("sup", "supervisor")) as http:
        created = await http.post(
            "/api/campaigns",
            json={
                "texts": TEXTS,
                "audience": {"kind": "all"},
                "send_at": (datetime.now(UTC) + timedelta(seconds=3)).isoformat(),
            },
        )
        cid = created.json()["id"]
        edited = await http.patch(f"/api/campaigns/{cid}", json={"link": "https://help.example/x"})
        assert edited.status_code == 200 and edited.json()["link"] == "https://help.example/x"
        cancelled = await http.post(f"/api/campaigns/{cid}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert (await http.post(f"/api/campaigns/{cid}/cancel")).status_code == 409
        assert (await http.patch(f"/api/campaigns/{cid}", json={"link": "x"})).status_code == 409
        await user.quiet("notification", 4.5)
        got = (await http.get(f"/api/campaigns/{cid}")).json()
        assert got["status"] == "cancelled" and got["counts"]["delivered"] == 0
        actions = [e["action"] for e in (await http.get("/api/audit?limit=50")).json()]
        assert {"campaign.create", "campaign.edit", "campaign.cancel"} <= set(actions)
    await user.close()


async def test_uploaded_list_and_recent_alert_audiences(fast_hub, db):
    hub = fast_hub
    listed_seen, listed_new, other, alerted = uid("l"), uid("l"), uid("o"), uid("a")
    for user_id in (listed_seen, other, alerted):
        await (await hub.client(user_id)).close()
    # a new-device sign-in three days ago, and an old one of another user
    for user_id, age in ((alerted, 3), (other, 30)):
        await db.execute(
            "insert into notifications (id, user_id, seq, kind, title, body, data, created_at)"
            " values ($1, $2, notif_head($2) + 1, 'security.alert', 't', 'b', $3,"
            " now() - make_interval(days => $4))",
            uuid.uuid4().hex, user_id, {"alert": "new_device_login"}, age,
        )  # fmt: skip
    async with hub.http(hub.token("svc", "service")) as http:
        alert = {"kind": "alert", "alert": "new_device_login", "days": 7}
        assert (await http.post("/api/campaigns/preview", json={"audience": alert})).json() == {
            "size": 1
        }
        listed = {"audience": {"kind": "list"}, "user_ids": [listed_seen, listed_new, listed_seen]}
        assert (await http.post("/api/campaigns/preview", json=listed)).json() == {"size": 2}
        bad = await http.post("/api/campaigns/preview", json={"audience": {"kind": "list"}})
        assert bad.status_code == 422
        ids = []
        for extra in ({"audience": alert}, listed):
            r = await http.post("/api/campaigns", json={"texts": TEXTS, **extra})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        for cid in ids:
            await wait_status(http, cid, "sent")
    rows = await db.fetch(
        "select campaign_id, user_id from notifications where campaign_id = any($1::bigint[])"
        " order by campaign_id, user_id",
        ids,
    )
    assert [(r["campaign_id"], r["user_id"]) for r in rows] == [
        (ids[0], alerted),
        *sorted([(ids[1], listed_seen), (ids[1], listed_new)]),
    ]


async def test_bad_campaign_input_is_refused_plainly(fast_hub):
    hub = fast_hub
    async with hub.http(hub.token("sup", "supervisor")) as http:
        naive = await http.post("/api/campaigns", json={
            "texts": TEXTS, "audience": {"kind": "all"}, "send_at": "2030-01-01T09:00:00"})  # fmt: skip
        assert naive.status_code == 422  # a time without a zone is never guessed
        assert (await http.get("/api/campaigns/abc")).status_code == 404
        assert (await http.get("/api/campaigns/99999999")).status_code == 404
        link = await http.post("/api/campaigns", json={
            "texts": TEXTS, "audience": {"kind": "all"}, "link": "javascript:alert(1)"})  # fmt: skip
        assert link.status_code == 422
    async with hub.http(hub.token(uid("u"))) as user_http:
        assert (await user_http.post("/api/campaigns", json={
            "texts": TEXTS, "audience": {"kind": "all"}})).status_code == 403  # fmt: skip


async def test_campaign_command_schedules_previews_and_cancels(fast_hub, services, tmp_path):
    hub = fast_hub
    listed = [uid("cli"), uid("cli")]
    user = await hub.client(listed[0])
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(listed) + "\n")
    env = {"HUB_DATABASE_URL": services.dsn, "HUB_REDIS_URL": services.redis_url,
           "HUB_SECRET": SECRET}  # fmt: skip
    audience = f"list:{ids_file}"
    out = await asyncio.to_thread(run_cli, "campaign", "preview", "--audience", audience, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2 users"
    texts = ["--title-zh", "别把验证码告诉任何人", "--body-zh", "客服不会索要验证码。",
             "--title-en", "Never share your codes", "--body-en", "We never ask for them."]  # fmt: skip
    later = await asyncio.to_thread(run_cli, "campaign", "create", *texts, "--audience", "all",
                                    "--at", "2099-01-01T09:00", "--tz", "Asia/Shanghai", env=env)  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert "2099-01-01T01:00:00+00:00" in later.stdout  # 09:00 in Beijing
    later_id = later.stdout.split()[1]
    cancelled = await asyncio.to_thread(run_cli, "campaign", "cancel", later_id, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    again = await asyncio.to_thread(run_cli, "campaign", "cancel", later_id, env=env)
    assert again.returncode != 0 and "cancelled" in again.stderr
    now = await asyncio.to_thread(run_cli, "campaign", "create", *texts, "--category", "security",
                                  "--audience", audience, env=env)  # fmt: skip
    assert now.returncode == 0, now.stderr
    card = await user.expect("notification", timeout=20)
    assert card["data"]["category"] == "security" and card["title"] == "别把验证码告诉任何人"
    listing = await asyncio.to_thread(run_cli, "campaign", "list", env=env)
    assert "cancelled" in listing.stdout
    await user.close()


async def test_counts_stay_exact_with_acks_and_marks_on_two_nodes(services, db):
    """The counts are kept as things happen (not recomputed from the copies): the same
    acknowledgement and the same click sent to two nodes at once count once, and the
    figures equal what the copies and the users' acknowledgements say."""
    one = await start_hub(services, campaign_poll_s=0.2, campaign_lease_s=2.0)
    two = await start_hub(services, campaign_poll_s=0.2, campaign_lease_s=2.0)
    try:
        users = [uid("two") for _ in range(6)]
        devices = [[await node.client(u) for node in (one, two)] for u in users]
        async with one.http(one.token("svc", "service")) as http:
            r = await http.post("/api/campaigns", json={"texts": TEXTS, "link": "account-security",
                                "audience": {"kind": "list"}, "user_ids": users})  # fmt: skip
            campaign_id = r.json()["id"]
            copies = [(await cards(pair[0], 1))[0] for pair in devices]
            await wait_status(http, campaign_id, "sent")
        readers, clickers = devices[:4], users[:3]
        await asyncio.gather(*(
            device.request({"type": "notifications.ack", "up_to": copy["seq"] + extra})
            for pair, copy in zip(readers, copies, strict=False)
            for device, extra in zip(pair, (0, 5), strict=True)
        ))  # fmt: skip

        async def click(node, user_id: str) -> int:
            async with node.http(node.token(user_id)) as user_http:
                path = f"/api/campaigns/{campaign_id}/marks"
                return (await user_http.post(path, json={"action": "clicked"})).status_code

        codes = await asyncio.gather(*(click(n, u) for u in clickers for n in (one, two)))
        assert set(codes) == {200}
        await asyncio.gather(*(click(n, users[5]) for n in (one, two)))  # not read, clicked
        async with two.http(two.token("sup", "supervisor")) as http:
            got = (await http.get(f"/api/campaigns/{campaign_id}")).json()["counts"]
            listed = (await http.get("/api/campaigns")).json()
        assert got == {"delivered": 6, "read": 4, "clicked": 4, "dismissed": 0}
        recomputed = await db.fetchval(
            "select count(*) from notifications n join users u on u.id = n.user_id"
            " where n.campaign_id = $1 and n.seq <= u.notif_acked",
            campaign_id,
        )
        assert recomputed == got["read"]
        assert next(c for c in listed["campaigns"] if c["id"] == campaign_id)["counts"] == got
        for pair in devices:
            for device in pair:
                await device.close()
    finally:
        await one.stop()
        await two.stop()


async def test_after_a_campaign_the_next_notifications_are_numbered_once(services):
    """A campaign's copies take their users' next seqs behind the nodes' heads
    (hub.rules.notif_heads): the sending node tells every node which users they were, so
    whichever node writes those users' next payment notifications numbers them from the
    store's heads at once, instead of writing, meeting a taken seq and writing again."""
    from hub.metrics import NOTIFICATIONS_NUMBERED_AGAIN

    def numbered_again() -> float:
        return NOTIFICATIONS_NUMBERED_AGAIN.labels("seq_taken")._value.get()

    one = await start_hub(services, campaign_poll_s=0.2, campaign_lease_s=2.0)
    two = await start_hub(services, campaign_poll_s=0.2, campaign_lease_s=2.0)
    try:
        users = [uid("n") for _ in range(8)]  # their events' owners: both nodes, by hash
        clients = [await one.client(u) for u in users]
        await publish_signed(services.redis_url, [tx_event(u) for u in users])
        for c in clients:
            assert (await c.expect("notification", timeout=10))["seq"] == 1
        async with one.http(one.token("svc", "service")) as http:
            r = await http.post("/api/campaigns", json={"texts": TEXTS, "audience": {"kind": "list"},
                                                        "user_ids": users})  # fmt: skip
            assert r.status_code == 201, r.text
            for c in clients:
                assert (await c.expect("notification", timeout=20))["seq"] == 2
            await wait_status(http, r.json()["id"], "sent")
        before = numbered_again()
        await publish_signed(services.redis_url, [tx_event(u) for u in users])
        for c in clients:
            frame = await c.expect("notification", timeout=10)
            assert (frame["kind"], frame["seq"]) == ("transaction.status", 3)
            await c.close()
        assert numbered_again() == before
    finally:
        await one.stop()
        await two.stop()
