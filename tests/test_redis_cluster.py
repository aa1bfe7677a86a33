"""The bus on a real Redis Cluster with sharded pub/sub: three masters with a replica
each on loopback, two hubs chatting and notifying across it, then a master killed and
its replica promoted while delivery goes on."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as syncredis

from hub.cluster.bus import user_channel
from payments.seed import add_account
from tests.conftest import start_hub
from tests.events import publish_signed, tx_event
from tests.test_chat_flow import online_agent

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def _redis_major() -> int:
    if not REDIS_SERVER or not REDIS_CLI:
        return 0
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\d+)\.", out)
    return int(m.group(1)) if m else 0


pytestmark = pytest.mark.skipif(
    _redis_major() < 7,
    reason="needs redis-server and redis-cli 7 or later (sharded pub/sub) on PATH",
)

NODE_TIMEOUT_MS = 1000


def _cluster_ports(n: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randint(15000, 30000)
        if port in ports:
            continue
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        ports.append(port)
    return ports


class RedisClusterProcs:
    """Six redis-server processes (three masters, three replicas) on free loopback ports."""

    def __init__(self, root: Path):
        self.root = root
        self.ports = _cluster_ports(6)
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        for port in self.ports:
            d = self.root / str(port)
            d.mkdir(parents=True, exist_ok=True)
            self.procs[port] = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", str(d),
                 "--save", "", "--appendonly", "no", "--logfile", str(d / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        for port in self.ports:
            self._wait(lambda p=port: syncredis.Redis(port=p).ping())
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_ok()

        def replicas_in_sync() -> bool:  # a replica that never synced does not take over
            roles = [syncredis.Redis(port=p).info("replication") for p in self.ports]
            replicas = [i for i in roles if i["role"] == "slave"]
            return len(replicas) == 3 and all(i["master_link_status"] == "up" for i in replicas)

        self._wait(replicas_in_sync)

    def _wait(self, check, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except (syncredis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not get ready")
            time.sleep(0.1)

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def wait_ok(self) -> None:
        def ok() -> bool:
            for p in self.live_ports():
                info = syncredis.Redis(port=p, decode_responses=True).cluster("info")
                if info.get("cluster_state") != "ok":
                    return False
            return True

        self._wait(ok)

    def master_of(self, key: str) -> int:
        """The port of the master that owns `key`'s slot."""
        r = syncredis.Redis(port=self.live_ports()[0])
        slot = r.execute_command("CLUSTER KEYSLOT", key)
        for start, end, master, *_ in r.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(key)

    def kill(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def redis_cluster(services):
    cluster = RedisClusterProcs(services.root / f"rc-{uuid.uuid4().hex[:6]}")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@dataclass
class OnCluster:
    dsn: str
    redis_url: str


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_two_hubs_over_a_redis_cluster_survive_a_master_failover(isolated, redis_cluster):
    import asyncpg

    svc = OnCluster(isolated.dsn, redis_cluster.url)
    db = await asyncpg.connect(isolated.dsn)
    a = await start_hub(svc)
    b = await start_hub(svc)
    try:
        assert type(a.node.bus).__name__ == "ClusterBus"
        # chat across nodes: the agent on a, the user on b
        agent = await online_agent(a, db, "alice", ["payment"])
        # a user whose channel lives on the master the hubs were given as their address:
        # after it dies they must find the cluster through the nodes they discovered
        user_id = uid()
        while redis_cluster.master_of(user_channel(user_id)) != redis_cluster.ports[0]:
            user_id = uid()
        user = await b.client(user_id, name="Zhang San")
        opened = await user.request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "转账失败了"}
        )
        cid = opened["conversation_id"]
        await agent.expect("chat.assigned", conversation_id=cid)
        await agent.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1", "text": "您好"}
        )
        assert (await user.expect("message", conversation_id=cid, seq=2))["text"] == "您好"
        await user.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "u1", "text": "谢谢"}
        )
        assert (await agent.expect("message", conversation_id=cid, seq=3))["text"] == "谢谢"

        # payment events on the sharded payments.events channel reach both devices
        phone, tablet = await a.client(user_id), await b.client(user_id)
        await publish_signed(redis_cluster.url, [tx_event(user_id)])
        seqs = [(await d.expect("notification", timeout=15))["seq"] for d in (phone, tablet)]
        assert seqs[0] == seqs[1]

        # the payments relay in the hub publishes with SPUBLISH too
        await add_account(isolated.dsn, "payer-rc", "Poor", "5.00")
        await add_account(isolated.dsn, "shop-rc", "Shop", "0.00")
        payer = await b.client("payer-rc")
        async with a.http(a.token("payer-rc")) as http:
            r = await http.post(
                "/api/payments",
                json={"to_account": "shop-rc", "amount": "50.00", "speed": "instant",
                      "idempotency_key": uuid.uuid4().hex},
            )  # fmt: skip
        assert r.status_code == 202
        assert (await payer.expect("notification", timeout=15))["data"]["status"] == "failed"

        # a broadcast accepted on a (the nodes channel) reaches users on b
        async with a.http(a.token("ops", "service")) as http:
            r = await http.post("/api/broadcasts", json={"title": "维护", "body": "今晚维护"})
            assert r.status_code == 202
        await tablet.expect("notification", kind="system.notice", timeout=15)

        # presence (push decisions) asks the owning shard
        assert await b.node.bus.numsub([user_channel(user_id), user_channel("nobody")]) == [2, 0]

        # kill the master that holds the user's channel; its replica takes over
        victim = redis_cluster.master_of(user_channel(user_id))
        redis_cluster.kill(victim)

        def promoted() -> None:
            redis_cluster._wait(lambda: redis_cluster.master_of(user_channel(user_id)) != victim)
            redis_cluster.wait_ok()

        await asyncio.get_running_loop().run_in_executor(None, promoted)
        deadline = time.monotonic() + 30
        while not (a.node.bus.healthy and b.node.bus.healthy):
            assert time.monotonic() < deadline, "the bus did not come back after the failover"
            await asyncio.sleep(0.1)

        await agent.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "a2", "text": "好了"}
        )
        got = await user.expect("message", conversation_id=cid, text="好了", timeout=20)
        assert got["seq"] >= 4
        survivor = f"redis+cluster://127.0.0.1:{redis_cluster.live_ports()[0]}"
        await publish_signed(survivor, [tx_event(user_id)])
        for d in (phone, tablet):
            await d.expect("notification", kind="transaction.status", timeout=20)
        for c in (agent, user, phone, tablet, payer):
            await c.close()
    finally:
        await a.stop()
        await b.stop()
        await db.close()


async def test_two_hubs_on_a_redis_cluster_share_one_login_limit(isolated, redis_cluster):
    """The sign-in limits live in the cluster (hub.limits): guesses spread over two nodes
    are refused at the limit, not at twice it, and no node counts on its own."""
    import asyncpg
    import httpx

    from hub.limits import KEY_PREFIX, Rule
    from tests.test_chat_flow import add_agent

    svc = OnCluster(isolated.dsn, redis_cluster.url)
    db = await asyncpg.connect(isolated.dsn)
    a = await start_hub(svc)
    b = await start_hub(svc)

    async def login(server, username: str, password: str) -> int:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            r = await http.post(
                "/api/agents/login", json={"username": username, "password": password}
            )
        return r.status_code

    try:
        limit = a.hub.settings.login_failures_per_user_address
        await add_agent(db, "guessme", ["account"])
        codes = [await login((a, b)[i % 2], "guessme", f"wrong-{i}") for i in range(limit)]
        assert codes == [401] * limit
        # half the guesses went to each node: both refuse the next one, the right password too
        assert await login(a, "guessme", "wrong-a") == 429
        assert await login(b, "guessme", "wrong-b") == 429
        assert await login(b, "guessme", "pw-guessme") == 429

        # a success on one node clears the count the other node sees
        await add_agent(db, "typo", ["account"])
        for i in range(limit - 1):
            assert await login((a, b)[i % 2], "typo", f"oops-{i}") == 401
        assert await login(a, "typo", "pw-typo") == 200
        codes = [await login(b, "typo", f"again-{i}") for i in range(limit + 1)]
        assert codes == [401] * limit + [429]

        # the fixed-window count (new sockets per address) is shared the same way
        rule = Rule("ws-open-test", 3, 60, False)
        allowed = [await (a, b)[i % 2].hub.limits.hit(rule, "203.0.113.9") for i in range(5)]
        assert allowed == [True, True, True, False, False]

        # counted in the cluster's shards, never in the processes
        for server in (a, b):
            assert server.hub.limits.local.counts == {}
        keys: list[bytes] = []
        for port in redis_cluster.live_ports():
            keys += syncredis.Redis(port=port).keys(f"{KEY_PREFIX}*")
        assert any(b"guessme" in k for k in keys) and any(b"ws-open-test" in k for k in keys)
    finally:
        await a.stop()
        await b.stop()
        await db.close()
