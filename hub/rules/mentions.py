"""@mentions in private notes: which agents a note names."""

from __future__ import annotations

import re

MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.\-]{1,64})")


def mentions(text: str) -> list[str]:
    """The usernames `@mentioned` in a note, in order, once each."""
    return list(dict.fromkeys(m.rstrip(".-") for m in MENTION.findall(text)))
