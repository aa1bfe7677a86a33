"""Attachments: what a file is (by its first bytes, never by its name or declared type),
and the name it is shown under. Pure: no I/O.

Accepted kinds: PNG, JPEG, WebP and GIF images, and PDF documents. Anything else is
refused, whatever its name or Content-Type says: an `.exe` renamed `.png` is still an
`.exe`, and a PNG sent as `image/jpeg` is a PNG.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from hub.rules.masking import mask


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # png, jpeg, webp, gif, pdf
    content_type: str
    extensions: tuple[str, ...]  # the first is the one a corrected name gets
    image: bool


PNG: Final = Kind("png", "image/png", (".png",), True)
JPEG: Final = Kind("jpeg", "image/jpeg", (".jpg", ".jpeg", ".jpe", ".jfif"), True)
WEBP: Final = Kind("webp", "image/webp", (".webp",), True)
GIF: Final = Kind("gif", "image/gif", (".gif",), True)
PDF: Final = Kind("pdf", "application/pdf", (".pdf",), False)
KINDS: Final = (PNG, JPEG, WEBP, GIF, PDF)
BY_CONTENT_TYPE: Final = {k.content_type: k for k in KINDS}

#: Bytes `sniff` needs to decide (fewer only when the whole file is shorter).
SNIFF_BYTES: Final = 16
ACCEPTED_TEXT: Final = "PNG, JPEG, WebP, GIF or PDF"


def sniff(head: bytes) -> Kind | None:
    """The kind of a file from its first bytes (at least SNIFF_BYTES unless the file is
    shorter), or None when it is none of the accepted kinds."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    # the header at the very start: readers that look further in make polyglots possible
    if head.startswith(b"%PDF-"):
        return PDF
    return None


# --- names -------------------------------------------------------------------------------

MAX_NAME: Final = 120
_UNSAFE = re.compile(r'[<>:"|?*\\/]')
_SPACES = re.compile(r"\s+")


def _shown(ch: str) -> bool:
    """Not a control, format (bidi overrides, zero-width), surrogate, private-use or
    unassigned character: each of those can make a name look like another."""
    return unicodedata.category(ch)[0] != "C"


def display_name(raw: str | None, kind: Kind) -> str:
    """The name an attachment is shown and downloaded under: the last part of whatever
    path the client sent, without control or invisible characters, without characters
    that file systems refuse, at most MAX_NAME characters, with secrets masked (a card
    number in a file name is as secret as in a message), and ending in an extension of
    the file's real kind ("shot.jpg" that is a PNG becomes "shot.png")."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch if _shown(ch) else " " for ch in name)
    name = _SPACES.sub(" ", _UNSAFE.sub("_", name)).strip(" .")
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext.lower()}"
    if not dot or ext not in _KNOWN_EXTENSIONS:
        # an unknown extension stays part of the name: "report.exe" -> "report.exe.pdf"
        stem, ext = name, ""
    if ext not in kind.extensions:  # "shot.jpg" that is a PNG -> "shot.png"
        ext = kind.extensions[0]
    stem = stem[: MAX_NAME - len(ext)].strip(" .") or "attachment"
    # the extension is the hub's own: only what the client wrote is masked
    return mask(stem).text + ext


_KNOWN_EXTENSIONS: Final = frozenset(e for k in KINDS for e in k.extensions)
