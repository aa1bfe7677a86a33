"""Attachments use cases: take an upload (who may, what it is, re-encoded, scanned,
stored, recorded), describe one with fresh links, and hand out a file to whoever may have
it (everyone else: 404)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from hub import metrics
from hub.attachments import images
from hub.attachments.links import AttachmentLinks
from hub.attachments.scan import NoScan, Scanner, ScanRequest
from hub.attachments.storage import AttachmentStore, Blob
from hub.rules import access
from hub.rules.attachments import ACCEPTED_TEXT, Kind, display_name, sniff
from hub.store import Store
from hub.store import attachments as attachment_store
from hub.store import conversations as conv_store
from hub.store.ids import new_id
from supporthub_core.auth import Claims
from supporthub_core.errors import Invalid, NotFound, Unavailable, Unsupported
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

THUMBNAIL_TYPE = images.THUMBNAIL_TYPE


@dataclass(frozen=True, slots=True)
class Download:
    """A file on its way out: what it is and its bytes."""

    content_type: str
    name: str
    blob: Blob
    thumbnail: bool


class Attachments:
    def __init__(
        self,
        store: Store,
        files: AttachmentStore,
        links: AttachmentLinks,
        settings: Settings,
        scanner: Scanner | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.links = links
        self.settings = settings
        self.scanner = scanner or NoScan()
        self._cpu = asyncio.Semaphore(max(1, settings.attachment_workers))
        images.set_pixel_cap(settings.attachment_max_pixels)

    async def start(self) -> None:
        await self.files.start()

    async def close(self) -> None:
        await self.files.close()

    @property
    def max_bytes(self) -> int:
        return self.settings.attachment_max_bytes

    # --- upload --------------------------------------------------------------------------

    async def check_upload(self, claims: Claims, conversation_id: str) -> None:
        """Refuse at once (before the file is read) a caller who may not upload here."""
        async with self.store.acquire() as db:
            conv = await conv_store.get(db, conversation_id)
        access.ensure(access.may_attach(claims.role, claims.sub, conv))

    @staticmethod
    def kind_of(head: bytes) -> Kind:
        """The file's kind from its first bytes, or 415."""
        kind = sniff(head)
        if kind is None:
            raise Unsupported(f"only {ACCEPTED_TEXT} files are accepted (judged by their content)")
        return kind

    async def upload(
        self, claims: Claims, conversation_id: str, filename: str | None, raw: bytes
    ) -> dict:
        """Store an uploaded file (already read, at most `max_bytes`) for the conversation;
        its view with signed links (201 body)."""
        await self.check_upload(claims, conversation_id)
        if not raw:
            raise Invalid("the file is empty")
        kind = self.kind_of(raw[:64])
        width = height = None
        thumbnail = None
        if kind.image:
            async with self._cpu:
                processed = await asyncio.to_thread(
                    images.process,
                    raw,
                    kind,
                    max_pixels=self.settings.attachment_max_pixels,
                    thumbnail_px=self.settings.attachment_thumbnail_px,
                )
            data, thumbnail = processed.data, processed.thumbnail
            width, height = processed.width, processed.height
        else:
            data = raw  # a PDF is kept as sent (served as a download, never rendered here)
        name = display_name(filename, kind)
        verdict = await self.scanner.scan(
            ScanRequest(conversation_id, claims.role, claims.sub, name, kind.content_type, data)
        )
        if not verdict.ok:
            metrics.ATTACHMENTS_REFUSED.labels("scan").inc()
            raise Invalid(f"the file was refused: {verdict.reason or 'it did not pass the scan'}")
        attachment_id = new_id()
        try:  # files first, the row last: a file is visible only once all of it is there
            try:
                await self.files.put(attachment_id, data, kind.content_type)
                if thumbnail is not None:
                    await self.files.put(_thumb_key(attachment_id), thumbnail, THUMBNAIL_TYPE)
            except Exception as exc:
                log.warning("could not store attachment %s: %r", attachment_id, exc)
                raise Unavailable("the file store is unavailable, try again") from None
            async with self.store.acquire() as db:
                row = await attachment_store.insert(
                    db,
                    attachment_id=attachment_id,
                    conversation_id=conversation_id,
                    uploader_role=claims.role,
                    uploader_id=claims.sub,
                    name=name,
                    content_type=kind.content_type,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    width=width,
                    height=height,
                    thumbnail_size=len(thumbnail) if thumbnail is not None else None,
                )
        except BaseException:
            await self._forget_files(attachment_id)
            raise
        metrics.ATTACHMENTS_STORED.labels(kind.name).inc()
        return self.links.view(attachment_store.ref(row))

    async def _forget_files(self, attachment_id: str) -> None:
        for key in (attachment_id, _thumb_key(attachment_id)):
            try:
                await self.files.delete(key)
            except Exception as exc:  # best effort: an orphan file is harmless
                log.warning("could not delete attachment file %s: %s", key, exc)

    # --- reading -------------------------------------------------------------------------

    async def describe(self, claims: Claims, attachment_id: str) -> dict:
        """The attachment with links signed now (for a client whose links expired)."""
        row = await self._visible(attachment_id, claims)
        return self.links.view(attachment_store.ref(row))

    async def download(
        self,
        attachment_id: str,
        variant: str,
        *,
        exp: int | None,
        sig: str | None,
        claims: Claims | None,
    ) -> Download:
        """A file for a request with a valid signed link, or a bearer token of someone who
        may read the conversation; when both come, both must hold. Anything else is
        `not_found`, exactly like an id that does not exist."""
        signed = exp is not None and sig is not None
        if (
            exp is not None
            and sig is not None
            and not self.links.valid(attachment_id, variant, exp, sig)
        ):
            raise _gone()
        if not signed and claims is None:
            raise _gone()
        row = (
            await self._visible(attachment_id, claims) if claims else await self._row(attachment_id)
        )
        thumbnail = variant == "thumbnail"
        if thumbnail and row["thumbnail_size"] is None:
            raise _gone()
        key = _thumb_key(attachment_id) if thumbnail else attachment_id
        try:
            blob = await self.files.open(key)
        except Exception as exc:
            log.warning("could not read attachment file %s: %r", key, exc)
            raise Unavailable("the file store is unavailable, try again") from None
        if blob is None:
            log.warning("attachment %s has a row but no file %s", attachment_id, key)
            raise _gone()
        content_type = THUMBNAIL_TYPE if thumbnail else row["content_type"]
        return Download(content_type, row["name"], blob, thumbnail)

    async def _row(self, attachment_id: str):
        async with self.store.acquire() as db:
            row = await attachment_store.get(db, attachment_id)
        if row is None:
            raise _gone()
        return row

    async def _visible(self, attachment_id: str, claims: Claims):
        """The row, if `claims` may see it: whoever may read the conversation, once a
        message carries the file; before that, its uploader alone."""
        async with self.store.acquire() as db:
            row = await attachment_store.get(db, attachment_id)
            if row is None:
                raise _gone()
            conv = await conv_store.get(db, row["conversation_id"])
            past = await conv_store.agent_ids(db, row["conversation_id"]) if conv else []
        access.ensure(access.may_download(claims.role, claims.sub, conv, past))
        if not row["sent"] and claims.sub != row["uploader_id"]:
            raise _gone()
        return row


def _thumb_key(attachment_id: str) -> str:
    return f"{attachment_id}.thumb"


def _gone() -> NotFound:
    return NotFound("no such attachment")
