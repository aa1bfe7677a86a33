"""Row ids: 32 hex characters, never repeated, not even by a forked child."""

from __future__ import annotations

import os
import re

from hub.store.ids import new_id


def test_ids_are_hex_and_distinct():
    ids = [new_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_makes_other_ids_than_its_parent():
    new_id()  # the parent has ids read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, "".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 320).decode()
    os.close(read)
    parent = "".join(new_id() for _ in range(10))
    assert {child[i : i + 32] for i in range(0, 320, 32)}.isdisjoint(
        {parent[i : i + 32] for i in range(0, 320, 32)}
    )
