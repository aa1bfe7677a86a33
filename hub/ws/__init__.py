"""The connection edge: the WebSocket endpoint, connections, frames and the local registry."""
