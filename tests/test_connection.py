"""The connection's duplicate filter, without sockets."""

from __future__ import annotations

from hub.ws.connection import NOTIFICATIONS, Connection, RateLimiter


def conn() -> Connection:
    return Connection(None, binary=True, max_queue=10, limiter=RateLimiter(10, 10))


def notif(seq: int) -> dict:
    return {"type": "notification", "seq": seq}


def msg(cid: str, seq: int) -> dict:
    return {"type": "message", "conversation_id": cid, "seq": seq}


def test_in_order_frames_pass_and_repeats_are_dropped():
    c = conn()
    assert [c.is_duplicate(notif(s)) for s in (1, 2, 3, 2, 3, 4)] == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]
    assert c.notif_seq == 4


def test_a_late_frame_from_another_node_still_goes_out_once():
    c = conn()
    c.set_base(NOTIFICATIONS, 4)
    assert c.is_duplicate(notif(6)) is False  # 5 is late
    assert c.is_duplicate(notif(7)) is False
    assert c.is_duplicate(notif(5)) is False  # the late one is not lost
    assert c.notif_seq == 7 and not c.ahead
    assert [c.is_duplicate(notif(s)) for s in (5, 6, 7)] == [True, True, True]


def test_conversations_are_separate_streams():
    c = conn()
    assert c.is_duplicate(msg("a", 1)) is False
    assert c.is_duplicate(msg("b", 1)) is False
    assert c.is_duplicate(msg("a", 3)) is False
    assert c.is_duplicate(msg("a", 3)) is True
    assert c.is_duplicate(msg("a", 2)) is False
    assert c.conv_seq == {"a": 3, "b": 1}


def test_chat_assigned_history_sets_the_base():
    c = conn()
    c.is_duplicate(
        {"type": "chat.assigned", "conversation_id": "x", "history": [{"seq": 1}, {"seq": 2}]}
    )
    assert c.is_duplicate(msg("x", 2)) is True
    assert c.is_duplicate(msg("x", 3)) is False


def test_a_gap_that_never_fills_does_not_grow_forever():
    c = conn()
    for s in range(3, 400):
        assert c.is_duplicate(notif(s)) is False
    assert c.ahead is None or sum(len(v) for v in c.ahead.values()) <= 256
