"""Frame dumps in the log, redacted.

websockets logs every frame it sends or receives at DEBUG (`< TEXT '{"type":"chat.send",
...}' [147 bytes]`), on the logger uvicorn hands it (`uvicorn.error`). Those lines hold
chat text as typed, before hub.services.chat masks it, so a server run with debug logging
would write verification codes and card numbers to its log. This filter keeps the line
(direction, opcode, size: enough to debug a connection) and drops the payload.
"""

from __future__ import annotations

import logging

from websockets.frames import Frame

#: Where websockets logs for uvicorn's protocols, and its own default server logger.
LOGGERS = ("uvicorn.error", "websockets.server")


class RedactFrames(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(arg, Frame) for arg in args):
            record.args = tuple(summary(a) if isinstance(a, Frame) else a for a in args)
        return True


def summary(frame: Frame) -> str:
    return f"{frame.opcode.name} [{len(frame.data)} bytes, not logged]"


def install() -> None:
    """Idempotent: once per logger, however many apps a process builds."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactFrames) for f in logger.filters):
            logger.addFilter(RedactFrames())
