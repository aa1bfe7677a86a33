"""The Python client library (supporthub_client.Client) against real hubs: a connection cut
mid-stream, a server restarted, frames replayed twice, an outbox carried over a restart of
the client: nothing lost, nothing doubled, every message stored once. Both codecs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from supporthub_client import (
    Client,
    FileOutbox,
    Message,
    Notification,
    StateChange,
    client_msg_id,
)
from tests.clientlibs import free_port, online_agent, start_hub_on, uid

pytestmark = pytest.mark.usefixtures("clean")
CODECS = ["json", "msgpack"]


async def collect(client: Client, kind: str, n: int, timeout: float = 20) -> list[Any]:
    """The next `n` events of a frame type."""
    return [await client.next_event(kind, timeout=timeout) for _ in range(n)]


async def open_with_agent(client: Client, agent: Any) -> str:
    opened = await client.open_chat("payment", "hello", handoff="agent")
    cid = str(opened["conversation_id"])
    await agent.expect("chat.assigned", conversation_id=cid)
    return cid


async def agent_says(agent: Any, cid: str, texts: list[str]) -> None:
    for text in texts:
        ack = await agent.request({"type": "chat.send", "conversation_id": cid,
                                   "client_msg_id": client_msg_id(), "text": text})  # fmt: skip
        assert ack["type"] == "ack", ack


@pytest.mark.parametrize("codec", CODECS)
async def test_cut_mid_stream_then_duplicates_nothing_lost_nothing_doubled(
    hub: Any, db: Any, codec: str
) -> None:
    agent = await online_agent(hub, db, "alice", ["payment"])
    user = Client(hub.ws_url, hub.token(uid(), name="Lin"), codec=codec, backoff_base=0.05)
    await user.start()
    assert user.protocol.endswith(codec + ".v1")
    cid = await open_with_agent(user, agent)
    seen: list[Message] = []
    user.on("message", seen.append)

    await agent_says(agent, cid, [f"a{i}" for i in range(5)])
    await user.drop()  # the network fails under the stream
    await agent_says(agent, cid, [f"b{i}" for i in range(5)])  # while it is away
    await user.wait_open()
    await agent_says(agent, cid, [f"c{i}" for i in range(5)])
    while len([m for m in seen if m.sender.role == "agent"]) < 15:
        await user.next_event("message")
    assert user.connects >= 2
    texts = [m.text for m in seen if m.sender.role == "agent"]
    assert texts == [f"{p}{i}" for p in "abc" for i in range(5)]
    assert [m.seq for m in seen] == list(range(seen[0].seq, seen[0].seq + len(seen)))

    # frames arriving twice: forget the cursor, so the hub replays the whole chat again
    user.conversations[cid].watermark = 0
    before = len(seen)
    await user.drop()
    await user.wait_open()
    await agent_says(agent, cid, ["d0"])
    while not any(m.text == "d0" for m in seen):
        await user.next_event("message")
    assert [m.text for m in seen[before:]] == ["d0"]  # the replay was recognised by id

    await user.stop()
    await agent.close()


@pytest.mark.parametrize("codec", CODECS)
async def test_outbox_survives_a_restart_of_the_client_and_is_stored_once(
    hub: Any, db: Any, codec: str, tmp_path: Path
) -> None:
    agent = await online_agent(hub, db, "alice", ["payment"])
    token = hub.token(uid(), name="Lin")
    first = Client(hub.ws_url, token, codec=codec)
    await first.start()
    cid = await open_with_agent(first, agent)
    await first.stop()

    outbox = FileOutbox(tmp_path / "outbox.json")
    dead = f"ws://127.0.0.1:{free_port()}/ws"  # no hub there: the client stays offline
    offline = Client(dead, token, codec=codec, outbox=outbox, backoff_base=0.05)
    await offline.start(wait=False)
    cmids = [offline.queue_message(cid, f"offline {i}") for i in range(3)]
    await asyncio.sleep(0)
    assert [f["client_msg_id"] for f in outbox.load()] == cmids
    stale_copy = outbox.load()
    await offline.stop()  # the app is closed with its messages unsent

    again = Client(hub.ws_url, token, codec=codec, outbox=outbox)
    assert [f["client_msg_id"] for f in again.unsent] == cmids
    await again.start()
    got = [await agent.expect("message", conversation_id=cid) for _ in range(3)]
    assert [m["text"] for m in got] == [f"offline {i}" for i in range(3)]
    assert [m["client_msg_id"] for m in got] == cmids
    while again.unsent:
        await again.next_event()
    assert outbox.load() == []
    await again.stop()

    # a stale copy of the outbox (another device, a crash before the save) sends them again:
    # the hub answers with the stored messages, and stores nothing new
    outbox.save(stale_copy)
    third = Client(hub.ws_url, token, codec=codec, outbox=outbox)
    await third.start()
    while third.unsent:
        await third.next_event()
    await agent.quiet("message", 0.3)
    async with hub.http(hub.token("alice", "agent")) as http:
        conv = (await http.get(f"/api/conversations/{cid}")).json()
    assert [m["text"] for m in conv["messages"]].count("offline 0") == 1
    await third.stop()
    await agent.close()


async def test_server_restart_resumes_notifications_and_messages(services: Any, db: Any) -> None:
    port = free_port()
    hub = await start_hub_on(services, port)
    agent = await online_agent(hub, db, "alice", ["payment"])
    user_id = uid()
    # the token is asked for again at every connect
    user = Client(hub.ws_url, lambda: hub.token(user_id), codec="msgpack", backoff_base=0.05)
    await user.start()
    cid = await open_with_agent(user, agent)
    await agent_says(agent, cid, ["before"])
    while getattr(await user.next_event("message"), "text", None) != "before":
        pass
    await agent.close()

    await hub.stop()  # every socket closed; nothing listens for a moment
    hub = await start_hub_on(services, port)
    agent = await hub.client("alice", "agent", name="Alice")
    await agent.request({"type": "agent.status", "status": "online"})
    await agent_says(agent, cid, ["after"])
    async with hub.http(hub.token("sup", "supervisor")) as http:
        r = await http.post("/api/broadcasts", json={"title": "T", "body": "B"})
        assert r.status_code == 202
    got: list[Any] = []
    while not (any(isinstance(e, Notification) for e in got) and
               any(isinstance(e, Message) and e.text == "after" for e in got)):  # fmt: skip
        got.append(await user.next_event(timeout=30))
    assert user.connects >= 2
    assert [e.text for e in got if isinstance(e, Message) and e.sender.role == "agent"] == ["after"]
    assert [e.title for e in got if isinstance(e, Notification)] == ["T"]
    await user.stop()
    await agent.close()
    await hub.stop()


def test_backoff_grows_is_capped_and_jittered() -> None:
    import random

    client = Client("ws://127.0.0.1:9/ws", "t", backoff_base=0.4, backoff_max=15,
                    rng=random.Random(7))  # fmt: skip
    delays = [client.backoff(n) for n in range(12)]
    for n, d in enumerate(delays):
        ceiling = min(15, 0.4 * 2**n)
        assert ceiling / 2 <= d <= ceiling
    assert len({round(client.backoff(3), 6) for _ in range(20)}) > 1  # spread, not fixed


async def test_a_refused_token_stops_it_instead_of_knocking_forever(hub: Any) -> None:
    client = Client(hub.ws_url, "not-a-token", backoff_base=0.05)
    await client.start(wait=False)
    while True:
        event = await client.next_event()
        if isinstance(event, StateChange) and event.state == "unauthorized":
            break
    assert client.close_codes == [4001] and client.connects == 0
    await client.stop()


async def test_the_session_is_kept_alive_past_its_token_with_auth_refresh(hub: Any) -> None:
    user_id = uid()
    # tokens of 4 s, refreshed 2.5 s before they run out: the session outlives several
    client = Client(hub.ws_url, lambda: hub.token(user_id, ttl=4), refresh_before=2.5)
    await client.start()
    first_exp = client.welcome["exp"] if client.welcome else 0
    while client.refreshes < 3:
        await client.next_event("ack", timeout=30)
    assert client.connects == 1 and client.close_codes == []
    assert client._session_exp > first_exp + 1
    await client.stop()


async def test_without_a_cursor_a_reconnect_does_not_replay_old_notifications(hub: Any) -> None:
    user_id = uid()
    async with hub.http(hub.token("sup", "supervisor")) as http:
        for title in ("old-1", "old-2"):
            r = await http.post("/api/broadcasts", json={"title": title, "body": "b"})
            assert r.status_code == 202
    seen = await hub.client(user_id, resume={"notifications_after": 0})  # they are stored
    for _ in range(2):
        await seen.expect("notification")
    await seen.close()

    client = Client(hub.ws_url, hub.token(user_id), backoff_base=0.05)
    got: list[Notification] = []
    client.on("notification", got.append)
    await client.start()
    await client.drop()
    while client.connects < 2:
        await client.next_event("welcome")
    async with hub.http(hub.token("sup", "supervisor")) as http:
        r = await http.post("/api/broadcasts", json={"title": "new", "body": "b"})
        assert r.status_code == 202
    while not got:
        await client.next_event("notification")
    assert [n.title for n in got] == ["new"]
    await client.stop()
