"""The S3 attachment store against a real S3-compatible server on this machine (moto's
server, started here), alone and behind a hub: uploads land in the bucket, downloads come
from it, nothing in the hub's directory."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid

import pytest

from hub.attachments.storage import S3Store
from tests.conftest import free_port, reap, start_hub
from tests.test_attachments import assigned_chat, png, upload, user_token

pytest.importorskip("aioboto3")
pytest.importorskip("moto.server")

BUCKET = "supporthub-files"
KEYS = {"access_key": "test-key", "secret_key": "test-secret", "region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the local S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        finally:
            reap(proc)


async def _store(endpoint: str, prefix: str) -> S3Store:
    store = S3Store(BUCKET, prefix=prefix, endpoint_url=endpoint, **KEYS)
    await store.start()
    try:
        await store._client.create_bucket(Bucket=BUCKET)
    except Exception as exc:  # made by an earlier test of the module
        if "BucketAlready" not in type(exc).__name__ and "BucketAlready" not in str(exc):
            raise
    return store


async def test_put_open_delete(s3_endpoint):
    store = await _store(s3_endpoint, "t1/")
    try:
        key = uuid.uuid4().hex
        assert await store.open(key) is None
        data = bytes(range(256)) * 1000
        await store.put(key, data, "image/png")
        blob = await store.open(key)
        assert blob is not None and blob.size == len(data)
        assert await blob.read() == data
        await store.put(f"{key}.thumb", b"small", "image/webp")
        assert await (await store.open(f"{key}.thumb")).read() == b"small"
        await store.delete(key)
        assert await store.open(key) is None
        with pytest.raises(ValueError):
            await store.put("../escape", b"x", "image/png")
    finally:
        await store.close()


async def test_a_hub_keeps_its_files_in_the_bucket(services, db, clean, s3_endpoint):
    prefix = f"hub-{uuid.uuid4().hex[:6]}/"
    await (await _store(s3_endpoint, prefix)).close()  # the bucket exists
    unused = services.root / f"unused-{uuid.uuid4().hex[:6]}"
    server = await start_hub(
        services,
        attachment_s3_bucket=BUCKET,
        attachment_s3_endpoint_url=s3_endpoint,
        attachment_s3_region=KEYS["region"],
        attachment_s3_access_key=KEYS["access_key"],
        attachment_s3_secret_key=KEYS["secret_key"],
        attachment_s3_prefix=prefix,
        attachment_dir=unused,
    )
    try:
        assert isinstance(server.hub.attachments.files, S3Store)
        agent, user, cid = await assigned_chat(server, db, "s3-agent")
        resp = await upload(server, user_token(server, user), cid, png())
        assert resp.status_code == 201, resp.text
        body = resp.json()
        aid = body["attachment_id"]
        ack = await user.request({"type": "chat.send", "conversation_id": cid,
                                  "client_msg_id": "s3", "attachments": [aid]})  # fmt: skip
        frame = await agent.expect("message", conversation_id=cid, seq=ack["seq"])
        async with server.http() as http:
            got = await http.get(frame["attachments"][0]["url"])
            thumb = await http.get(frame["attachments"][0]["thumbnail_url"])
        assert got.status_code == 200 and thumb.status_code == 200
        probe = await _store(s3_endpoint, prefix)
        try:
            assert await (await probe.open(aid)).read() == got.content
            assert await (await probe.open(f"{aid}.thumb")).read() == thumb.content
        finally:
            await probe.close()
        assert not unused.exists()  # nothing on disk
        for c in (agent, user):
            await c.close()
    finally:
        await server.stop()
