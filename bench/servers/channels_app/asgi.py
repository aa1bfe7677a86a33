import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_app.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels_app.consumers import NotifyConsumer  # noqa: E402
from django.urls import path  # noqa: E402

application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/", NotifyConsumer.as_asgi())])})
