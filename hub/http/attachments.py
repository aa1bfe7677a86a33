"""REST of attachments: the multipart upload, read as it streams in (refused as soon as
it is too large, of a type not taken, or sent by someone who may not, without reading the
rest); the attachment with fresh links; and the files behind those links."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote, unquote

from pydantic import BaseModel, Field
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from hub import metrics
from hub.rules.attachments import KINDS, SNIFF_BYTES
from supporthub_core.auth import bearer, verify_token
from supporthub_core.errors import (
    BadFrame,
    HubError,
    Invalid,
    NotFound,
    TooLarge,
    Unauthorized,
    Unsupported,
    error_response,
)
from supporthub_core.http import caller, query
from supporthub_core.openapi import Api
from supporthub_core.validation import ASCII_DIGITS, INT64_MAX

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

    from hub.composition import Hub
    from hub.rules.attachments import Kind

#: What a multipart body may hold besides the file itself (boundaries, part headers, the
#: conversation id): the body cap is the file cap plus this (RequestGuard).
MULTIPART_OVERHEAD = 64 * 1024
MAX_FIELD = 256
MAX_PARTS = 8
FILE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
IMAGE_TYPES = tuple(k.content_type for k in KINDS if k.image)
FILE_TYPES = tuple(k.content_type for k in KINDS)


# --- documented shapes ------------------------------------------------------------------


class AttachmentUpload(BaseModel):
    """multipart/form-data: the conversation, then the file (one per request)."""

    conversation_id: Annotated[str, Field(min_length=1, max_length=128)]
    file: bytes = Field(description="PNG, JPEG, WebP, GIF or PDF (judged by the content).")


class AttachmentOut(BaseModel):
    attachment_id: str
    content_type: str = Field(description="By content; images are served re-encoded.")
    size: int = Field(description="Bytes of the stored file (after re-encoding).")
    name: str = Field(description="Sanitised, secrets masked, extension of the real type.")
    url: str = Field(description="Signed, short-lived; relative to the hub.")
    thumbnail_url: str | None = Field(None, description="Images only: at most 320 px, WebP.")
    width: int | None = None
    height: int | None = None


class LinkQuery(BaseModel):
    exp: Annotated[int, Field(ge=0, le=INT64_MAX), ASCII_DIGITS] | None = None
    sig: Annotated[str, Field(min_length=1, max_length=128)] | None = None


api = Api("attachments")


@api.route(
    "POST",
    "/api/attachments",
    summary="Upload a file to a conversation (its participants and supervisors)",
    body=AttachmentUpload,
    body_media="multipart/form-data",
    response=AttachmentOut,
    status=201,
    errors=(403, 404, 409, 415),
)
async def upload(request: Request) -> Response:
    """Multipart with `conversation_id` and `file`. At most `attachment_max_bytes` (10 MiB
    by default; 413, refused as soon as it is over, unread); PNG, JPEG, WebP, GIF or PDF
    by content whatever the name or Content-Type (415 otherwise); images re-encoded
    without metadata, with a thumbnail; an image over the pixel cap is 422."""
    claims = caller(request)
    hub: Hub = request.app.state.hub
    reader = _UploadReader(hub.attachments.max_bytes)
    try:
        parser = _parser(request, reader)
        checked = False
        async for chunk in request.stream():
            parser.write(chunk)
            if not checked and reader.conversation_id is not None:
                await hub.attachments.check_upload(claims, reader.conversation_id)
                checked = True
            if reader.kind is None and reader.head_ready:
                reader.kind = hub.attachments.kind_of(reader.head)
        parser.finalize()
        conversation_id = reader.complete()
    except ClientDisconnect:
        return Response(status_code=400)
    except FormParserError as exc:
        return _refusal(BadFrame(f"the multipart body is malformed: {exc}", status=400))
    except HubError as exc:
        _count(exc)
        # the rest of the body is not read: the connection cannot be used again
        return _refusal(exc)
    try:
        body = await hub.attachments.upload(
            claims, conversation_id, reader.filename, bytes(reader.file)
        )
    except HubError as exc:
        _count(exc)
        raise
    return JSONResponse(body, status_code=201)


@api.route(
    "GET",
    "/api/attachments/{attachment_id}",
    summary="An attachment with fresh links (whoever may read its conversation)",
    response=AttachmentOut,
    errors=(404,),
)
async def describe(request: Request) -> JSONResponse:
    """For a client whose links expired: the same view with links signed now."""
    claims = caller(request)
    hub: Hub = request.app.state.hub
    return JSONResponse(
        await hub.attachments.describe(claims, request.path_params["attachment_id"])
    )


async def _file(request: Request, variant: str) -> Response:
    params = _link_query(request)
    claims = _optional_claims(request)
    hub: Hub = request.app.state.hub
    download = await hub.attachments.download(
        request.path_params["attachment_id"], variant, exp=params.exp, sig=params.sig,
        claims=claims,
    )  # fmt: skip
    inline = download.thumbnail or download.content_type in IMAGE_TYPES
    name = download.name if not download.thumbnail else f"thumbnail-{download.name}"
    left = (params.exp - int(time.time())) if params.exp is not None else 0
    headers = {
        "Content-Length": str(download.blob.size),
        "Content-Disposition": content_disposition("inline" if inline else "attachment", name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": f"private, max-age={max(0, left)}" if left > 0 else "private, no-cache",
    }
    return StreamingResponse(
        download.blob.chunks,
        media_type=download.content_type,
        headers=headers,
        background=BackgroundTask(download.blob.close),
    )


@api.route(
    "GET",
    "/api/attachments/{attachment_id}/file",
    summary="The file (a signed link, or a bearer token of someone who may read the chat)",
    query=LinkQuery,
    media=FILE_TYPES,
    auth=False,
    errors=(404,),
)
async def file(request: Request) -> Response:
    """Served to the conversation's participants and supervisors: through the signed,
    short-lived `url` (what `<img src>` uses), or with their bearer token; a request that
    has both must pass both. Anyone else, and any expired or forged link: 404."""
    return await _file(request, "file")


@api.route(
    "GET",
    "/api/attachments/{attachment_id}/thumbnail",
    summary="An image's thumbnail (as the file)",
    query=LinkQuery,
    media=("image/webp",),
    auth=False,
    errors=(404,),
)
async def thumbnail(request: Request) -> Response:
    """At most 320 px on its longest side, WebP; who may have it as for the file."""
    return await _file(request, "thumbnail")


# --- helpers ---------------------------------------------------------------------------


def _link_query(request: Request) -> LinkQuery:
    return query(request, LinkQuery)


def _optional_claims(request: Request):
    """The bearer's claims if a token came; a bad token is no reason to say more than 404."""
    token = bearer(request.headers)
    if token is None:
        return None
    try:
        return verify_token(request.app.state.secret, token)
    except Unauthorized:
        raise NotFound("no such attachment") from None


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback `filename` and the real name as UTF-8 `filename*`."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip() or "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _refusal(exc: HubError) -> Response:
    response = error_response(exc)
    response.headers["Connection"] = "close"
    return response


def _count(exc: HubError) -> None:
    if exc.status == 413:
        metrics.ATTACHMENTS_REFUSED.labels("too_large").inc()
    elif exc.status == 415:
        metrics.ATTACHMENTS_REFUSED.labels("type").inc()
    elif exc.status == 422 and "image" in exc.message:
        metrics.ATTACHMENTS_REFUSED.labels("image").inc()


def _parser(request: Request, reader: _UploadReader) -> MultipartParser:
    media, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise Unsupported("send multipart/form-data with the fields conversation_id and file")
    if len(boundary) > 200:
        raise BadFrame("the multipart boundary is too long", status=400)
    return MultipartParser(boundary, reader.callbacks())


class _UploadReader:
    """Collects the parts of an upload as the parser finds them: the conversation id
    (a short field) and one file, counted as it arrives."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.conversation_id: str | None = None
        self.filename: str | None = None
        self.file = bytearray()
        self.kind: Kind | None = None
        self._file_parts = 0
        self._file_done = False
        self._parts = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None  # "conversation_id", "file", or None (ignored)
        self._field = bytearray()

    @property
    def head(self) -> bytes:
        return bytes(self.file[:64])

    @property
    def head_ready(self) -> bool:
        return len(self.file) >= SNIFF_BYTES or (self._file_done and len(self.file) > 0)

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise Invalid(f"at most {MAX_PARTS} parts: conversation_id and one file")
        self._headers = {}
        self._part = None
        self._field = bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        raw = self._headers.get(b"content-disposition", b"")
        kind, options = parse_options_header(raw)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if kind != b"form-data":
            raise BadFrame("a multipart part without Content-Disposition: form-data", status=400)
        if name == "file":
            self._file_parts += 1
            if self._file_parts > 1:
                raise Invalid("one file per upload")
            self._part = "file"
            self.filename = _filename(raw, options)
        elif name == "conversation_id":
            self._part = "conversation_id"

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            if len(self.file) + (end - start) > self.max_bytes:
                raise TooLarge(f"the file is over the limit of {self.max_bytes} bytes")
            self.file.extend(data[start:end])
        elif self._part == "conversation_id":
            if len(self._field) + (end - start) > MAX_FIELD:
                raise Invalid("conversation_id: too long")
            self._field.extend(data[start:end])
        # other fields are ignored (the body cap bounds them)

    def _end(self) -> None:
        if self._part == "conversation_id":
            try:
                value = self._field.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise Invalid("conversation_id: not UTF-8") from None
            if not value or "\x00" in value:
                raise Invalid("conversation_id: must be a non-empty string without NUL")
            self.conversation_id = value
        elif self._part == "file":
            self._file_done = True

    def complete(self) -> str:
        """The body has ended: both parts must have come; the conversation id."""
        if self.conversation_id is None:
            raise Invalid("conversation_id: field required")
        if not self._file_done:
            raise Invalid("file: field required")
        if not self.file:
            raise Invalid("file: the file is empty")
        return self.conversation_id


def _filename(raw: bytes, options: dict) -> str | None:
    """The part's file name: `filename*` (RFC 5987, UTF-8) if given, else `filename`."""
    match = re.search(rb"filename\*\s*=\s*UTF-8''([^;\s]+)", raw, re.IGNORECASE)
    if match:
        return unquote(match.group(1).decode("ascii", "replace"))
    value = options.get(b"filename")
    return value.decode("utf-8", "replace") if value is not None else None
