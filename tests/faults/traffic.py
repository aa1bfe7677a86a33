"""Mixed traffic for the fault suite: users on several devices (spread over the nodes)
chatting with agents, and payments between them through the payments API, each
publisher retrying what failed with the same idempotency key or `client_msg_id`, so that
whatever the faults, every request ends up done exactly once."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import httpx

from hub.store import agents as agent_store
from payments.seed import add_account
from supporthub_core.errors import OUTAGES
from tests.faults.ledger import Device, Ledger, Record
from tests.faults.stack import Stack

DB_AWAY: tuple[type[BaseException], ...] = (*OUTAGES, asyncpg.PostgresError)


@dataclass
class User:
    sub: str
    devices: list[Device] = field(default_factory=list)
    conversation: str | None = None


@dataclass
class World:
    stack: Stack
    urls: list[str]
    ledger: Ledger
    rng: random.Random
    users: list[User] = field(default_factory=list)
    agents: list[Device] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"payments": 0, "messages": 0})
    errors: list[str] = field(default_factory=list)

    def device(self, sub: str, role: str = "user", start_at: int = 0) -> Device:
        record = Record(sub, role)
        dev = Device(self.urls, self.stack.token(sub, role, name=sub), record,
                     rng=random.Random(self.rng.random()), start_at=start_at)  # fmt: skip
        return self.ledger.add(dev.start())


async def populate(stack: Stack, urls: Sequence[str], *, users: int, devices: int = 2,
                   agents: int = 1, chats: int = 0, seed: int = 1,
                   ledger: Ledger | None = None) -> World:  # fmt: skip
    """`users` users with a funded account and `devices` devices each (device i on node i
    mod nodes), `agents` online agents (capacity for every chat), and `chats` of the
    users with an open chat assigned to an agent."""
    world = World(stack, list(urls), ledger or Ledger(), random.Random(seed))
    tag = uuid.uuid4().hex[:6]
    conn = await asyncpg.connect(stack.dsn)
    try:
        for i in range(agents):
            await agent_store.upsert(conn, username=f"ag{i}-{tag}", password="pw", name=f"A{i}",
                                     skills=["payment"], capacity=max(1, chats))  # fmt: skip
    finally:
        await conn.close()
    for i in range(agents):
        dev = world.device(f"ag{i}-{tag}", "agent", start_at=i)
        world.agents.append(dev)
    for dev in world.agents:
        await dev.wait_connected()
        answer = await dev.request({"type": "agent.status", "status": "online"})
        assert answer["type"] == "agent.state", answer
    for i in range(users):
        sub = f"u{i}-{tag}"
        await add_account(stack.dsn, sub, sub, "1000000.00")
        user = User(sub)
        for d in range(devices):
            user.devices.append(world.device(sub, start_at=d))
        world.users.append(user)
    for user in world.users:
        for dev in user.devices:
            await dev.wait_connected()
    for user in world.users[:chats]:
        opened = await user.devices[0].request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "hello"}
        )
        assert opened["type"] == "chat.opened", opened
        user.conversation = opened["conversation_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    for user in world.users[:chats]:
        while not any(user.conversation in a.record.history for a in world.agents):
            assert loop.time() < deadline, f"{user.conversation} was never assigned"
            await asyncio.sleep(0.05)
    return world


async def pay_until_done(http: httpx.AsyncClient, world: World, payer: str, payee: str,
                         deadline_s: float = 60) -> None:  # fmt: skip
    """One payment, retried with its idempotency key through outages (503) and resets."""
    body = {"to_account": payee, "amount": "1.00", "speed": "instant",
            "idempotency_key": uuid.uuid4().hex}  # fmt: skip
    headers = {"Authorization": f"Bearer {world.stack.token(payer)}"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        try:
            r = await http.post("/api/payments", json=body, headers=headers, timeout=10)
            if r.status_code == 202:
                world.counts["payments"] += 1
                return
            if r.status_code != 503:
                world.errors.append(f"payment answered {r.status_code}: {r.text[:200]}")
                return
        except httpx.HTTPError:
            pass
        if loop.time() > deadline:
            world.errors.append("a payment never went through")
            return
        await asyncio.sleep(0.2)


class Traffic:
    """Publishers running flat out (with `pause_s` between requests of each) until
    `stop()`: payments between random users, and chat messages both ways."""

    def __init__(self, world: World, payments_url: str | None, *, payers: int = 2,
                 chatters: bool = True, pause_s: float = 0.0) -> None:  # fmt: skip
        self.world = world
        self.payments_url = payments_url
        self.payers = payers
        self.chatters = chatters
        self.pause_s = pause_s
        self.running = True
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> Traffic:
        if self.payments_url:
            for i in range(self.payers):
                self.tasks.append(asyncio.create_task(self._payments(i)))
        if self.chatters:
            for user in self.world.users:
                if user.conversation:
                    self.tasks.append(asyncio.create_task(self._chat(user)))
        return self

    async def stop(self) -> None:
        self.running = False
        await asyncio.gather(*self.tasks)

    async def _payments(self, n: int) -> None:
        rng = random.Random(self.world.rng.random())
        assert self.payments_url
        async with httpx.AsyncClient(base_url=self.payments_url) as http:
            while self.running:
                payer, payee = rng.sample(self.world.users, 2)
                await pay_until_done(http, self.world, payer.sub, payee.sub)
                await asyncio.sleep(self.pause_s)

    async def _chat(self, user: User) -> None:
        assert user.conversation
        n = 0
        conn = await asyncpg.connect(self.world.stack.dsn)
        try:
            while self.running:
                n += 1
                if n % 3:
                    sender = user.devices[n % len(user.devices)]
                else:  # the agent who holds the chat now (it may have been re-routed)
                    sender = await self._agent_of(conn, user)
                try:
                    answer = await sender.send_until_acked(
                        user.conversation, f"m{n}", f"message {n}"
                    )
                    key = "messages" if answer["type"] == "ack" else "refused"
                    self.world.counts[key] = self.world.counts.get(key, 0) + 1
                except AssertionError as exc:
                    self.world.errors.append(str(exc))
                await asyncio.sleep(self.pause_s + 0.02)
        finally:
            await conn.close()

    async def _agent_of(self, conn: asyncpg.Connection, user: User) -> Device:
        try:
            holder = await conn.fetchval(
                "select agent_id from conversations where id = $1 and status = 'assigned'",
                user.conversation,
            )
        except DB_AWAY:
            holder = None  # PostgreSQL is restarting: the user writes this one
        for dev in self.world.agents:
            if not dev.abandoned and dev.record.sub == holder:
                return dev
        return user.devices[0]  # not assigned (now): the user talks alone
