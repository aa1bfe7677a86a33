"""`supporthub serve` with monkeypatched experiments: each one models a change that
docs/benchmarks.md recommends for hub/, so that its effect can be measured before anyone
edits hub/ (this file never changes hub/ on disk).

    .venv/bin/python bench/hub_experiment.py --exp batchpub,syncsend,gc serve --port 8000
    .venv/bin/python bench/run.py --only supporthub --hub-exp batchpub,syncsend,gc

Experiments (comma-separated):
  rawpub    Bus.publish_many writes raw RESP on its own connection and counts the integer
            replies, instead of a redis-py pipeline (which parses each reply under its own
            asyncio timeout)
  batchpub  Notifier.push publishes ONE signed message per stored batch on a node channel
            ([user_id, seq, packed frame] items); each node fans it out to its local
            listeners, instead of one PUBLISH per notification on per-user channels (the
            second Redis hop, HMAC, decode per message go away)
  syncsend  Connection._enqueue writes straight to the socket (uvicorn's sans-I/O protocol)
            when the writer task is idle, the queue empty and the transport writable, instead
            of waking the per-connection writer task for every frame
  fastid    writer.new_id() = os.urandom(16).hex() instead of uuid.uuid4().hex
  pipeline  the notifier as two ordered stages (render + enqueue to the writer | await
            COMMIT + push) so the next batch is prepared while the store commits
  onestmt   write_notifications as one SQL statement (one round trip per batch, not five)
  slimfan   (on top of the batched fan-out) items carry type and seq: no decode per frame
  smallchunk  fan-out chunks of 200 frames (the loop is held ~3 ms, not ~14 ms, per chunk)
  twowriters  two group writers (two connections committing in parallel), by user hash
  memlean   uvicorn's handshake request/response and the scope headers dropped after accept
  gc        gc.freeze() after start-up and gc.set_threshold(10_000, 50, 100)
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

BATCH_CHANNEL = "sh:notify-batch"


def exp_gc() -> None:
    from hub.node import Node

    gc.set_threshold(10_000, 50, 100)
    start = Node.start

    async def patched(self):
        await start(self)
        gc.collect()
        gc.freeze()

    Node.start = patched


def exp_fastid() -> None:
    import hub.notify
    import hub.writer

    def new_id() -> str:
        return os.urandom(16).hex()

    hub.writer.new_id = new_id
    hub.notify.new_id = new_id


def exp_rawpub() -> None:
    from redis.asyncio.connection import parse_url

    from hub.bus import Bus, log

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


def exp_batchpub() -> None:
    import msgpack
    import orjson

    from hub.bus import user_channel
    from hub.node import Node
    from hub.notify import Notifier
    from hub.protocol import decode_msgpack, encode_msgpack

    start = Notifier.start
    push = Notifier.push

    async def patched_start(self):
        await start(self)
        await self.node.bus.subscribe(BATCH_CHANNEL)

    async def patched_push(self, stored):
        if not stored:
            return
        batch = msgpack.packb(
            [[n.user_id, n.seq, encode_msgpack(n.frame())] for n in stored], use_bin_type=True
        )
        await self.node.bus.publish(BATCH_CHANNEL, batch)
        # agents serving these users and the bot follow-ups: as before, minus user frames
        await push_rest(self, stored)

    async def push_rest(self, stored):
        from hub.bus import agent_channel

        async with self.node.pool.acquire() as db:
            serving = await db.fetch(
                "select distinct user_id, agent_id from conversations where status = 'assigned'"
                " and user_id = any($1::text[])",
                list({n.user_id for n in stored}),
            )
        items = []
        by_user = {}
        for row in serving:
            by_user.setdefault(row["user_id"], []).append(row["agent_id"])
        for n in stored:
            for agent_id in by_user.get(n.user_id, ()):
                frame = {"type": "customer.event", "user_id": n.user_id, "kind": n.kind,
                         "title": n.title, "body": n.body, "data": n.data, "ts": n.ts.isoformat()}  # fmt: skip
                items.append((agent_channel(agent_id), encode_msgpack(frame)))
        if items:
            await self.node.bus.publish_many(items)
        bot = self.node.services.get("bot")
        updates = [(n.user_id, n.data) for n in stored if n.kind == "transaction.status"]
        if bot is not None and updates:
            await bot.on_transaction_updates(updates)

    on_bus = Node._on_bus_message

    def patched_on_bus(self, channel, payload):
        if channel != BATCH_CHANNEL:
            return on_bus(self, channel, payload)
        by_channel = self.registry._by_channel
        for user, seq, packed in msgpack.unpackb(payload, raw=False):
            listeners = by_channel.get(user_channel(user))
            if not listeners:
                continue
            slim = {"type": "notification", "seq": seq}  # all that dedupe/hold needs
            text = None
            for conn in tuple(listeners):
                if conn.binary:
                    conn.push(slim, packed)
                else:
                    if text is None:
                        full = decode_msgpack(packed)
                        text = orjson.dumps(full).decode()
                    conn.push(full, text)

    Notifier.start = patched_start
    Notifier.push = patched_push
    Node._on_bus_message = patched_on_bus
    del push


def exp_syncsend() -> None:
    from hub.connection import Connection

    enqueue = Connection._enqueue

    def patched(self, data):
        if not self.closed and not self._out and self._waiter is not None:
            proto = getattr(self._send, "__self__", None)
            if (
                proto is not None
                and proto.handshake_complete
                and not proto.close_sent
                and proto.writable.is_set()
                and not proto.transport.is_closing()
            ):
                if type(data) is bytes:
                    proto.conn.send_binary(data)
                else:
                    proto.conn.send_text(data.encode())
                proto.transport.write(b"".join(proto.conn.data_to_send()))
                return
        enqueue(self, data)

    Connection._enqueue = patched


def enqueue_many(writer, ops) -> list:
    """Queue writes with a GroupWriter (or the twowriters split) without awaiting them."""
    if hasattr(writer, "enqueue_many"):
        return writer.enqueue_many(ops)
    from hub.writer import _Pending

    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in ops]
    writer._pending.extend(_Pending(op, f) for op, f in zip(ops, futs, strict=True))
    writer._wake.set()
    return futs


def exp_twowriters() -> None:
    """Two group writers (two PostgreSQL connections committing at once), notifications
    routed by a hash of user_id (a user's seq is only ever assigned by one of them), chat
    messages on the first. Models a storage path that is not one serial COMMIT chain."""
    import zlib

    from hub.node import Node
    from hub.writer import GroupWriter, NotificationWrite, _Pending

    class Split:
        def __init__(self, writers):
            self.writers = writers

        def start(self):
            for w in self.writers:
                w.start()

        async def close(self):
            for w in self.writers:
                await w.close()

        def _pick(self, op):
            if isinstance(op, NotificationWrite):
                return self.writers[zlib.crc32(op.user_id.encode()) % len(self.writers)]
            return self.writers[0]

        async def submit(self, op):
            return await self._pick(op).submit(op)

        def enqueue_many(self, ops):
            loop = asyncio.get_running_loop()
            futs = []
            touched = set()
            for op in ops:
                w = self._pick(op)
                f = loop.create_future()
                w._pending.append(_Pending(op, f))
                touched.add(w)
                futs.append(f)
            for w in touched:
                w._wake.set()
            return futs

        async def submit_many(self, ops):
            return await asyncio.gather(*self.enqueue_many(ops), return_exceptions=True)

    start = Node.start

    async def patched(self):
        await start(self)
        first = self.writer
        second = GroupWriter(self.pool, max_batch=self.settings.writer_max_batch)
        self.writer = Split([first, second])
        second.start()

    Node.start = patched


def exp_pipeline() -> None:
    """Two stages so that the store, the notifier and the bus overlap: stage A looks up
    languages, renders and *enqueues* a batch with the group writer without waiting for
    its COMMIT, then takes the next batch; stage B awaits each batch's results in order
    and pushes it. Order is kept: batches reach the writer in buffer order (stage A is
    sequential), so seqs grow in that order, and stage B pushes in that order."""
    from hub import metrics
    from hub.notify import Notifier, _data, log, render
    from hub.writer import NotificationWrite, StoredNotification

    def is_urgent(e):
        return e["type"] == "security.alert" and e.get("alert") == "account_frozen"

    async def stage_b(self, q: asyncio.Queue) -> None:
        while True:
            futs, plain, urgent, langs = await q.get()
            try:
                results = await asyncio.gather(*futs, return_exceptions=True) if futs else []
                for r in results:
                    if isinstance(r, Exception):
                        raise r
                stored = [r for r in results if isinstance(r, StoredNotification)]
                for e in plain:
                    metrics.EVENTS_IN.labels(e["type"]).inc()
                await self.push(stored)
                for e in urgent:
                    metrics.EVENTS_IN.labels(e["type"]).inc()
                    await self.freeze_incident(e, langs.get(e["user_id"], "zh"))
            except Exception:
                log.exception("could not handle a batch of payment events; the poller will retry")

    async def consume(self) -> None:
        node = self.node
        q: asyncio.Queue = asyncio.Queue(maxsize=4)
        node.spawn(stage_b(self, q), "events-push")
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                batch, self._buffer = self._buffer[:2000], self._buffer[2000:]
                try:
                    urgent = [e for e in batch if is_urgent(e)]
                    plain = [e for e in batch if not is_urgent(e)]
                    async with node.pool.acquire() as db:
                        langs = dict(await db.fetch(
                            "select id, lang from users where id = any($1::text[])",
                            list({e["user_id"] for e in batch})))  # fmt: skip
                    ops = []
                    for e in plain:
                        r = render(e, langs.get(e["user_id"], "zh"))
                        if r is None:
                            continue
                        kind, title, body = r
                        ops.append(NotificationWrite(e["user_id"], kind, title, body, _data(e),
                                                     e["event_id"]))  # fmt: skip
                    # submit_many() enqueues synchronously; its futures resolve on COMMIT
                    futs = enqueue_many(node.writer, ops)
                    await q.put((futs, plain, urgent, langs))
                except Exception:
                    log.exception("could not handle %d payment events", len(batch))

    Notifier._consume = consume


ONE_STATEMENT = """
with ops as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::jsonb[], $7::text[], $8::int[])
    as t(id, user_id, kind, title, body, data, event_id, ord)
),
won as (
  insert into processed_events (event_id)
  select distinct event_id from ops where event_id is not null
  on conflict (event_id) do nothing returning event_id
),
fresh as (
  (select * from ops where event_id is null)
  union all
  (select distinct on (ops.event_id) ops.* from ops join won using (event_id)
   order by ops.event_id, ops.ord)
),
cnt as (select user_id, count(*)::bigint as n from fresh group by user_id),
bumped as (
  insert into users (id, notif_seq) select user_id, n from cnt order by user_id
  on conflict (id) do update set notif_seq = users.notif_seq + excluded.notif_seq
  returning id, notif_seq
),
numbered as (
  select f.*, b.notif_seq - c.n + row_number() over (partition by f.user_id order by f.ord) as seq
  from fresh f join bumped b on b.id = f.user_id join cnt c on c.user_id = f.user_id
)
insert into notifications (id, user_id, seq, kind, title, body, data, event_id, created_at)
select id, user_id, seq, kind, title, body, data, event_id, $9 from numbered
returning id, seq
"""


def exp_onestmt() -> None:
    """write_notifications as ONE statement (data-modifying CTEs: processed_events, an
    upsert that bumps users.notif_seq and locks the rows in id order, the insert), so a
    batch costs one round trip instead of five."""
    from datetime import UTC, datetime

    import hub.notify
    import hub.writer
    from hub.writer import StoredNotification

    async def write_notifications(conn, ops):
        if not ops:
            return []
        ids = [hub.writer.new_id() for _ in ops]
        now = datetime.now(UTC)
        rows = await conn.fetch(
            ONE_STATEMENT, ids, [o.user_id for o in ops], [o.kind for o in ops],
            [o.title for o in ops], [o.body for o in ops], [o.data for o in ops],
            [o.event_id for o in ops], list(range(len(ops))), now,
        )  # fmt: skip
        seq_of = {r["id"]: r["seq"] for r in rows}
        out = []
        for i, o in zip(ids, ops, strict=True):
            seq = seq_of.get(i)
            out.append(None if seq is None else
                       StoredNotification(i, o.user_id, seq, o.kind, o.title, o.body, o.data, now))  # fmt: skip
        return out

    hub.writer.write_notifications = write_notifications
    hub.notify.write_notifications = write_notifications


def exp_slimfan() -> None:
    """(for the batched fan-out of commit 21c0cf1) each fan-out item carries the frame's
    type and seq next to its bytes, so a receiving node dedupes and fans out without
    decoding every frame (it decodes only for JSON listeners)."""
    import orjson

    from hub.bus import FANOUT_CHANNEL, agent_channel, user_channel
    from hub.node import Node
    from hub.notify import Notifier
    from hub.protocol import decode_msgpack, encode_msgpack

    async def push(self, stored):
        if not stored:
            return
        items = [(user_channel(n.user_id), encode_msgpack(n.frame()), "notification", n.seq)
                 for n in stored]  # fmt: skip
        async with self.node.pool.acquire() as db:
            serving = await db.fetch(
                "select distinct user_id, agent_id from conversations where status = 'assigned'"
                " and user_id = any($1::text[])",
                list({n.user_id for n in stored}),
            )
        agents_of = {}
        for row in serving:
            agents_of.setdefault(row["user_id"], []).append(row["agent_id"])
        for n in stored:
            for agent_id in agents_of.get(n.user_id, ()):
                frame = {"type": "customer.event", "user_id": n.user_id, "kind": n.kind,
                         "title": n.title, "body": n.body, "data": n.data, "ts": n.ts.isoformat()}  # fmt: skip
                items.append((agent_channel(agent_id), encode_msgpack(frame)))
        await self.node.fan_out(items)
        bot = self.node.services.get("bot")
        updates = [(n.user_id, n.data) for n in stored if n.kind == "transaction.status"]
        if bot is not None and updates:
            await bot.on_transaction_updates(updates)

    on_bus = Node._on_bus_message

    def on_bus_message(self, channel, payload):
        if channel != FANOUT_CHANNEL:
            return on_bus(self, channel, payload)
        by_channel = self.registry._by_channel
        deliver = self.registry.deliver
        for item in decode_msgpack(payload):
            if len(item) != 4:
                deliver(item[0], item[1])
                continue
            ch, packed, kind, seq = item
            listeners = by_channel.get(ch)
            if not listeners:
                continue
            slim = {"type": kind, "seq": seq}
            text = None
            for conn in tuple(listeners):
                if conn.binary:
                    conn.push(slim, packed)
                else:
                    if text is None:
                        full = decode_msgpack(packed)
                        text = orjson.dumps(full).decode()
                    conn.push(full, text)

    Notifier.push = push
    Node._on_bus_message = on_bus_message


def exp_trace() -> None:
    """Timestamps of the notification path (notifier batch, COMMIT, push, fan-out
    delivery) written to $BENCH_TRACE (default /tmp/hub-trace.json) at exit."""
    import atexit
    import json
    import time

    from hub.node import Node
    from hub.notify import Notifier
    from hub.writer import GroupWriter

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

    wrap(GroupWriter, "_commit", "commit")
    wrap(Notifier, "handle", "handle")
    wrap(Notifier, "push", "push")
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

    atexit.register(dump)
    stop = Node.stop

    async def patched_stop(self):
        dump()
        await stop(self)

    Node.stop = patched_stop


def exp_smallchunk() -> None:
    """Fan-out chunks of 200 frames instead of 1000: delivering a chunk holds the event
    loop for ~14 ms per 1000 frames, and the group writer's next statement waits for it."""
    import hub.bus
    import hub.node

    hub.bus.FANOUT_CHUNK = 200
    hub.node.FANOUT_CHUNK = 200


def exp_memlean() -> None:
    """After the WebSocket handshake, drop what uvicorn's sans-I/O protocol keeps but never
    reads again (the HTTP request and response with their Headers) and empty the scope's
    header list (the hub reads Origin before accepting); Connection.bad_frames is made on
    the first bad frame. (Same patch as bench/mem_breakdown.py --experiment.)"""
    from mem_breakdown import apply_experiment

    apply_experiment()


EXPERIMENTS = {
    "memlean": exp_memlean,
    "twowriters": exp_twowriters,
    "smallchunk": exp_smallchunk,
    "trace": exp_trace,
    "slimfan": exp_slimfan,
    "onestmt": exp_onestmt,
    "pipeline": exp_pipeline,
    "gc": exp_gc,
    "fastid": exp_fastid,
    "rawpub": exp_rawpub,
    "batchpub": exp_batchpub,
    "syncsend": exp_syncsend,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--exp", default="", help=",".join(EXPERIMENTS))
    a, rest = ap.parse_known_args()
    for name in [x for x in a.exp.split(",") if x]:
        EXPERIMENTS[name]()
    from hub.cli import main as hub_main

    hub_main(rest)


if __name__ == "__main__":
    main()
