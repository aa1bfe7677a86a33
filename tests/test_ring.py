"""The event ring: which node handles a user's payment events (pure)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from hub.cluster.ring import NodeRing

USERS = [f"user-{i}" for i in range(3000)]


def rings(names: list[str]) -> list[NodeRing]:
    out = []
    for name in names:
        ring = NodeRing(name)
        ring.update(names)
        out.append(ring)
    return out


def test_a_lone_node_owns_everyone():
    ring = NodeRing("a")
    assert ring.alone and all(ring.owns(u) for u in USERS[:50])


@given(st.sets(st.text(min_size=1, max_size=12), min_size=1, max_size=8), st.text(max_size=20))
def test_nodes_that_agree_on_membership_give_each_user_exactly_one_owner(names, user):
    assert sum(r.owns(user) for r in rings(sorted(names))) == 1


def test_users_spread_evenly():
    a, b, c = rings(["a", "b", "c"])
    shares = Counter(a.owner(u) for u in USERS)
    assert set(shares) == {"a", "b", "c"}
    assert all(800 < n < 1200 for n in shares.values()), shares


def test_a_leaving_node_moves_only_its_own_users():
    before = rings(["a", "b", "c"])[0]
    after = rings(["a", "b"])[0]
    moved = [u for u in USERS if before.owner(u) != after.owner(u)]
    assert moved and all(before.owner(u) == "c" for u in moved)


def test_update_reports_changes_and_always_keeps_this_node():
    ring = NodeRing("a")
    assert ring.update(["b"]) and ring.nodes == ("a", "b")
    assert not ring.update(["b", "a"])
    assert ring.update([]) and ring.alone
