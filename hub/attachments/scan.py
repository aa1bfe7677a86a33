"""The scan hook: every file is handed to a `Scanner` after it has been checked and
re-encoded, and before it is stored or anyone can see it. The default lets everything
through; an operator plugs in an antivirus or a content-moderation service by giving
`Hub.build(scanner=...)` one of their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ScanRequest:
    conversation_id: str
    uploader_role: str
    uploader_id: str
    name: str
    content_type: str
    data: bytes  # exactly what will be stored and served


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""  # shown to the uploader when refused


class Scanner(Protocol):
    async def scan(self, request: ScanRequest) -> Verdict: ...


class NoScan:
    """Lets every file through."""

    async def scan(self, request: ScanRequest) -> Verdict:
        return Verdict(True)
