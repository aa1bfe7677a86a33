"""Sessions: a socket made reachable, welcomed and brought up to date — the replay of what
`resume` asks for, and the catch-up after a bus outage — and agents' presence."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from hub import metrics
from hub.attachments.links import AttachmentLinks
from hub.background import Background
from hub.cluster.node import Node
from hub.rules.maintenance import window_text
from hub.services.agent_access import DISABLED_MESSAGE
from hub.services.chat import Chat
from hub.services.languages import Languages
from hub.store import Store, presence
from hub.store import agents as agent_store
from hub.store import campaigns as campaign_store
from hub.store import conversations as conv_store
from hub.store import notifications as notif_store
from hub.store import users as user_store
from hub.ws.connection import NOTIFICATIONS, Connection
from hub.ws.protocol import Hello, Resume, error_frame
from supporthub_core.auth import Claims, verify_token
from supporthub_core.errors import CloseCode, Forbidden, Unauthorized

log = logging.getLogger(__name__)

REPLAY_LIMIT = 5000
PRESENCE_BEAT_S = 5.0
PRESENCE_BATCH = 500  # customers told to their agents per store visit
REPLAY_RETRY_S = 1.0  # a replay the store cut short after welcome: try again this often


class Sessions:
    def __init__(
        self,
        store: Store,
        node: Node,
        chat: Chat,
        languages: Languages,
        outbox_catch_up: Callable[[], Awaitable[int]],
        links: AttachmentLinks,
        secret: str,
        *,
        registration_slots: int,
    ) -> None:
        self.secret = secret
        # sessions registering at once, each on one pooled connection: a reconnect storm
        # waits its turn here, in order, instead of every socket racing the rest of the
        # node for the pool (and losing to its acquire timeout)
        self._slots = asyncio.Semaphore(registration_slots)
        # customers whose sockets came or went, in order, until their agents are told
        self._presence_due: dict[str, None] = {}
        self._presence_wake = asyncio.Event()
        self.store = store
        self.node = node
        self.chat = chat
        self.languages = languages
        self.outbox_catch_up = outbox_catch_up
        self.links = links  # signs attachment links in replayed messages
        # connections between `hello` and the end of their replay -> a bus catch-up is due
        self._registering: dict[Connection, bool] = {}

    def start(self, tasks: Background, *, position_check_s: float) -> None:
        tasks.spawn(self._presence_beat(), "presence-beat")
        tasks.spawn(self._announce_presence_forever(), "customer-presence")
        if position_check_s > 0:
            tasks.spawn(self._check_positions_forever(position_check_s), "position-check")

    async def stop(self) -> None:
        async with self.store.acquire() as db:
            await presence.forget_node(db, self.node.node_id)

    # --- sessions ----------------------------------------------------------------------

    async def register(self, conn: Connection, hello: Hello) -> None:
        """Make `conn` reachable, send `welcome`, then replay what `resume` asks for.
        Live frames that arrive meanwhile are held and released after the replay, with
        duplicates dropped by seq."""
        conn.on_gap = self._repair_gap
        conn.hold()
        self._registering[conn] = False
        try:
            await self._register(conn, hello)
        finally:
            self._registering.pop(conn, None)

    async def _register(self, conn: Connection, hello: Hello) -> None:
        """Everything that can fail the session runs before `welcome`; after it, a store
        that stops answering only delays the replay (`_replay_after_welcome`). The store
        work of the whole session is one pooled connection, taken through `_slots`."""
        claims = conn.identity
        self.node.registry.add(conn)
        for ch in conn.channels:
            await self.node.bus.subscribe(ch)
        async with self._slots, self.store.acquire() as db:
            state = await self._session_state(db, conn, hello)
            conn.send_frame(
                {
                    "type": "welcome",
                    "role": claims.role,
                    "sub": claims.sub,
                    "session_id": conn.session_id,
                    "node": self.node.node_id,
                    "exp": claims.exp,
                    **state,
                }
            )
            self.arm_expiry(conn)
            await self._replay_after_welcome(db, conn, hello, state)
        if not claims.is_staff:  # off the session's path: it never holds up or fails it
            self._presence_changed(claims.sub)

    async def _session_state(self, db: asyncpg.Connection, conn: Connection, hello: Hello) -> dict:
        """Record the session in the store and read what its `welcome` carries."""
        claims = conn.identity
        if claims.is_staff:
            state = await conv_store.agent_session(db, claims.sub)
            if state["agent"] is None:
                raise Unauthorized("no such agent: sign in again")
            if await agent_store.is_disabled(db, claims.sub):
                raise Unauthorized(DISABLED_MESSAGE)
            await presence.presence_add(db, claims.sub, self.node.node_id, 1)
            return state
        await notif_store.ensure_user(db, claims.sub, claims.name, hello.lang)
        if hello.tz:
            await user_store.set_tz(db, claims.sub, hello.tz)
        if hello.lang or hello.tz:
            self.languages.forget(claims.sub)
            # this device reads notifications in its own language and zone
            conn.locale = (hello.lang, hello.tz or self.languages.default_tz)
        await notif_store.materialise_broadcasts(db, claims.sub)
        await campaign_store.materialise_late(db, claims.sub)
        state = await conv_store.user_session(db, claims.sub)
        dismissed = await campaign_store.dismissed(db, claims.sub)
        if dismissed:  # campaign cards the user dismissed on any device
            state["dismissed_campaigns"] = dismissed
        window = await campaign_store.maintenance_window(db)
        if window is not None:  # the widget's banner, in this device's words and zone
            title, body = window_text(window, hello.lang, hello.tz or self.languages.default_tz)
            state["maintenance"] = {**window, "title": title, "body": body}
        self.chat.describe_urgent(state["conversations"], hello.lang)
        for item in state["conversations"]:  # an older pass's place is stale now
            conn.told_queue(item["conversation_id"], item.get("queue_seq"))
        return state

    async def _replay_after_welcome(
        self, db: asyncpg.Connection, conn: Connection, hello: Hello, state: dict
    ) -> None:
        """The replay never fails a welcomed session: if the store stops answering midway,
        the session stays open and is caught up once the store answers again."""
        try:
            await self.replay(db, conn, hello, state)
            if self._registering.get(conn):  # a bus catch-up came by meanwhile: now ours
                await self._catch_up_on(db, conn)
        except Exception as exc:
            log.warning("replay after welcome failed (will catch up): %r", exc)
            self.chat.tasks.spawn(self._catch_up_until_done(conn), "replay-retry")
        finally:
            conn.release()

    async def _catch_up_until_done(self, conn: Connection) -> None:
        while not conn.closed:
            await asyncio.sleep(REPLAY_RETRY_S)
            try:
                await self._catch_up(conn)
                return
            except Exception as exc:
                log.warning("catch-up after a failed replay failed (will retry): %r", exc)

    async def unregister(self, conn: Connection) -> None:
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None
        channels = conn.channels
        watched = self.node.registry.unwatch_all(conn)  # a supervisor's chat.watch
        self.node.registry.remove(conn)
        for ch in (*channels, *watched):
            await self.node.bus.unsubscribe(ch)
        claims = conn.claims
        if claims is not None and claims.role == "user":
            self._presence_changed(claims.sub)
        if claims is not None and claims.is_staff:
            try:
                async with self.store.acquire() as db:
                    await presence.presence_add(db, claims.sub, self.node.node_id, -1)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("presence update failed: %s", exc)

    def _presence_changed(self, user_id: str) -> None:
        self._presence_due[user_id] = None
        self._presence_wake.set()

    async def _announce_presence_forever(self) -> None:
        """Customers who came or went, told to their agents a batch at a time by one task:
        a reconnect storm is a few store visits, not one task per socket racing the
        sessions for the pool."""
        while True:
            await self._presence_wake.wait()
            self._presence_wake.clear()
            while self._presence_due:
                batch = list(itertools.islice(self._presence_due, PRESENCE_BATCH))
                for user_id in batch:
                    del self._presence_due[user_id]
                try:
                    await self.chat.customers_presence(batch)
                except Exception as exc:  # the store or the bus is down: the next change tells
                    log.warning("customer presence update failed: %s", exc)

    # --- token lifetime ------------------------------------------------------------------

    def arm_expiry(self, conn: Connection) -> None:
        """Close the session with 4001 when its token's `exp` passes: one timer per
        connection on the event loop's heap (nothing per frame), moved by a refresh."""
        if conn.expiry is not None:
            conn.expiry.cancel()
        delay = max(0.0, conn.identity.exp - time.time())
        conn.expiry = asyncio.get_running_loop().call_later(delay, _expired, conn)

    async def refresh(self, conn: Connection, token: str) -> Claims:
        """`auth.refresh`: a valid token of the same `sub` and `role` moves the session's
        end to its `exp`. A refused refresh changes nothing: the session still ends at
        the current token's `exp`."""
        claims = verify_token(self.secret, token)
        current = conn.identity
        if claims.sub != current.sub or claims.role != current.role:
            raise Forbidden("the new token must be for the same sub and role")
        if claims.is_staff:
            async with self.store.acquire() as db:
                if await agent_store.is_disabled(db, claims.sub):
                    raise Unauthorized(DISABLED_MESSAGE)
        conn.claims = claims
        self.arm_expiry(conn)
        return claims

    async def replay(
        self, db: asyncpg.Connection, conn: Connection, hello: Hello, state: dict
    ) -> None:
        """Set where each stream of this connection starts, then send what `resume` asks
        for: notifications after `notifications_after`, and messages after the given seq of
        each named conversation plus all of every open one the client did not name."""
        resume = hello.resume
        claims = conn.identity
        if claims.is_staff:
            await self.chat.resume_agent(db, conn, resume)
            return
        open_convs = {c["conversation_id"]: c["last_seq"] for c in state["conversations"]}
        if resume is None:
            conn.set_base(NOTIFICATIONS, state["notifications_seq"])
            for cid, last in open_convs.items():
                conn.set_base(cid, last)
            return
        after = resume.notifications_after
        conn.set_base(NOTIFICATIONS, state["notifications_seq"] if after is None else after)
        if after is not None:
            for n in await notif_store.after(db, claims.sub, after, REPLAY_LIMIT):
                conn.push(n, conn.encode(n))
        known = resume.conversations or {}
        for cid, last in await conv_store.resumable(db, claims.sub, known):
            conn.set_base(cid, last)
            for m in await conv_store.messages_after(db, cid, last, REPLAY_LIMIT):
                m = self.links.frame(m)
                conn.push(m, conn.encode(m))

    def hold_all(self) -> None:
        """The bus is down: from now until the catch-up, live frames wait on each
        connection, so that what the catch-up replays and what arrives live meanwhile go
        out merged, in seq order."""
        for conn in self.node.registry.all():
            if conn.held is None:
                conn.hold()

    async def catch_up_all(self) -> None:
        """After a bus outage: send every local client what it may have missed. A
        connection still registering is left to its own replay, which catches up after
        it (its positions are not known before: a catch-up now would send it everything
        again)."""
        for conn in list(self.node.registry.all()):
            if conn in self._registering:
                self._registering[conn] = True
            elif conn.held is None:
                conn.hold()  # frames that came in after the resubscribe
        for conn in list(self.node.registry.all()):
            if conn in self._registering:
                continue
            try:
                await self._catch_up(conn)
            except Exception as exc:
                log.warning("catch-up failed for a connection: %s", exc)
            finally:
                conn.release()
        try:
            await self.outbox_catch_up()
        except Exception as exc:
            log.warning("outbox catch-up after reconnect failed: %s", exc)
        resync = {"type": "session.resync"}
        for conn in list(self.node.registry.all()):
            conn.send_frame(resync)

    async def _catch_up(self, conn: Connection) -> None:
        if conn.closed or conn.claims is None:
            return
        async with self.store.acquire() as db:
            await self._catch_up_on(db, conn)

    async def _catch_up_on(self, db: asyncpg.Connection, conn: Connection) -> None:
        claims = conn.identity
        if claims.is_staff:
            streams = await self._agent_streams(db, conn)
        else:
            for n in await notif_store.after(db, claims.sub, conn.notif_seq, REPLAY_LIMIT):
                conn.push(n, conn.encode(n))
            streams = await conv_store.resumable(db, claims.sub, dict(conn.conv_seq))
        for cid, last in streams:
            last = max(last, conn.conv_seq.get(cid, 0))
            for m in await conv_store.messages_after(db, cid, last, REPLAY_LIMIT):
                m = self.links.frame(m)
                conn.push(m, conn.encode(m))

    async def _agent_streams(
        self, db: asyncpg.Connection, conn: Connection
    ) -> list[tuple[str, int]]:
        """The agent's chats to bring up to date message by message; a chat assigned
        during the outage comes whole instead (with the others, as on a resume)."""
        assigned = await conv_store.assigned_ids(db, conn.identity.sub)
        if any(cid not in conn.conv_seq for cid in assigned):
            await self.chat.resume_agent(db, conn, Resume(conversations=dict(conn.conv_seq)))
            return []
        return [(cid, conn.conv_seq[cid]) for cid in assigned]

    async def _presence_beat(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_BEAT_S)
            try:
                async with self.store.acquire() as db:
                    await presence.beat(db, self.node.node_id)
            except Exception as exc:
                log.warning("presence beat failed: %s", exc)

    # --- gaps --------------------------------------------------------------------------

    def _repair_gap(self, conn: Connection) -> None:
        """A stream of `conn` has had a gap for `GAP_WAIT_S`: the frame before the waiting
        ones was lost on its way (or is very late). Fetch it from the store; while the
        store cannot answer, keep waiting and ask again."""
        self.chat.tasks.spawn(self._fill_gap(conn), "gap-repair")

    async def _fill_gap(self, conn: Connection) -> None:
        if conn.held is not None:  # a catch-up is under way: look again after it
            conn.wait_for_gap()
            return
        try:
            await self._catch_up(conn)
        except Exception as exc:
            log.warning("gap repair failed for a connection (will retry): %s", exc)
            conn.wait_for_gap()
            return
        if conn.held is not None:
            # a bus outage began while the store answered: what it sent is held with the
            # live frames, and may be the frame the gap waits for; look again after it
            conn.wait_for_gap()
            return
        metrics.STREAM_GAPS.labels("fetched").inc()
        conn.flush_gaps()

    # --- the periodic position check ---------------------------------------------------

    async def _check_positions_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.check_positions()
            except Exception as exc:
                log.warning("position check failed: %s", exc)

    async def check_positions(self, grace_s: float = 1.0) -> int:
        """Catch up every local socket that is behind the store: a frame lost between
        Redis and this node (or dropped by Redis) would otherwise stay missing until the
        client reconnects. A stream counts as behind only if it still is `grace_s` later,
        so frames on their way are not fetched twice. Returns the sockets caught up."""
        behind = await self._behind(list(self.node.registry.all()))
        if not behind:
            return 0
        await asyncio.sleep(grace_s)
        repaired = 0
        for conn, targets in behind:
            if conn.closed or conn.held is not None or not _still_behind(conn, targets):
                continue
            try:
                await self._catch_up(conn)
                repaired += 1
            except Exception as exc:
                log.warning("position repair failed for a connection: %s", exc)
        metrics.POSITION_REPAIRS.inc(repaired)
        return repaired

    async def _behind(self, conns: list[Connection]) -> list[tuple[Connection, dict[str, int]]]:
        live = [c for c in conns if c.claims is not None and not c.closed and c.held is None]
        users = sorted({c.identity.sub for c in live if not c.identity.is_staff})
        agents = sorted({c.identity.sub for c in live if c.identity.is_staff})
        if not live:
            return []
        async with self.store.acquire() as db:
            notif_seqs, convs = await conv_store.positions(db, users, agents)
        streams: dict[str, dict[str, int]] = {}
        for cid, (user_id, agent_id, last) in convs.items():
            streams.setdefault(user_id, {})[cid] = last
            if agent_id:
                streams.setdefault(agent_id, {})[cid] = last
        found = []
        for conn in live:
            sub = conn.identity.sub
            targets = dict(streams.get(sub, {}))
            if not conn.identity.is_staff and sub in notif_seqs:
                targets[NOTIFICATIONS] = notif_seqs[sub]
            if _still_behind(conn, targets):
                found.append((conn, targets))
        return found


def _still_behind(conn: Connection, targets: dict[str, int]) -> bool:
    for stream, last in targets.items():
        have = conn.notif_seq if stream == NOTIFICATIONS else conn.conv_seq.get(stream, 0)
        if have < last:
            return True
    return False


def _expired(conn: Connection) -> None:
    conn.expiry = None
    if conn.closed:
        return
    metrics.SESSIONS_EXPIRED.inc()
    conn.send_frame(error_frame("unauthorized", "token expired: send auth.refresh before exp"))
    conn.close(CloseCode.UNAUTHORIZED, "token expired")


def registration_slots(pool_max: int, writers: int) -> int:
    """All of the pool but the connections the group writers keep and one for requests and
    chats: a registration is a row of round trips, so its rate grows with the slots, and
    it rarely waits for the pool itself."""
    return max(1, pool_max - writers - 1)
