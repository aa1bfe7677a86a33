"""The node's notification heads (hub.rules.notif_heads): what a batch is numbered from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.rules.notif_heads import NotifHeads

_users = st.sampled_from(["a", "b", "c", "d"])


@given(st.dictionaries(_users, st.integers(0, 1000)), st.lists(_users, max_size=30))
def test_a_batch_is_numbered_from_each_users_head_in_batch_order(known, batch):
    heads = NotifHeads()
    heads.learn(known.items())
    missing = heads.unknown(sorted(set(batch)))
    heads.learn((u, 0) for u in missing)
    seqs, after = heads.number(batch)
    for u in set(batch):
        mine = [s for s, w in zip(seqs, batch, strict=True) if w == u]
        start = known.get(u, 0)
        assert mine == list(range(start + 1, start + 1 + len(mine)))
        assert after[u] == start + len(mine)
    assert set(after) == set(batch)
    # nothing moves until the batch is committed
    assert heads.number(batch) == (seqs, after)
    heads.advance(after)
    assert heads.number(batch)[0] == [
        s + after[u] - known.get(u, 0) for s, u in zip(seqs, batch, strict=True)
    ]


def test_forgotten_heads_are_unknown_again():
    heads = NotifHeads()
    heads.learn([("a", 3), ("b", 1)])
    heads.forget(["a", "z"])
    assert heads.unknown(["a", "b", "z"]) == ["a", "z"]


@given(st.integers(4, 50), st.integers(0, 200))
def test_the_heads_kept_stay_within_the_limit_and_are_the_newest(limit, n):
    heads = NotifHeads(limit)
    for i in range(n):
        heads.advance({f"u{i}": i})
    assert len(heads) <= limit
    if n:
        assert heads.unknown([f"u{n - 1}"]) == []


@given(st.integers(4, 50), st.integers(1, 120))
def test_what_a_batch_learns_stays_until_it_is_numbered(limit, batch):
    heads = NotifHeads(limit)
    heads.learn((f"old{i}", i) for i in range(limit))
    users = [f"u{i}" for i in range(batch)]
    heads.learn((u, 0) for u in users)
    assert heads.unknown(users) == []
    assert heads.number(users)[0] == [1] * batch
