"""supporthub_client: the Python client of the supporthub hub (asyncio).

    from supporthub_client import Client

    async with Client("ws://127.0.0.1:8000/ws", token, codec="msgpack") as hub:
        opened = await hub.open_chat("payment", "my transfer is stuck", handoff="agent")
        await hub.send_message(opened["conversation_id"], "still waiting")
        async for event in hub.events():
            print(event)

`Client` reconnects with jittered backoff, resumes every stream, drops duplicates and keeps
unsent messages in an outbox; `Connection` is one plain socket (what tests speak the
protocol frame by frame with). See docs/protocol.md, "Writing a client".
"""

from supporthub_client.client import (
    Client,
    FileOutbox,
    HubError,
    MemoryOutbox,
    OutboxStore,
    SeqTracker,
    client_msg_id,
)
from supporthub_client.codec import JSON, MSGPACK
from supporthub_client.connection import Connection
from supporthub_client.events import (
    ChatAssigned,
    ChatClosed,
    ChatOpened,
    ChatQueued,
    Error,
    Event,
    Frame,
    Message,
    Notification,
    Read,
    Sender,
    StateChange,
    Typing,
    Welcome,
    parse,
)

__all__ = [
    "JSON",
    "MSGPACK",
    "ChatAssigned",
    "ChatClosed",
    "ChatOpened",
    "ChatQueued",
    "Client",
    "Connection",
    "Error",
    "Event",
    "FileOutbox",
    "Frame",
    "HubError",
    "MemoryOutbox",
    "Message",
    "Notification",
    "OutboxStore",
    "Read",
    "SeqTracker",
    "Sender",
    "StateChange",
    "Typing",
    "Welcome",
    "client_msg_id",
    "parse",
]
