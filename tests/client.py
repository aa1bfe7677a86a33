"""The tests' WebSocket client: the Python client library's single-socket `Connection`
(JSON or msgpack, with a frame buffer so a test can wait for one frame type while others
arrive). The reconnecting client with resume, dedupe and an outbox is
`supporthub_client.Client`."""

from __future__ import annotations

from typing import Any

from supporthub_client.codec import JSON, MSGPACK
from supporthub_client.connection import Connection

__all__ = ["JSON", "MSGPACK", "HubClient"]


class HubClient(Connection):
    """A test's socket to the hub (`HubClient.connect(url, token, proto=..., resume=...)`)."""

    @classmethod
    async def connect(  # type: ignore[override]
        cls,
        url: str,
        token: str | None = None,
        *,
        hello_fields: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """As `Connection.connect`; `hello_fields` are more fields of the hello (a device's
        `lang` and `tz`)."""
        if hello_fields is not None and kwargs.get("hello", True) is True:
            kwargs["hello"] = hello_fields
        return await super().connect(url, token, **kwargs)
