"""Minimal Django settings for the Channels peer (no database, no apps beyond channels)."""

import os

SECRET_KEY = "bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = None
USE_TZ = True
DATABASES = {}
ASGI_APPLICATION = "channels_app.asgi.application"

_LAYER = os.environ.get("BENCH_CHANNELS_LAYER", "core")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": (
            "channels_redis.pubsub.RedisPubSubChannelLayer"
            if _LAYER == "pubsub"
            else "channels_redis.core.RedisChannelLayer"
        ),
        "CONFIG": {
            "hosts": [os.environ["BENCH_REDIS_URL"]],
            # the default capacity (100 per channel) silently drops group messages once a
            # consumer lags; raised so that the run measures throughput, not loss
            **({} if _LAYER == "pubsub" else {"capacity": 100_000, "expiry": 300}),
        },
    }
}
