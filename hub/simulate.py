"""`supporthub simulate`: realistic payment traffic over HTTP against a running server.

It talks to a running `supporthub dev` over HTTP only (it starts nothing and needs no
data directory): it uses the demo accounts (seeded by `dev`) and creates or refills
`sim-user-N` accounts through the dev-only `PUT /api/dev/account/{user_id}`, with tokens
from `/api/dev/token`. Then users pay each other at `--rate` payments a
second for `--seconds`: mostly instant, some standard, some failing (low balances,
payees that do not exist), a few new-device logins, and one user who bursts more than
the velocity limit once, to get frozen. Prints a summary.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter, deque
from decimal import Decimal

import httpx

from supporthub_core.exits import UNREACHABLE, CommandError

DEMO_USERS = ["u-alice", "u-bob", "u-carol", "u-dave"]
BURSTER = "sim-burst"
MAX_IN_FLIGHT = 50


async def _prepare(client: httpx.AsyncClient, n_users: int) -> tuple[list[str], dict[str, str]]:
    """Create or refill the simulator's accounts (unfrozen) and get every payer a token,
    all over HTTP through the dev server's /api/dev endpoints; return payers and tokens."""
    rng = random.Random(7)
    users = []
    for i in range(1, n_users + 1):
        # one in five is nearly broke, so insufficient_balance happens naturally
        balance = rng.choice(["12.00", "35.50"]) if i % 5 == 0 else f"{rng.randint(500, 5000)}.00"
        await _account(client, f"sim-user-{i}", f"Sim User {i}", balance)
        users.append(f"sim-user-{i}")
    await _account(client, BURSTER, "Sim Burst", "10000.00")
    tokens = {u: await _token(client, u) for u in [*DEMO_USERS, *users, BURSTER]}
    demo = []
    for user in DEMO_USERS:
        r = await client.get(f"/api/accounts/{user}", headers=_auth(tokens[user]))
        if r.status_code == 200:
            demo.append(user)
    if len(demo) < len(DEMO_USERS):
        print("note: demo accounts missing (run `supporthub dev` once to seed them)")
    return demo + users, tokens


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def _account(client: httpx.AsyncClient, user_id: str, name: str, balance: str) -> None:
    r = await client.put(f"/api/dev/account/{user_id}", json={"name": name, "balance": balance})
    _dev_only(client, r)
    r.raise_for_status()


async def _token(client: httpx.AsyncClient, user_id: str) -> str:
    r = await client.get("/api/dev/token", params={"user": user_id})
    _dev_only(client, r)
    r.raise_for_status()
    return r.json()["token"]


def _dev_only(client: httpx.AsyncClient, r: httpx.Response) -> None:
    if r.status_code in (404, 405):
        raise CommandError(
            f"{client.base_url} has no /api/dev endpoints: simulate drives a `supporthub dev`"
            " server (pass its address with --url)"
        )


class Stats:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.frozen: set[str] = set()
        self.skipped = 0  # ticks where every user was at the pace a person keeps

    def record(self, outcome: str, latency: float) -> None:
        self.outcomes[outcome] += 1
        self.latencies.append(latency)


async def _pay(
    client: httpx.AsyncClient,
    token: str,
    payee: str,
    amount: str,
    speed: str,
    stats: Stats,
    payer: str | None = None,
) -> dict | None:
    body = {
        "to_account": payee,
        "amount": amount,
        "speed": speed,
        "idempotency_key": uuid.uuid4().hex,
        "memo": "simulated",
    }
    started = time.perf_counter()
    try:
        resp = await client.post(
            "/api/payments", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        stats.record(f"http error {type(exc).__name__}", time.perf_counter() - started)
        return None
    latency = time.perf_counter() - started
    if resp.status_code != 202:
        stats.record(f"http {resp.status_code}", latency)
        return None
    data = resp.json()
    outcome = data["status"] + (f" ({data['reason']})" if data.get("reason") else "")
    stats.record(outcome, latency)
    if payer is not None and data.get("reason") == "account_frozen":
        stats.frozen.add(payer)  # a real user stops and calls support
    return data


def _amount(rng: random.Random) -> str:
    cents = int(rng.lognormvariate(8.0, 1.2))  # mostly tens to hundreds of yuan
    return str((Decimal(max(cents, 1)) / 100).quantize(Decimal("0.01")))


async def run(url: str, n_users: int, seconds: float, rate: float) -> Stats:
    from supporthub_core.settings import Settings

    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            payers, tokens = await _prepare(client, n_users)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"nothing answers at {url} ({exc!r}): start `supporthub dev`, or pass its --url",
            UNREACHABLE,
        ) from None
    settings = Settings()
    velocity_max, velocity_window = settings.risk_velocity_max, settings.risk_velocity_window_s
    history: dict[str, deque] = {}
    rng = random.Random()
    stats = Stats()
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task] = set()

    async def one(coro) -> None:
        async with slots:
            await coro

    def spawn(coro) -> None:
        task = asyncio.create_task(one(coro))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def burst(client: httpx.AsyncClient) -> None:
        # more than the velocity limit at once: the 11th is refused and the account frozen
        for _ in range(velocity_max + 2):
            payee = rng.choice(payers)
            await _pay(client, tokens[BURSTER], payee, "1.00", "instant", stats, BURSTER)

    def pick_payer(now: float) -> str | None:
        # ordinary users stay under the velocity limit (a person does not pay 11 times a
        # minute); frozen ones stop paying
        for _ in range(len(payers)):
            payer = rng.choice(payers)
            recent = history.setdefault(payer, deque())
            while recent and recent[0] < now - velocity_window:
                recent.popleft()
            if payer not in stats.frozen and len(recent) < velocity_max - 2:
                recent.append(now)
                return payer
        return None

    async def new_device(client: httpx.AsyncClient, user: str) -> None:
        body = {"device_id": f"sim-{uuid.uuid4().hex[:8]}", "device_name": "Simulated phone"}
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        try:
            resp = await client.post("/api/devices/login", json=body, headers=headers)
            stats.outcomes[f"device login {resp.status_code}"] += 1
        except httpx.HTTPError:
            stats.outcomes["device login error"] += 1

    total = max(1, int(seconds * rate))
    burst_at = total // 3
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        for i in range(total):
            payer = pick_payer(time.monotonic())
            if payer is None:
                stats.skipped += 1
            else:
                if rng.random() < 0.05:
                    payee = f"sim-ghost-{rng.randint(1, 99)}"  # invalid_payee
                else:
                    payee = rng.choice([p for p in payers if p != payer])
                speed = "standard" if rng.random() < 0.2 else "instant"
                spawn(_pay(client, tokens[payer], payee, _amount(rng), speed, stats, payer))
            if i == burst_at:
                spawn(burst(client))
            if rng.random() < 0.02 and payer is not None:
                spawn(new_device(client, payer))
            # pace by the clock, not by the sleeps, so slow responses do not lower the rate
            ahead = started + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        while tasks:
            await asyncio.gather(*list(tasks), return_exceptions=True)
    return stats


def _print_summary(stats: Stats, elapsed: float) -> None:
    n = len(stats.latencies)
    print(f"\n{n} payments in {elapsed:.1f} s ({n / elapsed:.1f}/s)")
    for outcome, count in stats.outcomes.most_common():
        print(f"  {count:6d}  {outcome}")
    if stats.latencies:
        lat = sorted(stats.latencies)
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        print(
            f"latency: p50 {statistics.median(lat) * 1000:.1f} ms,"
            f" p95 {p95 * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
        )
    if stats.skipped:
        print(f"{stats.skipped} ticks skipped: every user was at a person's pace (add --users)")
    frozen = ", ".join(sorted(stats.frozen)) or "none"
    print(f"frozen accounts: {frozen}")


def default_url() -> str:
    """The address of the `supporthub dev` running on this data directory, if one is,
    else HUB_HOST:HUB_PORT."""
    from hub.datadir import running_owner
    from supporthub_core.settings import Settings

    settings = Settings()
    owner = running_owner(settings)
    if owner is not None and owner.url:
        return owner.url
    return f"http://{settings.host}:{settings.port}"


def main(args) -> None:
    started = time.monotonic()
    url = (args.url or default_url()).rstrip("/")
    print(f"simulating against {url}", flush=True)
    stats = asyncio.run(run(url, args.users, args.seconds, args.rate))
    _print_summary(stats, time.monotonic() - started)
