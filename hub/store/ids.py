"""Row ids made by the hub."""

from __future__ import annotations

import os

_PER_READ = 256  # ids cut from one read of the system's random source
_ready: list[str] = []
os.register_at_fork(after_in_child=_ready.clear)  # a forked child never repeats its parent's


def new_id() -> str:
    """128 random bits as 32 hex characters (the shape of uuid4().hex, cheaper to make):
    one `os.urandom` call per `_PER_READ` ids instead of one per id."""
    if not _ready:
        block = os.urandom(16 * _PER_READ).hex()
        _ready.extend(block[i : i + 32] for i in range(0, len(block), 32))
    return _ready.pop()
