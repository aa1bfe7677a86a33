"""`supporthub serve` with monkeypatched experiments: each one models a change that
docs/benchmarks.md recommends for hub/, so that its effect can be measured before anyone
edits hub/ (this file never changes hub/ on disk). Without `--hub-exp`, `bench/run.py`
runs the plain `supporthub serve`.

    .venv/bin/python bench/hub_experiment.py --exp trace serve --port 8000
    .venv/bin/python bench/run.py --only supporthub --hub-exp trace

Experiments (comma-separated):
  trace     timestamps of the notification path (notifier stage 1 and 2, COMMITs, push,
            fan-out delivery) and of a broadcast (request age, its transaction, the push)
            written to $BENCH_TRACE (default /tmp/hub-trace.json); bench/trace_summary.py
  gc        gc.freeze() after start-up and gc.set_threshold(10_000, 50, 100) (landed in
            hub/cli.py in 8842df6: applying it again changes nothing; kept as a control)
  rawpub    Bus.publish_many writes raw RESP on its own connection and counts the integer
            replies instead of a redis-py pipeline (the notification path no longer uses
            publish_many; it still serves to_conversation and other chat paths)
  gcstats   the cyclic collector's passes per generation, their wall and CPU time, written
            to $BENCH_GCSTATS every 5 s ($BENCH_GCYOUNG=1: what the first young passes held)
  noping    no WebSocket keepalive pings (what they cost: bench/idle.py --hub-exp noping)
  alone     no fan-out publish for other nodes after a batch was delivered here (what a
            lone node's publish and reading it back cost; unsafe while nodes join)
  fastframe notification frames packed with one reused msgpack.Packer, `ts` formatted once
            per batch (same bytes; 1.8 -> 0.6 us per frame in isolation)

Landed in hub/ (asking for them is an error: patching them again would double-apply or
break; the code of those up to P5 is in this file's history):
  batchpub, syncsend, fastid (8842df6: batched signed fan-out, direct socket writes,
  os.urandom ids); pipeline (P1: two ordered notifier stages), onestmt (P2: one-statement
  write_notifications), slimfan (P3: fan-out items carry type and seq,
  Registry.deliver_sequenced), smallchunk (P4: fan-out chunks of 200), twowriters (P5:
  hub.store.writer.Writers, HUB_WRITERS, default 2), memlean (M1: handshake request/response and
  scope headers dropped after accept; `bench/mem_breakdown.py --experiment` re-applies the
  same patch harmlessly); batchin (e4aeb84: payments.events payloads parsed from one Redis
  read decoded and offered to the notifier together) and batchfut (f62174d: one future
  per group-writer slice of a batch, not one future and callback per notification), both
  measured here first (docs/benchmarks.md, "Next changes").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

LANDED = {
    "fastframe": "178a17a (reused msgpack packer, ts formatted once per batch)",
    "batchpub": "8842df6", "syncsend": "8842df6", "fastid": "8842df6",
    "pipeline": "e9c436a, P1", "onestmt": "e9c436a, P2", "slimfan": "e9c436a, P3",
    "smallchunk": "e9c436a, P4", "twowriters": "e9c436a, P5: HUB_WRITERS",
    "memlean": "e9c436a, M1",
    "batchin": "e4aeb84", "batchfut": "f62174d",
}  # fmt: skip


def exp_gc() -> None:
    from hub.cluster.node import Node

    gc.set_threshold(10_000, 50, 100)
    start = Node.start

    async def patched(self):
        await start(self)
        gc.collect()
        gc.freeze()

    Node.start = patched


def exp_rawpub() -> None:
    from redis.asyncio.connection import parse_url

    from hub.cluster.bus import Bus, log

    async def publish_many(self, items):
        items = list(items)
        if not items:
            return
        lock = getattr(self, "_rawpub_lock", None)
        if lock is None:
            lock = self._rawpub_lock = asyncio.Lock()
        async with lock:
            try:
                rw = getattr(self, "_rawpub", None)
                if rw is None:
                    p = parse_url(self._url)
                    if "path" in p:
                        rw = await asyncio.open_unix_connection(p["path"])
                    else:
                        rw = await asyncio.open_connection(p.get("host", "localhost"),
                                                           p.get("port", 6379))  # fmt: skip
                    self._rawpub = rw
                reader, writer = rw
                parts = []
                for channel, payload in items:
                    sealed = self.seal(channel, payload)
                    ch = channel.encode()
                    parts.append(b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                                 % (len(ch), ch, len(sealed), sealed))  # fmt: skip
                writer.write(b"".join(parts))
                need = len(items)  # one integer reply (":n\r\n") per PUBLISH
                while need > 0:
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionError("redis closed")
                    need -= data.count(b"\r\n")
            except OSError as exc:
                self._rawpub = None
                log.warning("bus: publish of %d frames failed: %s", len(items), exc)

    Bus.publish_many = publish_many


def exp_trace() -> None:
    """Timestamps of the notification path (notifier batch, COMMIT, push, fan-out
    delivery) written to $BENCH_TRACE (default /tmp/hub-trace.json) at exit."""
    import atexit
    import json
    import time

    from hub.cluster.node import Node
    from hub.services.notify import Notifier
    from hub.store import Store

    events: list = []
    t = time.monotonic

    def wrap(cls, name, tag, size=lambda a: len(a[0]) if a and hasattr(a[0], "__len__") else 0):
        orig = getattr(cls, name)

        async def w(self, *a, **k):
            t0 = t()
            try:
                return await orig(self, *a, **k)
            finally:
                events.append((tag, t0, t(), size(a)))

        setattr(cls, name, w)

    wrap(Store, "_commit", "commit")
    wrap(Notifier, "_stage", "stage")  # languages, render, enqueue with the writers
    if hasattr(Notifier, "_render_and_queue"):  # also staged at once, in the offer's turn
        render_and_queue = Notifier._render_and_queue

        def traced_render(self, evs, locales):
            t0 = t()
            try:
                return render_and_queue(self, evs, locales)
            finally:
                events.append(("render", t0, t(), len(evs)))

        Notifier._render_and_queue = traced_render
    wrap(Notifier, "_finish", "finish", lambda a: a[0].size)  # await COMMITs, push
    wrap(Notifier, "push", "push")
    # a broadcast: its row, each chunk, each node's push of it, the query for the copies
    import hub.store.notifications as notif_store
    from hub.composition import Hub

    for fn in ("create_broadcast", "store_chunk", "broadcast_copies", "push_broadcast"):
        if hasattr(notif_store, fn):
            orig_fn = getattr(notif_store, fn)

            def make(orig_fn=orig_fn, tag="bcast:" + fn):
                async def w(*a, **k):
                    t0 = t()
                    try:
                        return await orig_fn(*a, **k)
                    finally:
                        events.append((tag, t0, t(), 0))

                return w

            setattr(notif_store, fn, make())
    wrap(Hub, "_push_broadcast", "bcast:node", lambda a: 0)
    import hub.services.broadcasts as broadcasts

    announce, push_here = broadcasts.announce, getattr(broadcasts, "push_here", None)

    async def traced_announce(*a, **k):
        t0 = t()
        sent_at = (a[5] if len(a) > 5 else {}).get("sent_at")
        if isinstance(sent_at, float):  # the bench's send time: the HTTP request's share
            events.append(("bcast:request-age", t0, time.time() - sent_at, 0))
        try:
            return await announce(*a, **k)
        finally:
            events.append(("bcast:announce", t0, t(), 0))

    broadcasts.announce = traced_announce
    if push_here is not None:

        def traced_push_here(node, stored):
            t0 = t()
            try:
                return push_here(node, stored)
            finally:
                events.append(("bcast:push_here", t0, t(), len(stored.seqs)))

        broadcasts.push_here = traced_push_here
    # how old the events are (their `sent_at`, where the bench puts one) when the notifier
    # takes them: the wait before the pipeline
    offer = Notifier.offer

    def traced_offer(self, events, **k):
        now = time.time()
        ages = [now - e["sent_at"] for e in events if isinstance(e.get("sent_at"), float)]
        if ages:
            events_.append(("offer-age", t(), max(ages), len(ages)))
        return offer(self, events, **k)

    events_ = events
    Notifier.offer = traced_offer
    on_bus = Node._on_bus_message

    def on_bus_message(self, channel, payload):
        t0 = t()
        try:
            return on_bus(self, channel, payload)
        finally:
            events.append(("bus:" + channel.rsplit(":", 1)[-1], t0, t(), len(payload)))

    Node._on_bus_message = on_bus_message

    def dump():
        with open(os.environ.get("BENCH_TRACE", "/tmp/hub-trace.json"), "w") as f:
            json.dump(events, f)

    def dump_now_and_then():  # the server may be killed rather than stopped
        while True:
            time.sleep(2.0)
            dump()

    import threading

    threading.Thread(target=dump_now_and_then, daemon=True).start()

    atexit.register(dump)
    stop = Node.stop

    async def patched_stop(self):
        dump()
        await stop(self)

    Node.stop = patched_stop


def exp_fastframe() -> None:
    """Cheaper notification frame bytes (same bytes): the notifier packs with one reused
    msgpack.Packer instead of msgpack.packb (a new Packer per call), and
    StoredNotification.frame() formats `ts` once per batch (every row of a batch shares the
    COMMIT's `now`) instead of once per row."""
    import msgpack

    import hub.services.notify
    from hub.store.notifications import StoredNotification

    hub.services.notify.encode_msgpack = msgpack.Packer(use_bin_type=True).pack
    last = [None, ""]

    def frame(self) -> dict:
        ts = self.ts
        if ts is not last[0]:
            last[0], last[1] = ts, ts.isoformat()
        return {
            "type": "notification",
            "seq": self.seq,
            "notification_id": self.notification_id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "ts": last[1],
        }

    StoredNotification.frame = frame


def exp_gcstats() -> None:
    """The cyclic collector's passes per generation and their time, written to
    $BENCH_GCSTATS (default: hub-gcstats.json in the temporary directory) every 5 s."""
    import json
    import tempfile
    import threading
    import time

    path = os.environ.get("BENCH_GCSTATS", os.path.join(tempfile.gettempdir(), "hub-gcstats.json"))
    spent = [0.0, 0.0, 0.0]
    cpu = [0.0, 0.0, 0.0]
    runs = [0, 0, 0]
    started = [0.0, 0.0]

    young: list = []

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            if os.environ.get("BENCH_GCYOUNG") and info["generation"] == 0 and len(young) < 20:
                from collections import Counter

                objs = gc.get_objects(0)
                kinds = Counter(type(o).__name__ for o in objs).most_common(8)
                refs = sum(len(gc.get_referents(o)) for o in objs)
                young.append({"n": len(objs), "refs": refs, "kinds": kinds})
                del objs
            started[0], started[1] = time.perf_counter(), time.thread_time()
        else:
            gen = info["generation"]
            spent[gen] += time.perf_counter() - started[0]
            cpu[gen] += time.thread_time() - started[1]
            runs[gen] += 1

    gc.callbacks.append(callback)

    def dump() -> None:
        while True:
            time.sleep(5)
            doc = {"t": time.time(), "runs": runs, "seconds": [round(x, 4) for x in spent],
                   "cpu": [round(x, 4) for x in cpu],
                   "frozen": gc.get_freeze_count(), "stats": gc.get_stats(),
                   "threshold": gc.get_threshold(), "count": gc.get_count(),
                   "young": young[-3:]}  # fmt: skip
            with open(path, "a") as f:
                f.write(json.dumps(doc) + "\n")

    threading.Thread(target=dump, daemon=True).start()


def exp_noping() -> None:
    """No WebSocket keepalive pings (what the pings cost an idle node; not a setting)."""
    import uvicorn

    init = uvicorn.Config.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "ws_ping_interval": None, "ws_ping_timeout": None})

    uvicorn.Config.__init__ = patched


def exp_alone() -> None:
    """A node delivers a notification batch to its own sockets and publishes nothing for
    other nodes (a lone node's publish, and reading it back, cost): what skipping the
    publish while a node is alone would save. Not safe as it is: a node that has just
    joined would miss live frames until the others see it."""
    from hub.cluster.delivery import Delivery

    def for_others(self, items):
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    Delivery.for_others = for_others


EXPERIMENTS = {
    "alone": exp_alone,
    "trace": exp_trace,
    "noping": exp_noping,
    "gcstats": exp_gcstats,
    "gc": exp_gc,
    "rawpub": exp_rawpub,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--exp", default="", help=",".join(EXPERIMENTS))
    a, rest = ap.parse_known_args()
    for name in [x for x in a.exp.split(",") if x]:
        if name in LANDED:
            sys.exit(f"hub_experiment: {name!r} is in hub/ now ({LANDED[name]}); drop it")
        if name not in EXPERIMENTS:
            sys.exit(f"hub_experiment: unknown experiment {name!r}")
        EXPERIMENTS[name]()
    from hub.cli import main as hub_main

    hub_main(rest)


if __name__ == "__main__":
    main()
