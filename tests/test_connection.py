"""The connection's stream order and duplicate filter, without sockets: each stream (a
user's notifications, each conversation) goes out in seq order, each frame once."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from hub.ws import connection
from hub.ws.connection import NOTIFICATIONS, Connection, RateLimiter


class Recording(Connection):
    """A connection whose socket is a list."""

    def __init__(self) -> None:
        super().__init__(None, binary=True, max_queue=10_000, limiter=RateLimiter(10, 10))
        self.sent: list[bytes] = []

    def _enqueue(self, data: bytes) -> None:
        self.sent.append(data)

    def got(self) -> list[str]:
        return [d.decode() for d in self.sent]


def notif(seq: int) -> tuple[dict, bytes]:
    return {"type": "notification", "seq": seq}, f"n{seq}".encode()


def msg(cid: str, seq: int) -> tuple[dict, bytes]:
    return {"type": "message", "conversation_id": cid, "seq": seq}, f"{cid}{seq}".encode()


def test_in_order_frames_pass_and_repeats_are_dropped():
    c = Recording()
    for s in (1, 2, 3, 2, 3, 4):
        c.push(*notif(s))
    assert c.got() == ["n1", "n2", "n3", "n4"]
    assert c.notif_seq == 4


async def test_a_late_frame_from_another_node_goes_out_first_and_once():
    c = Recording()
    c.set_base(NOTIFICATIONS, 4)
    c.push(*notif(6))  # 5 is late: 6 and 7 wait for it
    c.push(*notif(7))
    assert c.got() == []
    c.push(*notif(5))
    assert c.got() == ["n5", "n6", "n7"]
    assert c.notif_seq == 7 and not c.ahead and c.gap_timer is None
    for s in (5, 6, 7):
        c.push(*notif(s))
    assert c.got() == ["n5", "n6", "n7"]


async def test_a_gap_that_stays_open_asks_the_store_until_it_answers(monkeypatch):
    monkeypatch.setattr(connection, "GAP_WAIT_S", 0.05)
    c = Recording()
    asked: list[Connection] = []

    def fetch(conn: Connection) -> None:  # down at first, then it has the lost frame
        asked.append(conn)
        if len(asked) == 1:
            conn.wait_for_gap()
            return
        conn.push(*notif(2))
        conn.flush_gaps()

    c.on_gap = fetch
    c.push(*notif(1))
    c.push(*notif(3))
    await asyncio.sleep(0.3)
    assert asked == [c, c] and c.got() == ["n1", "n2", "n3"]
    # no store to ask: what waited goes out in order after the wait
    d = Recording()
    d.push(*notif(2))
    d.push(*notif(4))
    d.push(*notif(3))
    await asyncio.sleep(0.2)
    assert d.got() == ["n2", "n3", "n4"] and d.ahead is None


def test_conversations_are_separate_streams():
    c = Recording()
    c.push(*msg("a", 1))
    c.push(*msg("b", 1))
    c.push(*msg("a", 3))
    c.push(*msg("a", 3))
    assert c.got() == ["a1", "b1"]
    c.push(*msg("a", 2))
    assert c.got() == ["a1", "b1", "a2", "a3"]
    assert c.conv_seq == {"a": 3, "b": 1}


def test_chat_assigned_history_sets_the_base():
    c = Recording()
    c.push({"type": "chat.assigned", "conversation_id": "x",
            "history": [{"seq": 1}, {"seq": 2}]}, b"assigned")  # fmt: skip
    c.push(*msg("x", 2))
    c.push(*msg("x", 3))
    assert c.got() == ["assigned", "x3"]


def test_a_base_set_past_waiting_frames_releases_the_rest():
    c = Recording()
    c.push(*notif(3))
    c.push(*notif(5))
    c.set_base(NOTIFICATIONS, 3)  # a replay brought 1..3
    assert c.got() == []
    c.push(*notif(4))
    assert c.got() == ["n4", "n5"]


def test_a_gap_that_never_fills_does_not_grow_forever():
    c = Recording()
    for s in range(3, 400):
        c.push(*notif(s))
    assert c.ahead is None and c.got() == []  # nothing sent past the gap...
    assert c.closed and c.close_code == 1013  # ...the client resumes from the store


@given(st.permutations(list(range(1, 40))), st.lists(st.integers(1, 39), max_size=20))
def test_any_arrival_order_goes_out_in_seq_order_once(order, repeats):
    c = Recording()
    for s in [*order, *repeats]:
        c.push(*notif(s))
    assert c.got() == [f"n{s}" for s in range(1, 40)]
