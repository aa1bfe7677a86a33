"""Dev only: `/dev/mail`, the mail the hub sent (to the local catcher) and where to send
mail to the hub, as a plain page."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse


async def dev_mail(request: Request):
    hub = request.app.state.hub
    catcher = hub.mail_catcher
    caught = [m.view() for m in catcher.mail] if catcher is not None else []
    listen = hub.mail_in.address
    if request.query_params.get("format") == "json":
        return JSONResponse(
            {"listen": f"{listen[0]}:{listen[1]}" if listen else None, "mail": caught}
        )
    support = escape(hub.settings.support_email)
    where = (
        f"Send mail to <b>{support}</b> over SMTP at <code>{escape(listen[0])}:{listen[1]}</code>"
        f" (e.g. <code>swaks --server {escape(listen[0])}:{listen[1]} --to {support}"
        " --from alice@example.com</code>)."
        if listen
        else "The SMTP listener is off (HUB_SMTP_LISTEN)."
    )
    rows = "".join(
        "<article><h3>{subject}</h3><p><small>{at} &middot; from {frm} to {to}<br>"
        "Message-ID {mid} &middot; In-Reply-To {irt}</small></p><pre>{text}</pre></article>".format(
            subject=escape(m["subject"] or "(no subject)"),
            at=escape(m["received_at"]),
            frm=escape(m["from"]),
            to=escape(", ".join(m["to"])),
            mid=escape(m["message_id"]),
            irt=escape(m["in_reply_to"] or "-"),
            text=escape(m["text"]),
        )  # fmt: skip
        for m in caught
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>Sent mail (dev)</title>"
        "<style>body{font:14px system-ui;max-width:60rem;margin:2rem auto}"
        "article{border-top:1px solid #ccc}pre{white-space:pre-wrap}</style>"
        f"<h1>✉ Sent mail (dev)</h1><p>{where}</p>"
        f"{rows or '<p>No mail sent yet.</p>'}"
    )
    return HTMLResponse(page)
