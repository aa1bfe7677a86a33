"""Deterministic micro-benchmarks of the notification path's per-event CPU, for
instruction counts under callgrind (the same script runs against any checkout; set
PYTHONHASHSEED=0 so that two runs of one checkout count the same):

    valgrind --tool=callgrind --callgrind-out-file=out.cg python bench/cpu_micro.py open
    callgrind_annotate out.cg | head

Scenarios: `open` (10,000 signed events through the gate), `sign` (10,000 events signed
as a publisher signs them: the payments outbox relay, the benchmarks' driver), `lag` (the outbox lag of
10,000 events observed after their batches), `own` (200 chunks of 200 frames this node
published coming back to it on the fan-out channel), `deliver` (10,000 notifications to
1,000 binary sockets written directly, as the fan-out delivers them). `<scenario>-setup` runs the setup
alone: subtract it.
"""

from __future__ import annotations

import sys
import time

import msgpack

from bench.common import hub_event
from hub.cluster.bus import user_channel
from hub.ws.protocol import encode_msgpack
from supporthub_core.event_signing import sign_event

KEY = b"bench-events-key"
N = 10_000
REPEAT = 5  # runs of the scenario after its setup: the import noise stays small


def signed_events() -> list[bytes]:
    now = time.time()
    return [
        sign_event(msgpack.packb(hub_event("r", j, 1000, now), use_bin_type=True), KEY)
        for j in range(N)
    ]


def setup_open():
    from hub.services.event_gate import EventGate

    gate, messages = EventGate(KEY), signed_events()

    def run() -> None:
        opened = [gate.open(m) for m in messages]
        assert all(e is not None for e in opened)

    return run


def setup_lag():
    from hub.services import notify

    now = time.time()
    batches = [[now - (j % 100) / 1000 for j in range(lo, lo + 2000)] for lo in range(0, N, 2000)]

    def run() -> None:
        for occurred in batches:
            notify._Staged(len(occurred), None, occurred).observe_lag()

    return run


def setup_own():
    from hub.cluster.bus import FANOUT_CHANNEL, Bus
    from hub.cluster.delivery import ORIGIN, origin_marker
    from hub.cluster.node import Node
    from hub.ws.protocol import encode_msgpack

    node = Node.__new__(Node)  # only what its bus handler reads
    node._own_marker = origin_marker("node-a")
    bus = Bus("redis://unused", "bus-key", "node-a", node._on_bus_message)
    if hasattr(bus, "skip_own"):  # not in older checkouts: there the node skips them
        bus.skip_own(FANOUT_CHANNEL, node._own_marker)
    frame = encode_msgpack({"type": "notification", "seq": 1, "body": "x" * 200})
    chunk = encode_msgpack([(ORIGIN, "node-a")] + [("u:1", frame, "notification", 1)] * 200)
    # each sealed once: a frame heard twice is a replay, refused with a warning
    sealed = iter([bus.seal(FANOUT_CHANNEL, chunk) for _ in range(200 * REPEAT)])

    def run() -> None:
        for _ in range(200):
            bus._dispatch(FANOUT_CHANNEL, next(sealed))

    return run


def setup_deliver():
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    from hub.ws.connection import Connection, RateLimiter
    from hub.ws.registry import Registry
    from hub.ws.uvicorn_fast import LeanEvent
    from supporthub_core.auth import Claims

    class Transport:
        def write(self, data: bytes) -> None:
            pass

    registry = Registry()
    for u in range(1000):
        proto = WebSocketsSansIOProtocol.__new__(WebSocketsSansIOProtocol)
        proto.conn = ServerProtocol()
        proto.conn.state = State.OPEN
        proto.transport = Transport()
        proto.writable = LeanEvent()
        proto.writable.set()
        proto.close_sent = proto.disconnected = False
        conn = Connection(proto.send, binary=True, max_queue=100, limiter=RateLimiter(1, 1))
        conn.claims = Claims(sub=f"u{u}", role="user")
        registry.add(conn)
    frame = encode_msgpack({"type": "notification", "body": "x" * 200})
    items = [
        (f"{user_channel('')}u{j % 1000}", frame, "notification", j // 1000 + 1) for j in range(N)
    ]
    rounds = iter(range(REPEAT))

    def run() -> None:
        base = next(rounds) * (N // 1000)  # every round's seqs follow the last round's
        for channel, data, kind, seq in items:
            registry.deliver_sequenced(channel, data, kind, base + seq)

    return run


def setup_sign():
    from supporthub_core import event_signing

    now = time.time()
    events = [msgpack.packb(hub_event("r", j, 1000, now), use_bin_type=True) for j in range(N)]
    if hasattr(event_signing, "EventSigner"):  # the key set up once, the envelope joined
        sign = event_signing.EventSigner(KEY).sign
    else:  # older checkouts: the map packed and the HMAC keyed per event

        def sign(event: bytes) -> bytes:
            return sign_event(event, KEY)

    def run() -> None:
        for event in events:
            sign(event)

    return run


SCENARIOS = {
    "open": setup_open,
    "lag": setup_lag,
    "own": setup_own,
    "deliver": setup_deliver,
    "sign": setup_sign,
}


def main(arg: str) -> None:
    """`open`, `lag`, `own`: setup and run; `open-setup`...: the setup alone."""
    name, _, only_setup = arg.partition("-")
    run = SCENARIOS[name]()
    if not only_setup:
        for _ in range(REPEAT):
            run()


if __name__ == "__main__":
    main(sys.argv[1])
