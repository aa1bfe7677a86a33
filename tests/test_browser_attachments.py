"""Files in real headless Chromium: a customer pastes a screenshot into the web chat, it is
previewed and sent, the agent sees it inline in the console, opens it full size (Esc
closes), and downloads exactly what the hub stored: the same pixels, no metadata."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, PngImagePlugin

from hub.store import agents as agent_store
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    login_agent,
    new_page,
)


def screenshot_png() -> bytes:
    """A small 'failed payment' screenshot with metadata a phone might add."""
    im = Image.new("RGB", (360, 200), (245, 246, 250))
    for x in range(20, 340):
        for y in range(70, 110):
            im.putpixel((x, y), (217, 48, 37) if (x // 20) % 2 else (250, 220, 215))
    info = PngImagePlugin.PngInfo()
    info.add_text("GPS", "31.2304 N, 121.4737 E")
    info.add_text("Software", "PhoneOS 17.2")
    out = io.BytesIO()
    im.save(out, "PNG", pnginfo=info)
    return out.getvalue()


PASTE = """(b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const file = new File([bytes], "image.png", { type: "image/png" });
  const transfer = new DataTransfer();
  transfer.items.add(file);
  const input = document.getElementById("input");
  input.focus();
  input.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
}"""

DROP = """(b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const file = new File([bytes], "账单.pdf", { type: "application/pdf" });
  const transfer = new DataTransfer();
  transfer.items.add(file);
  const zone = document.getElementById("view-chat");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}"""

LOADED = "img => img.complete && img.naturalWidth > 0"


async def test_a_pasted_screenshot_reaches_the_console_and_downloads_as_stored(
    hub,
    clean,
    db,
    browser,  # noqa: F811
):
    await agent_store.upsert(
        db, username="wang", password="pw-wang", name="小王", skills=["payment"], capacity=3
    )
    actx, agent, agent_problems = await new_page(
        browser, viewport={"width": 1440, "height": 900}, accept_downloads=True
    )
    await login_agent(agent, hub.url, "wang", "pw-wang")
    await agent.click("#status-switch [data-status=online]")
    await agent.wait_for_selector("#status-switch [data-status=online].on")

    uctx, user, user_problems = await new_page(browser, viewport={"width": 1280, "height": 800})
    await user.goto(f"{hub.url}/widget/?user=u-paste&name=Lin")
    await user.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    await user.click("[data-topic=payment]")
    await user.click("#btn-start-agent")
    await user.wait_for_selector("#view-chat:not([hidden])")
    await agent.wait_for_selector("#conv:not([hidden])")
    await user.wait_for_selector("#hdr-sub >> text=小王")

    # --- the customer pastes a screenshot: previewed in the tray, uploaded, sent
    original = screenshot_png()
    await user.evaluate(PASTE, base64.b64encode(original).decode())
    item = user.locator("#attach-tray .tray-item[data-status=done]")
    await item.wait_for()
    preview = item.locator("img")
    assert (await preview.get_attribute("src")).startswith("blob:")
    assert await preview.evaluate(LOADED)
    await user.fill("#input", "付款失败了，截图在这里")
    await user.click("#btn-send")
    sent = user.locator("#transcript .msg.mine[data-seq] .att-img img")
    await sent.wait_for()
    await eventually(lambda: sent.evaluate(LOADED))
    assert await user.locator("#attach-tray").is_hidden()

    # --- the agent sees it inline, opens it full size, downloads it
    thumb = agent.locator("#transcript .msg.user .att-img img")
    await thumb.wait_for()
    await eventually(lambda: thumb.evaluate(LOADED))
    assert "/thumbnail?" in await thumb.get_attribute("src")
    assert await agent.locator(".msg.user .bubble", has_text="截图在这里").count() == 1
    aid = await agent.get_attribute("#transcript .msg.user .att-img", "data-attachment")
    await agent.click("#transcript .msg.user .att-img")
    full = agent.locator("dialog.lightbox[open] .lb-img")
    await full.wait_for()
    await eventually(lambda: full.evaluate(LOADED))
    assert await full.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [360, 200]
    async with agent.expect_download() as info:
        await agent.click("dialog.lightbox .lb-download")
    download = await info.value
    assert download.suggested_filename == "image.png"
    got = Path(await download.path()).read_bytes()
    await agent.keyboard.press("Escape")
    await agent.wait_for_selector("dialog.lightbox", state="hidden")

    blob = await hub.hub.attachments.files.open(aid)
    assert got == await blob.read()  # byte for byte what the hub stored
    served = Image.open(io.BytesIO(got))
    assert served.tobytes() == Image.open(io.BytesIO(original)).convert("RGB").tobytes()
    assert not served.info.get("GPS") and b"31.2304" not in got and b"PhoneOS" not in got

    # the download link under the thumbnail gives the same file
    async with agent.expect_download() as info:
        await agent.click("#transcript .msg.user .att-download")
    assert Path(await (await info.value).path()).read_bytes() == got

    # --- a PDF dropped on the chat: the first upload fails (network), a retry sends it
    failures = []

    async def fail_once(route):
        if not failures:
            failures.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    await user.route("**/api/attachments", fail_once)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    await user.evaluate(DROP, base64.b64encode(pdf).decode())
    retry = user.locator("#attach-tray .tray-item[data-status=failed] .tray-retry")
    await retry.wait_for()
    assert await user.locator("#btn-send").is_disabled()
    await retry.click()
    await user.locator("#attach-tray .tray-item[data-status=done]").wait_for()
    await user.click("#btn-send")
    chip = agent.locator("#transcript .msg.user .att-file", has_text="账单.pdf")
    await chip.wait_for()
    assert failures and "账单.pdf" in await chip.inner_text()
    async with agent.expect_download() as info:
        await chip.click()
    assert Path(await (await info.value).path()).read_bytes() == pdf
    await user.unroute("**/api/attachments")

    for problems in (agent_problems, user_problems):
        problems.assert_clean(allow=EXPECTED_NOISE)
    await actx.close()
    await uctx.close()
