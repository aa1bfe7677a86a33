"""python-socketio + Redis (AsyncRedisManager) in ASGI on uvicorn (uvloop, httptools,
websockets-sansio: the same server stack as supporthub).

Each client sends its user id in the Socket.IO CONNECT auth ({"user": id}); the connect
handler puts the session in room = user id. The driver emits from outside with
`AsyncRedisManager(url, write_only=True).emit("notification", data, room=user)`.
"""

from __future__ import annotations

import argparse

import socketio
import uvicorn


def make_app(redis_url: str):
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(redis_url),
        cors_allowed_origins="*",
        transports=["websocket"],
    )

    @sio.event
    async def connect(sid, environ, auth):
        user = (auth or {}).get("user")
        if not user:
            return False
        await sio.enter_room(sid, user)

    return socketio.ASGIApp(sio)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-url", required=True)
    a = ap.parse_args()
    uvicorn.run(make_app(a.redis_url), host="127.0.0.1", port=a.port, loop="uvloop",
                http="httptools", ws="websockets-sansio", log_level="warning",
                access_log=False, backlog=4096, ws_ping_interval=20, ws_ping_timeout=20)  # fmt: skip
