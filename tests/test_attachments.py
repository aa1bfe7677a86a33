"""Attachments over real HTTP and sockets: what an upload must be (size, type by content,
pixels), what is kept of it (no metadata), who may fetch it (everyone else: 404), and the
files in `message` frames live, on resume, in an agent's history and over REST."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import uuid

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from hub.attachments.links import AttachmentLinks
from hub.attachments.scan import Verdict
from tests.conftest import SECRET, start_hub
from tests.edge import open_raw, read_response, request_head
from tests.test_chat_flow import online_agent

pytestmark = pytest.mark.usefixtures("clean")

MiB = 1024 * 1024


def png(size=(40, 30), color=(10, 120, 200), text: dict | None = None) -> bytes:
    im = Image.new("RGB", size, color)
    for x in range(min(size[0], 10)):
        im.putpixel((x, 0), (255, 255, 0))
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    out = io.BytesIO()
    im.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A 64x32 JPEG whose EXIF says where it was taken and that it is rotated."""
    im = Image.new("RGB", (64, 32), (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # shown rotated 90° clockwise: 32x64
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (31.0, 14.0, 5.0), 3: "E", 4: (121.0, 28.0, 9.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=95)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


async def assigned_chat(hub, db, agent_name: str = "wang"):
    """An agent online and a user whose chat is assigned to it: (agent, user, cid)."""
    agent = await online_agent(hub, db, agent_name, ["payment"])
    user = await hub.client(f"u-{uuid.uuid4().hex[:8]}", name="Lin")
    opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
    cid = opened["conversation_id"]
    await agent.expect("chat.assigned", conversation_id=cid)
    return agent, user, cid


def user_token(hub, client) -> str:
    return hub.token(client.welcome["sub"], "user")


async def upload(hub, token: str, cid: str, data: bytes, name="shot.png", ctype="image/png"):
    async with hub.http(token) as http:
        return await http.post(
            "/api/attachments",
            data={"conversation_id": cid},
            files={"file": (name, data, ctype)},
        )


async def stored(hub, attachment_id: str, variant: str = "file") -> bytes:
    key = attachment_id if variant == "file" else f"{attachment_id}.thumb"
    blob = await hub.hub.attachments.files.open(key)
    assert blob is not None
    return await blob.read()


async def close_all(*clients) -> None:
    for c in clients:
        await c.close()


# --- what an upload must be ------------------------------------------------------------


async def test_a_png_is_stored_re_encoded_and_served_to_the_uploader(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    original = png(text={"Author": "Lin", "Comment": "taken at home"})
    resp = await upload(hub, user_token(hub, user), cid, original, name="../../失败截图.png")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["content_type"] == "image/png" and body["name"] == "失败截图.png"
    assert body["url"].startswith(f"/api/attachments/{body['attachment_id']}/file?exp=")
    assert body["thumbnail_url"] and (body["width"], body["height"]) == (40, 30)
    kept = await stored(hub, body["attachment_id"])
    assert body["size"] == len(kept)
    assert b"Author" not in kept and b"taken at home" not in kept
    assert Image.open(io.BytesIO(kept)).tobytes() == Image.open(io.BytesIO(original)).tobytes()

    async with hub.http() as http:  # the signed link alone, as an <img src> asks
        got = await http.get(body["url"])
        thumb = await http.get(body["thumbnail_url"])
        head = await http.head(body["url"])
    assert head.status_code == 200 and head.headers["content-length"] == str(len(kept))
    assert got.status_code == 200 and got.content == kept
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"].startswith("default-src 'none'")
    assert got.headers["cache-control"].startswith("private")
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("inline;") and "filename*=UTF-8''%E5%A4%B1" in disposition
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    await close_all(agent, user)


async def test_type_is_judged_by_content_not_by_name_or_content_type(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    token = user_token(hub, user)
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200 + b"This program cannot be run"
    resp = await upload(hub, token, cid, exe, name="receipt.png", ctype="image/png")
    assert resp.status_code == 415, resp.text
    assert "PNG, JPEG, WebP, GIF or PDF" in resp.json()["error"]["message"]
    html = b"<html><script>alert(1)</script></html>"
    assert (
        await upload(hub, token, cid, html, name="a.pdf", ctype="application/pdf")
    ).status_code == 415
    fake = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10
    assert (await upload(hub, token, cid, fake)).status_code == 415

    # a PNG that says it is a JPEG is taken as the PNG it is
    resp = await upload(hub, token, cid, png(), name="photo.jpg", ctype="image/jpeg")
    assert resp.status_code == 201, resp.text
    assert resp.json()["content_type"] == "image/png" and resp.json()["name"] == "photo.png"

    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    resp = await upload(hub, token, cid, pdf, name="statement\u202egnp.pdf", ctype="text/plain")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["content_type"] == "application/pdf" and "thumbnail_url" not in body
    assert "\u202e" not in body["name"] and body["name"].endswith(".pdf")
    async with hub.http() as http:
        got = await http.get(body["url"])
    assert got.content == pdf and got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith("attachment;")
    await close_all(agent, user)


async def test_an_upload_over_the_cap_is_refused_without_reading_it(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    token = user_token(hub, user)
    boundary = "----sh" + uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="conversation_id"\r\n\r\n{cid}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    eleven = 11 * MiB

    # declared: refused before a byte of the body is read
    reader, writer = await open_raw(hub.url)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Length": str(eleven + 500),
                   "Content-Type": f"multipart/form-data; boundary={boundary}"}  # fmt: skip
        # only the head: body bytes the server (rightly) never reads would make its close
        # a reset, which can overtake the answer on a loaded machine
        writer.write(request_head("POST", "/api/attachments", headers))
        await writer.drain()
        resp = await asyncio.wait_for(read_response(reader), 5)
    finally:
        writer.close()
    assert resp.status == 413 and resp.headers.get("connection") == "close"

    # chunked (no length): cut off once the file passes the cap, the rest never read
    offered = 48 * MiB
    reader, writer = await open_raw(hub.url)
    sent = 0
    chunk = b"\x89PNG\r\n\x1a\n" + b"\0" * (256 * 1024 - 8)

    async def pump() -> None:
        nonlocal sent
        headers = {"Authorization": f"Bearer {token}", "Transfer-Encoding": "chunked",
                   "Content-Type": f"multipart/form-data; boundary={boundary}"}  # fmt: skip
        writer.write(request_head("POST", "/api/attachments", headers))
        writer.write(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        while sent < offered:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)

    pumping = asyncio.create_task(pump())
    resp = None
    try:
        # the server stops reading at the cap, answers 413 and closes; with our bytes
        # still unread its close is a reset, which on a loaded machine can reach us
        # before the answer does: then the reset is the refusal
        with contextlib.suppress(ConnectionResetError):
            resp = await asyncio.wait_for(read_response(reader), 20)
        await asyncio.wait([pumping], timeout=5)
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
        writer.close()
    assert sent < offered // 2, "the server read on long after the cap"
    if resp is not None:
        assert resp.status == 413, resp
        assert "over" in resp.json()["error"]["message"]
    assert await db.fetchval("select count(*) from attachments") == 0
    await close_all(agent, user)


async def test_a_pixel_bomb_is_refused(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, "PNG")  # 144 megapixels in ~20 KB
    assert len(bomb.getvalue()) < 100_000
    resp = await upload(hub, user_token(hub, user), cid, bomb.getvalue())
    assert resp.status_code == 422, resp.text
    assert "too large" in resp.json()["error"]["message"]
    assert "pixels" in resp.json()["error"]["message"]
    assert await db.fetchval("select count(*) from attachments") == 0
    await close_all(agent, user)


async def test_exif_and_gps_are_gone_and_the_orientation_applied(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    resp = await upload(hub, user_token(hub, user), cid, jpeg_with_gps(), name="IMG_0042.JPG",
                        ctype="image/jpeg")  # fmt: skip
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["content_type"] == "image/jpeg" and body["name"] == "IMG_0042.jpg"
    async with hub.http() as http:
        got = (await http.get(body["url"])).content
    served = Image.open(io.BytesIO(got))
    assert served.size == (32, 64)  # upright: the rotation is in the pixels now
    assert not served.getexif() and "exif" not in served.info
    assert b"Exif" not in got and b"PhoneMaker" not in got and b"GPS" not in got
    assert got == await stored(hub, body["attachment_id"])
    await close_all(agent, user)


# --- who may fetch ----------------------------------------------------------------------


async def test_strangers_and_bad_links_get_404(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    other_agent = await online_agent(hub, db, "li", ["account"])
    resp = await upload(hub, user_token(hub, user), cid, png())
    body = resp.json()
    aid = body["attachment_id"]
    await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "m1",
                        "attachments": [aid]})  # fmt: skip
    path = f"/api/attachments/{aid}/file"
    exp_sig = body["url"].split("?", 1)[1]
    stranger = hub.token("u-stranger", "user")
    async with hub.http() as anonymous:
        assert (await anonymous.get(path)).status_code == 404  # no link, no token
        forged = body["url"][:-4] + ("AAAA" if not body["url"].endswith("AAAA") else "BBBB")
        assert (await anonymous.get(forged)).status_code == 404
        expired = AttachmentLinks(SECRET, 60).url(aid, "file", now=time.time() - 3600)
        assert (await anonymous.get(expired)).status_code == 404
        moved = body["url"].replace("/file?", "/thumbnail?")  # a link is for one variant
        assert (await anonymous.get(moved)).status_code == 404
        later = AttachmentLinks("another-secret", 60).url(aid, "file")
        assert (await anonymous.get(later)).status_code == 404
    for token in (stranger, hub.token("li", "agent"), hub.token("svc", "service"), "garbage"):
        async with hub.http(token) as http:
            assert (await http.get(path)).status_code == 404, token
            assert (await http.get(f"{path}?{exp_sig}")).status_code == 404, token
            assert (await http.get(f"/api/attachments/{aid}")).status_code in (401, 404)
    # the participants and a supervisor, with their tokens (an app) or the link
    for token in (
        user_token(hub, user),
        hub.token("wang", "agent"),
        hub.token("boss", "supervisor"),
    ):
        async with hub.http(token) as http:
            assert (await http.get(path)).status_code == 200
            assert (await http.get(f"{path}?{exp_sig}")).status_code == 200
            fresh = await http.get(f"/api/attachments/{aid}")
            assert fresh.status_code == 200 and fresh.json()["attachment_id"] == aid
    async with hub.http() as http:
        assert (
            await http.get(f"/api/attachments/{uuid.uuid4().hex}/file?{exp_sig}")
        ).status_code == 404
    await close_all(agent, user, other_agent)


async def test_an_unsent_upload_is_the_uploaders_alone(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    aid = (await upload(hub, user_token(hub, user), cid, png())).json()["attachment_id"]
    async with hub.http(hub.token("wang", "agent")) as http:
        assert (await http.get(f"/api/attachments/{aid}/file")).status_code == 404
        assert (await http.get(f"/api/attachments/{aid}")).status_code == 404
    # nor may the agent send it as its own
    err = await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1",
                               "attachments": [aid]})  # fmt: skip
    assert err["type"] == "error" and err["code"] == "not_found"
    await close_all(agent, user)


async def test_who_may_upload(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    other = await online_agent(hub, db, "li", ["account"])
    async with hub.http() as http:
        assert (await http.post("/api/attachments", files={"file": ("a.png", png())},
                                data={"conversation_id": cid})).status_code == 401  # fmt: skip
    assert (await upload(hub, hub.token("u-other", "user"), cid, png())).status_code == 404
    assert (await upload(hub, hub.token("li", "agent"), cid, png())).status_code == 403
    assert (await upload(hub, hub.token("svc", "service"), cid, png())).status_code == 403
    assert (await upload(hub, hub.token("wang", "agent"), cid, png())).status_code == 201
    assert (await upload(hub, hub.token("boss", "supervisor"), cid, png())).status_code == 201
    assert (await upload(hub, user_token(hub, user), "no-such-chat", png())).status_code == 404
    async with hub.http(user_token(hub, user)) as http:
        as_json = await http.post("/api/attachments", json={"conversation_id": cid})
        assert as_json.status_code == 415
        no_file = await http.post("/api/attachments", data={"conversation_id": cid},
                                  files={"other": ("x.txt", b"x")})  # fmt: skip
        assert no_file.status_code == 422 and "file" in no_file.json()["error"]["message"]
    await user.request({"type": "chat.close", "conversation_id": cid})
    assert (await upload(hub, user_token(hub, user), cid, png())).status_code == 409
    await close_all(agent, user, other)


# --- files in messages ----------------------------------------------------------------


async def test_attachments_in_message_frames_live_on_resume_and_over_rest(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    token = user_token(hub, user)
    first = (await upload(hub, token, cid, png(), name="a.png")).json()
    second = (await upload(hub, token, cid, b"%PDF-1.7\n%%EOF\n", name="bill.pdf")).json()
    ids = [first["attachment_id"], second["attachment_id"]]
    ack = await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "f1",
                              "text": "", "attachments": ids})  # fmt: skip
    assert ack["type"] == "ack", ack
    seq = ack["seq"]

    def check(frame) -> None:
        got = frame["attachments"]
        assert [a["attachment_id"] for a in got] == ids
        assert got[0]["content_type"] == "image/png" and got[0]["thumbnail_url"]
        assert got[1]["content_type"] == "application/pdf" and "thumbnail_url" not in got[1]
        for a in got:
            assert set(a) >= {"attachment_id", "content_type", "size", "name", "url"}
            assert "/file?exp=" in a["url"] and "thumbnail" not in a or a["thumbnail_url"]

    live = await agent.expect("message", conversation_id=cid, seq=seq)
    check(live)
    assert live["text"] == ""
    check(await user.expect("message", conversation_id=cid, seq=seq))
    async with hub.http() as http:  # what the agent's page loads from the live frame
        assert (await http.get(live["attachments"][0]["thumbnail_url"])).status_code == 200
        assert (await http.get(live["attachments"][1]["url"])).status_code == 200

    # the same client_msg_id again: the same message, with its files
    again = await user.request({"type": "chat.send", "conversation_id": cid,
                                "client_msg_id": "f1", "attachments": ids})  # fmt: skip
    assert again["seq"] == seq

    # a user's second device resumes and gets it with fresh links
    resumed = await hub.client(user.welcome["sub"], resume={"conversations": {cid: seq - 1}})
    check(await resumed.expect("message", conversation_id=cid, seq=seq))
    # an agent reconnecting gets it in the chat's history
    agent2 = await hub.client("wang", "agent", name="Wang")
    history = (await agent2.expect("chat.assigned", conversation_id=cid))["history"]
    check(next(m for m in history if m["seq"] == seq))
    # and REST
    async with hub.http(hub.token("boss", "supervisor")) as http:
        detail = (await http.get(f"/api/conversations/{cid}")).json()
    check(next(m for m in detail["messages"] if m["seq"] == seq))
    rows = await db.fetch("select attachment_id from message_attachments order by position")
    assert [r["attachment_id"] for r in rows] == ids
    await close_all(agent, user, resumed, agent2)


async def test_chat_send_refuses_what_is_not_the_senders_in_this_chat(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    mine = (await upload(hub, user_token(hub, user), cid, png())).json()["attachment_id"]
    other_user = await hub.client(f"u-{uuid.uuid4().hex[:8]}")
    opened = await other_user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
    theirs = (
        await upload(hub, hub.token(other_user.welcome["sub"]), opened["conversation_id"], png())
    ).json()["attachment_id"]

    async def send(frame):
        return await user.request({"type": "chat.send", "conversation_id": cid,
                                   "client_msg_id": uuid.uuid4().hex, **frame})  # fmt: skip

    assert (await send({"attachments": [theirs]}))["code"] == "not_found"
    assert (await send({"attachments": [mine, "nope"]}))["code"] == "not_found"
    assert (await send({"text": ""}))["code"] == "bad_frame"
    assert (await send({}))["code"] == "bad_frame"
    assert (await send({"attachments": [mine, mine]}))["code"] == "bad_frame"
    assert (await send({"attachments": [mine] * 11}))["code"] == "bad_frame"
    many = [uuid.uuid4().hex for _ in range(11)]
    assert (await send({"attachments": many}))["code"] == "invalid"
    assert await db.fetchval("select count(*) from message_attachments") == 0
    ok = await send({"text": "see the picture", "attachments": [mine]})
    assert ok["type"] == "ack"
    await close_all(agent, user, other_user)


async def test_an_agent_sends_a_file_to_the_user(hub, db):
    agent, user, cid = await assigned_chat(hub, db)
    aid = (await upload(hub, hub.token("wang", "agent"), cid, png(), name="guide.png")).json()[
        "attachment_id"
    ]
    ack = await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "g",
                               "text": "按图操作", "attachments": [aid]})  # fmt: skip
    got = await user.expect("message", conversation_id=cid, seq=ack["seq"])
    assert got["attachments"][0]["name"] == "guide.png"
    async with hub.http(user_token(hub, user)) as http:
        assert (await http.get(f"/api/attachments/{aid}/file")).status_code == 200
    await close_all(agent, user)


async def test_files_alone_in_a_bot_chat_get_a_pointer_to_a_person(hub, db):
    user = await hub.client(f"u-{uuid.uuid4().hex[:8]}")
    cid = (await user.request({"type": "chat.open", "topic": "payment"}))["conversation_id"]
    await user.expect(lambda f: f.get("type") == "message" and f["sender"]["role"] == "bot")
    aid = (await upload(hub, user_token(hub, user), cid, png())).json()["attachment_id"]
    ack = await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "p",
                              "attachments": [aid]})  # fmt: skip
    reply = await user.expect(
        lambda f: (
            f.get("type") == "message" and f["seq"] > ack["seq"] and f["sender"]["role"] == "bot"
        )
    )
    assert "转人工" in reply["text"]
    await user.close()


async def test_the_scan_hook_runs_before_anything_is_kept(services, db):
    class Refuse:
        seen: list = []

        async def scan(self, request):
            self.seen.append((request.name, request.content_type, len(request.data)))
            return Verdict(False, "malware found")

    server = await start_hub(services)
    server.hub.attachments.scanner = Refuse()
    try:
        agent, user, cid = await assigned_chat(server, db, "scan-agent")
        resp = await upload(server, user_token(server, user), cid, png())
        assert resp.status_code == 422 and "malware found" in resp.text
        assert Refuse.seen and Refuse.seen[0][:2] == ("shot.png", "image/png")
        assert await db.fetchval("select count(*) from attachments") == 0
        await close_all(agent, user)
    finally:
        await server.stop()


async def test_a_file_store_that_fails_is_503_and_keeps_nothing(services, db):
    class Broken:
        async def put(self, key, data, content_type):
            raise ConnectionError("the bucket is down")

        async def open(self, key):
            raise ConnectionError("the bucket is down")

        async def delete(self, key):
            raise ConnectionError("the bucket is down")

    server = await start_hub(services)
    try:
        agent, user, cid = await assigned_chat(server, db, "broken-agent")
        working = server.hub.attachments.files
        server.hub.attachments.files = Broken()
        resp = await upload(server, user_token(server, user), cid, png())
        assert resp.status_code == 503 and resp.headers["retry-after"]
        assert await db.fetchval("select count(*) from attachments") == 0
        server.hub.attachments.files = working
        aid = (await upload(server, user_token(server, user), cid, png())).json()
        server.hub.attachments.files = Broken()
        async with server.http() as http:
            assert (await http.get(aid["url"])).status_code == 503
        server.hub.attachments.files = working
        await close_all(agent, user)
    finally:
        await server.stop()


async def test_the_endpoints_are_in_the_openapi_document(hub):
    async with hub.http() as http:
        doc = (await http.get("/openapi.json")).json()
    post = doc["paths"]["/api/attachments"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["$ref"].endswith("/AttachmentUpload")
    schema = doc["components"]["schemas"]["AttachmentUpload"]
    assert schema["properties"]["file"]["format"] == "binary"
    assert {"201", "413", "415", "404"} <= set(post["responses"])
    out = doc["components"]["schemas"]["AttachmentOut"]
    assert {"attachment_id", "content_type", "size", "name", "url"} <= set(out["required"])
    file_get = doc["paths"]["/api/attachments/{attachment_id}/file"]["get"]
    assert "image/png" in file_get["responses"]["200"]["content"]
    assert "application/pdf" in file_get["responses"]["200"]["content"]
    assert "security" not in file_get  # the signed link is the credential
