"""Short-lived signed links to attachment files, so that `<img src>` works in a browser
that cannot add a bearer token to the request.

A link is `/api/attachments/{id}/{variant}?exp=UNIX&sig=HMAC`: HMAC-SHA256 over the id,
the variant (`file` or `thumbnail`) and the expiry, keyed with a key derived from the
hub's secret (never the secret itself, which also signs tokens). Links name no viewer:
they are handed only to the conversation's participants and supervisors (in `message`
frames and REST answers), and a request that also carries a bearer token is judged by
that token as well (hub.services.attachments). Expiries are rounded up to the minute, so
that a transcript rendered twice asks for the same URL and the browser's cache answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Iterable
from typing import Final

VARIANTS: Final = ("file", "thumbnail")
ROUND_S: Final = 60


class AttachmentLinks:
    def __init__(self, secret: str, ttl_s: int, *, clock: Callable[[], float] = time.time):
        self._key = hmac.new(
            secret.encode(), b"supporthub attachment links v1", hashlib.sha256
        ).digest()
        self.ttl_s = max(1, int(ttl_s))
        self._clock = clock

    def _sig(self, attachment_id: str, variant: str, exp: int) -> str:
        mac = hmac.new(self._key, f"{attachment_id}\n{variant}\n{exp}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def url(self, attachment_id: str, variant: str, *, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        step = ROUND_S if self.ttl_s >= 2 * ROUND_S else 1
        exp = math.ceil((now + self.ttl_s) / step) * step
        return (
            f"/api/attachments/{attachment_id}/{variant}"
            f"?exp={exp}&sig={self._sig(attachment_id, variant, exp)}"
        )

    def valid(self, attachment_id: str, variant: str, exp: int, sig: str) -> bool:
        """The signature is ours and the link has not expired."""
        if variant not in VARIANTS or exp <= self._clock():
            return False
        return hmac.compare_digest(self._sig(attachment_id, variant, exp), sig)

    def view(self, ref: dict) -> dict:
        """An attachment as clients see it: `{attachment_id, content_type, size, name, url,
        thumbnail_url?, width?, height?}` from the store's reference (which says whether
        there is a thumbnail)."""
        out = {
            "attachment_id": ref["attachment_id"],
            "content_type": ref["content_type"],
            "size": ref["size"],
            "name": ref["name"],
            "url": self.url(ref["attachment_id"], "file"),
        }
        if ref.get("thumbnail"):
            out["thumbnail_url"] = self.url(ref["attachment_id"], "thumbnail")
        if ref.get("width"):
            out["width"], out["height"] = ref["width"], ref["height"]
        return out

    def frame(self, frame: dict) -> dict:
        """A `message` frame from the store with its attachments' links signed now (the
        frame itself is changed and returned; one without attachments is left alone)."""
        refs = frame.get("attachments")
        if refs:
            frame["attachments"] = [self.view(ref) for ref in refs]
        return frame

    def frames(self, frames: Iterable[dict]) -> list[dict]:
        return [self.frame(f) for f in frames]
