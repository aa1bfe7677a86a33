"""Django Channels peer: channels + channels_redis (RedisChannelLayer by default,
BENCH_CHANNELS_LAYER=pubsub for RedisPubSubChannelLayer), served by uvicorn (uvloop,
httptools, websockets-sansio) or, with --server daphne, by daphne."""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    a = ap.parse_args()
    os.environ["BENCH_REDIS_URL"] = a.redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_app.settings")
    if a.server == "daphne":
        from daphne.cli import CommandLineInterface

        CommandLineInterface().run(["-b", "127.0.0.1", "-p", str(a.port), "--no-server-name",
                                    "channels_app.asgi:application"])  # fmt: skip
    else:
        import uvicorn
        from channels_app.asgi import application

        uvicorn.run(application, host="127.0.0.1", port=a.port, loop="uvloop", http="httptools",
                    ws="websockets-sansio", log_level="warning", access_log=False, backlog=4096,
                    ws_ping_interval=20, ws_ping_timeout=20)  # fmt: skip
