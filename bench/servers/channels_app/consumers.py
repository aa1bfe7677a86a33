import json
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer


class NotifyConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        qs = parse_qs(self.scope["query_string"].decode())
        user = qs.get("user", [""])[0]
        if not user:
            await self.close(4001)
            return
        self.group = f"u.{user}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add("all", self.channel_name)  # broadcasts
        await self.accept()
        await self.send(text_data="ok")

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard("all", self.channel_name)

    async def notify(self, event):
        await self.send(text_data=json.dumps(event["data"], ensure_ascii=False))
