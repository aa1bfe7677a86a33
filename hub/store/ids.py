"""Row ids made by the hub."""

from __future__ import annotations

import os


def new_id() -> str:
    """128 random bits as 32 hex characters (the shape of uuid4().hex, cheaper to make)."""
    return os.urandom(16).hex()
