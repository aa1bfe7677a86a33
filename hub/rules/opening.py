"""When a `chat.open` is the same open again. Pure: no I/O.

The contract gives `chat.open` no key of its own, and a client sends an open again when
its answer never came (the socket dropped, it gave up waiting) although the first one
may have been stored. Such an open names the same topic with the same first words; a
customer who really starts another chat asks something else (or on another topic). So
two opens are one chat when their customer, topic and opening text (as stored: masked,
trimmed) agree while the chat the first one opened is still open. The key holds a digest
of the text, never the text.
"""

from __future__ import annotations

import hashlib


def open_key(topic: str, masked_text: str | None) -> str:
    """The key that makes two opens of one customer one chat (hub.store.opening):
    `topic`, and a digest of the opening text as stored (masked), trimmed; no text and
    blank text are alike."""
    words = " ".join((masked_text or "").split())
    return f"{topic}:{hashlib.sha256(words.encode()).hexdigest()[:32]}"
