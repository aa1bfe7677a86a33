"""`supporthub doctor`: a self-test of a running deployment, from the outside, through
the same doors clients use. For every node given:

- it answers (`/healthz`) and is ready (`/readyz`: PostgreSQL, Redis, the bus);
- a WebSocket connects and gets `welcome` for its `hello`;
- routing answers: a supervisor's queue snapshot (`/api/stats`);
- its clock agrees with this machine's (the `Date` header) and with the other nodes'.

Then one probe goes the whole way a payment alert goes: a service token reports a login
of the probe user `sh-doctor` from a new device to the payments API, which writes a
`new_device_login` alert to its outbox; the relay publishes it on Redis; the hub that owns
the user stores the notification and pushes it; every node's socket of `sh-doctor` must
receive it. Tokens are signed with HUB_SECRET (or the running `dev`'s secret).

Each check prints ok or FAIL with why and what to look at; any failure: exit 1; no node
answering at all: exit 4.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from supporthub_core.auth import issue_token
from supporthub_core.exits import FAILED, OK, UNREACHABLE

PROBE_USER = "sh-doctor"
BASE_DEVICE = "sh-doctor-base"
#: the Date header has whole seconds, and servers refresh it once a second: the server's
#: clock was somewhere in [Date, Date + this) when it answered
DATE_WINDOW_S = 2.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Node:
    url: str
    answered: bool = False
    welcomed: bool = False
    skew_s: tuple[float, float] | None = None  # server clock minus ours: low, high
    ws: ClientConnection | None = None
    frames: list = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Doctor:
    def __init__(self, urls: list[str], payments_url: str | None, secret: str, *,
                 timeout: float = 10.0, max_skew: float = 2.0) -> None:  # fmt: skip
        self.nodes = [Node(u.rstrip("/")) for u in urls]
        self.payments_url = (payments_url or urls[0]).rstrip("/")
        self.secret = secret
        self.timeout = timeout
        self.max_skew = max_skew
        self.checks: list[Check] = []
        self._readers: list[asyncio.Task] = []

    def _add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def token(self, role: str, sub: str = PROBE_USER) -> str:
        return issue_token(self.secret, sub, role, name="supporthub doctor", ttl=300)

    async def run(self) -> list[Check]:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            try:
                for node in self.nodes:
                    await self._node(http, node)
                self._clocks()
                if any(n.answered for n in self.nodes):
                    await self._probe(http)
            finally:
                await self._close()
        return self.checks

    async def _node(self, http: httpx.AsyncClient, node: Node) -> None:
        at = node.url
        sent = time.time()
        try:
            r = await http.get(f"{at}/healthz")
        except httpx.HTTPError as exc:
            self._add(f"{at} answers", False,
                      f"{_why(exc)}: is the hub running there? (supporthub serve / dev)")  # fmt: skip
            return
        got = time.time()
        node.answered = r.status_code == 200
        name = (r.json().get("node") if node.answered else None) or "?"
        self._add(f"{at} answers", node.answered,
                  f"node {name} in {(got - sent) * 1000:.0f} ms" if node.answered
                  else f"/healthz answered {r.status_code}")  # fmt: skip
        if not node.answered:
            return
        date = r.headers.get("date")
        if date:
            server = email.utils.parsedate_to_datetime(date).timestamp()
            node.skew_s = (server - got, server + DATE_WINDOW_S - sent)
        await self._ready(http, node)
        await self._socket(node)
        await self._routing(http, node)

    async def _ready(self, http: httpx.AsyncClient, node: Node) -> None:
        try:
            r = await http.get(f"{node.url}/readyz")
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._add(f"{node.url} ready", False, _why(exc))
            return
        parts = {k: v for k, v in body.items() if k != "ready"}
        down = [k for k, v in parts.items() if not v]
        if not down and r.status_code == 200:
            self._add(f"{node.url} ready", True, ", ".join(parts) + " answer")
            return
        hints = {
            "postgres": "PostgreSQL (HUB_DATABASE_URL) does not answer",
            "redis": "Redis (HUB_REDIS_URL) does not answer",
            "bus": "the bus does not hear its own probes (Redis down or deaf)",
        }
        self._add(f"{node.url} ready", False,
                  "; ".join(hints.get(k, f"{k} down") for k in down) or f"/readyz {r.status_code}")  # fmt: skip

    async def _socket(self, node: Node) -> None:
        parts = urlsplit(node.url)
        ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{parts.path}/ws"
        started = time.monotonic()
        try:
            ws = await asyncio.wait_for(
                websockets.connect(ws_url, subprotocols=[Subprotocol("supporthub.json.v1")],
                                   additional_headers={"X-Request-ID": f"doctor-{uuid.uuid4().hex[:12]}"}),
                self.timeout,
            )  # fmt: skip
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            self._add(f"{node.url} socket", False, f"could not open {ws_url}: {_why(exc)}")
            return
        node.ws = ws
        try:
            await ws.send(orjson.dumps({"type": "hello", "token": self.token("user")}).decode())
            first = orjson.loads(await asyncio.wait_for(ws.recv(), self.timeout))
        except (TimeoutError, websockets.WebSocketException) as exc:
            code = getattr(ws, "close_code", None)
            self._add(f"{node.url} socket", False,
                      f"no welcome for hello ({_why(exc)}{f', closed {code}' if code else ''})")  # fmt: skip
            return
        if first.get("type") != "welcome":
            error = first.get("message") or first.get("code") or first.get("type")
            hint = (" (HUB_SECRET differs from the deployment's)"
                    if first.get("code") == "unauthorized" else "")  # fmt: skip
            self._add(f"{node.url} socket", False, f"hello refused: {error}{hint}")
            return
        node.welcomed = True
        self._add(f"{node.url} socket", True,
                  f"hello/welcome in {(time.monotonic() - started) * 1000:.0f} ms")  # fmt: skip
        self._readers.append(asyncio.create_task(_read(node)))

    async def _routing(self, http: httpx.AsyncClient, node: Node) -> None:
        headers = {"Authorization": f"Bearer {self.token('supervisor')}"}
        try:
            r = await http.get(f"{node.url}/api/stats", headers=headers)
        except httpx.HTTPError as exc:
            self._add(f"{node.url} routing", False, _why(exc))
            return
        if r.status_code != 200:
            self._add(f"{node.url} routing", False, f"queue snapshot: {r.status_code} {_error(r)}")
            return
        stats = r.json()
        queue, agents = stats.get("queue", {}), stats.get("agents", {})
        self._add(f"{node.url} routing", True,
                  f"{queue.get('total', '?')} chats waiting, {agents.get('online', '?')} agents online")  # fmt: skip

    def _clocks(self) -> None:
        skews = [(n.url, n.skew_s) for n in self.nodes if n.skew_s is not None]
        limit = self.max_skew
        for url, (low, high) in skews:
            off = max(low - limit, 0) + max(-limit - high, 0)  # how far 0 is outside
            self._add(f"{url} clock", off == 0,
                      f"between {low:+.1f} s and {high:+.1f} s from this machine's clock"
                      + ("" if off == 0 else f" (more than {limit:g} s: check NTP)"))  # fmt: skip
        if len(skews) > 1:
            apart = max(lo for _, (lo, _) in skews) - min(hi for _, (_, hi) in skews)
            self._add("clocks between nodes", apart <= limit,
                      f"at most {max(apart, 0) + 0:.1f} s apart beyond the Date header's resolution"
                      + ("" if apart <= limit else " (check NTP on the nodes)"))  # fmt: skip

    async def _probe(self, http: httpx.AsyncClient) -> None:
        listening = [n for n in self.nodes if n.welcomed]
        if not listening:
            self._add("probe notification", False, "no socket is open to receive it (see above)")
            return
        headers = {"Authorization": f"Bearer {self.token('service', 'supporthub-doctor')}"}
        device = f"sh-doctor-{uuid.uuid4().hex[:12]}"
        login = f"{self.payments_url}/api/devices/login"
        started = time.monotonic()
        try:
            for device_id in (BASE_DEVICE, device):  # a known device first: the probe is new
                r = await http.post(login, headers=headers,
                                    json={"user_id": PROBE_USER, "device_id": device_id,
                                          "device_name": "supporthub doctor"})  # fmt: skip
                if r.status_code != 200:
                    hint = (" (not the payments API: pass --payments-url)"
                            if r.status_code in (404, 405) else "")  # fmt: skip
                    self._add("probe notification", False,
                              f"payments {login}: {r.status_code} {_error(r)}{hint}")  # fmt: skip
                    return
        except httpx.HTTPError as exc:
            self._add("probe notification", False,
                      f"payments at {self.payments_url}: {_why(exc)} (pass --payments-url)")  # fmt: skip
            return
        deadline = started + self.timeout
        missing = []
        for node in listening:
            if not await _wait_for_probe(node, device, deadline):
                missing.append(node.url)
        took = (time.monotonic() - started) * 1000
        if missing:
            self._add("probe notification", False,
                      f"not received within {self.timeout:g} s on {', '.join(missing)}: payments"
                      " -> outbox -> Redis (payments.events) -> hub -> socket is broken"
                      " (look at supporthub_bus_healthy, supporthub_payment_events_rejected_total,"
                      " and whether HUB_EVENTS_KEY is the same for payments and the hub)")  # fmt: skip
        else:
            self._add("probe notification", True,
                      f"payments -> outbox -> Redis -> hub -> socket in {took:.0f} ms"
                      f" ({len(listening)} node{'s' if len(listening) > 1 else ''})")  # fmt: skip

    async def _close(self) -> None:
        for task in self._readers:
            task.cancel()
        for node in self.nodes:
            if node.ws is not None:
                try:
                    await asyncio.wait_for(node.ws.close(), 5)
                except (TimeoutError, websockets.WebSocketException, OSError):
                    pass
        await asyncio.gather(*self._readers, return_exceptions=True)


async def _read(node: Node) -> None:
    if node.ws is None:
        return
    try:
        async for raw in node.ws:
            node.frames.append(orjson.loads(raw))
            node.arrived.set()
    except websockets.WebSocketException:
        pass
    finally:
        node.arrived.set()


async def _wait_for_probe(node: Node, device: str, deadline: float) -> bool:
    while True:
        for frame in node.frames:
            data = frame.get("data") or {}
            if (frame.get("type") == "notification" and frame.get("kind") == "security.alert"
                    and (data.get("details") or {}).get("device_id") == device):  # fmt: skip
                return True
        left = deadline - time.monotonic()
        if left <= 0 or getattr(node.ws, "close_code", None) is not None:
            return False
        node.arrived.clear()
        try:
            await asyncio.wait_for(node.arrived.wait(), left)
        except TimeoutError:
            return False


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error(r: httpx.Response) -> str:
    try:
        return r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return r.text[:200]


def report(checks: list[Check]) -> int:
    """Print the checks; the exit code."""
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}", flush=True)
    failed = [c for c in checks if not c.ok]
    if not checks or not any(c.ok and c.name.endswith(" answers") for c in checks):
        print("nothing answered: is the hub running, and is --url right?", flush=True)
        return UNREACHABLE
    if failed:
        print(f"{len(failed)} of {len(checks)} checks failed", flush=True)
        return FAILED
    print(f"all {len(checks)} checks passed", flush=True)
    return OK


def probe_secret(settings) -> str:
    """HUB_SECRET, or the secret of the `dev` whose data directory is found; never a new one."""
    from hub.datadir import open_data_dir
    from supporthub_core.exits import USAGE, CommandError

    if settings.secret:
        return settings.secret
    fix = ("doctor signs its tokens with the deployment's secret: set HUB_SECRET, or run it"
           " where `supporthub dev` runs (or with HUB_DATA_DIR)")  # fmt: skip
    try:
        path = open_data_dir(settings, create=False) / "secret"
    except CommandError as exc:
        raise CommandError(f"{fix} ({exc.message.split(':', 1)[0]})", USAGE) from None
    if not path.exists():
        raise CommandError(f"{fix} (no secret in {path.parent})", USAGE)
    return path.read_text().strip()
