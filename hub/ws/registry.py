"""This node's live connections, by bus channel.

A user's connections listen on their user channel; an agent's on their agent channel and
the staff channel. The registry tells the bus which channels gained their first or lost
their last local listener, and fans a bus payload out to the listeners, encoding it once
per codec.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import orjson

from hub import metrics
from hub.cluster.bus import STAFF_CHANNEL, agent_channel, user_channel
from hub.ws.connection import Connection
from hub.ws.protocol import CopyFrames, decode_msgpack, encode_msgpack


def channels_for(conn: Connection) -> tuple[str, ...]:
    claims = conn.identity
    if claims.is_staff:
        return (agent_channel(claims.sub), STAFF_CHANNEL)
    return (user_channel(claims.sub),)


class Registry:
    def __init__(self) -> None:
        self._by_channel: dict[str, set[Connection]] = {}
        self.count = 0
        self.joined = 0  # users' connections ever added (a notice's sender compares it)
        # supervisors following chats read-only (chat.watch): the customer's channel ->
        # watching connection -> the conversations of that customer it follows
        self._watchers: dict[str, dict[Connection, set[str]]] = {}

    def add(self, conn: Connection) -> None:
        """Register `conn` on its channels (the bus ref-counts their subscriptions)."""
        conn.channels = channels_for(conn)
        for ch in conn.channels:
            self._by_channel.setdefault(ch, set()).add(conn)
        self.count += 1
        if not conn.identity.is_staff:
            self.joined += 1
        metrics.CONNECTIONS.labels(conn.identity.role).inc()

    def remove(self, conn: Connection) -> None:
        """Unregister `conn`."""
        for ch in conn.channels:
            listeners = self._by_channel.get(ch)
            if listeners is None or conn not in listeners:
                continue
            listeners.discard(conn)
            if not listeners:
                del self._by_channel[ch]
        if conn.channels:
            self.count -= 1
            metrics.CONNECTIONS.labels(conn.identity.role).dec()
        conn.channels = ()

    def watch(self, conn: Connection, channel: str, cid: str) -> bool:
        """`conn` follows conversation `cid`, whose frames travel on `channel`; True when
        `conn` was not on that channel yet (subscribe it on the bus once)."""
        per = self._watchers.setdefault(channel, {})
        first = conn not in per
        per.setdefault(conn, set()).add(cid)
        return first

    def unwatch(self, conn: Connection, channel: str, cid: str) -> bool:
        """`conn` stops following `cid`; True when it left `channel` (unsubscribe once)."""
        per = self._watchers.get(channel)
        cids = per.get(conn) if per else None
        if per is None or cids is None or cid not in cids:
            return False
        cids.discard(cid)
        if cids:
            return False
        del per[conn]
        if not per:
            del self._watchers[channel]
        return True

    def unwatch_all(self, conn: Connection) -> list[str]:
        """Everything `conn` follows stops; the channels it left."""
        left = []
        for channel in list(self._watchers):
            per = self._watchers[channel]
            if per.pop(conn, None) is not None:
                left.append(channel)
                if not per:
                    del self._watchers[channel]
        return left

    def listeners(self, channel: str) -> set[Connection]:
        return self._by_channel.get(channel, set())

    def of_user(self, user_id: str) -> set[Connection]:
        return self.listeners(user_channel(user_id))

    def all(self) -> Iterator[Connection]:
        seen: set[int] = set()
        for listeners in self._by_channel.values():
            for conn in listeners:
                if id(conn) not in seen:
                    seen.add(id(conn))
                    yield conn

    def local_users(self) -> list[str]:
        prefix = user_channel("")
        return [ch[len(prefix) :] for ch in self._by_channel if ch.startswith(prefix)]

    def deliver(self, channel: str, payload: bytes) -> None:
        """Fan a bus payload (a msgpack frame) out to this node's listeners on `channel`."""
        listeners = self._by_channel.get(channel)
        watchers = self._watchers.get(channel)
        if not listeners and not watchers:
            return
        frame = decode_msgpack(payload)
        if not isinstance(frame, dict):
            return
        if listeners:
            self.fan_out(listeners, frame, payload)
        if watchers:
            self._to_watchers(watchers, frame)

    @staticmethod
    def _to_watchers(watchers: dict[Connection, set[str]], frame: dict) -> None:
        """A frame of a watched conversation, wrapped: `watch.event {conversation_id,
        frame}` (never taken for the watcher's own chat)."""
        cid = frame.get("conversation_id")
        if not isinstance(cid, str):
            return
        for conn, cids in tuple(watchers.items()):
            if cid in cids:
                conn.send_frame({"type": "watch.event", "conversation_id": cid, "frame": frame})

    def deliver_sequenced(self, channel: str, packed: bytes, kind: str, seq: int) -> None:
        """A fan-out item that carries its frame's type and seq beside the msgpack bytes:
        binary listeners get the bytes as they are; only JSON listeners, and devices that
        said their language or zone (notifications are re-rendered for them), need a decode."""
        listeners = self._by_channel.get(channel)
        if not listeners:
            return
        notification = kind == "notification"
        slim: dict | None = None
        full: dict | None = None
        text: bytes | None = None
        for conn in tuple(listeners) if len(listeners) > 1 else listeners:
            if conn.binary:
                if notification and conn.push_next_notification(seq, packed):
                    continue  # the usual case: no frame to look at
                if conn.held is None and conn.locale is None:
                    if slim is None:
                        slim = {"type": kind, "seq": seq}
                    conn.push(slim, packed)
                    continue
            if full is None:
                full = decode_msgpack(packed)
            if conn.binary:
                conn.push(full, packed)
            else:
                if text is None:
                    text = orjson.dumps(full)
                conn.push(full, text)

    def push_copies(self, frames: CopyFrames, copies: Iterable[Sequence]) -> None:
        """A notice's copies, (user id, seq, notification id) each, to the users' sockets on
        this node: each copy's bytes are joined from the parts all copies share, once per
        codec its user's sockets speak, and go straight to a socket that takes them
        (`Connection.push_next_notification`); the per-connection seq order, queue limits
        and slow-socket cut-off stay as for any frame."""
        by_channel = self._by_channel
        prefix = user_channel("")
        for user_id, seq, notification_id in copies:
            listeners = by_channel.get(prefix + user_id)
            if not listeners:
                continue
            packed = text = None
            for conn in tuple(listeners) if len(listeners) > 1 else listeners:
                if conn.binary:
                    if packed is None:
                        packed = frames.msgpack(seq, notification_id)
                    data = packed
                else:
                    if text is None:
                        text = frames.json(seq, notification_id)
                    data = text
                if not conn.push_next_notification(seq, data):
                    conn.push(frames.frame(seq, notification_id), data)

    @staticmethod
    def fan_out(listeners: set[Connection], frame: dict, packed: bytes | None = None) -> None:
        text: bytes | None = None
        for conn in tuple(listeners):
            if conn.binary:
                if packed is None:
                    packed = encode_msgpack(frame)
                conn.push(frame, packed)
            else:
                if text is None:
                    text = orjson.dumps(frame)
                conn.push(frame, text)
