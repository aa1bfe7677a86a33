"""The tests' WebSocket client: the Python client library's single-socket `Connection`
(JSON or msgpack, with a frame buffer so a test can wait for one frame type while others
arrive). The reconnecting client with resume, dedupe and an outbox is
`supporthub_client.Client`."""

from __future__ import annotations

from supporthub_client.codec import JSON, MSGPACK
from supporthub_client.connection import Connection

__all__ = ["JSON", "MSGPACK", "HubClient"]


class HubClient(Connection):
    """A test's socket to the hub (`HubClient.connect(url, token, proto=..., resume=...)`)."""
