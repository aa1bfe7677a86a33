"""Logs an operator can follow: an access log, a line when a socket opens and when it
closes (how long, which code, which side), a request id on every line of a request and in
its response; every metric documented and on the dashboard."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
import websockets
from prometheus_client import REGISTRY

from hub.logs import JsonFormatter, RequestIdFilter, quiet_uvicorn
from tests.client import JSON, HubClient
from tests.conftest import ROOT


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    return caplog


def _lines(caplog, logger: str, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and needle in r.getMessage()]


async def test_requests_carry_an_id_into_the_access_log_and_the_response(hub, logs):
    async with hub.http() as http:
        given = await http.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
        made = await http.get("/api/help/articles", params={"lang": "zh"})
        junk = await http.get("/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert given.headers["x-request-id"] == "lb-7f3a.1"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["x-request-id"])
    [line] = _lines(logs, "supporthub.access", '"GET /healthz HTTP/1.1" 200')[:1]
    assert line.request_id == "lb-7f3a.1"
    assert re.search(r'127\.0\.0\.1 "GET /healthz HTTP/1\.1" 200 \d+B [\d.]+ms', line.getMessage())
    [line] = _lines(logs, "supporthub.access", "/api/help/articles?lang=zh")
    assert line.request_id == made.headers["x-request-id"]
    entry = json.loads(JsonFormatter().format(line))
    assert (
        entry["request_id"] == made.headers["x-request-id"]
        and entry["logger"] == "supporthub.access"
    )


async def test_sockets_log_their_open_and_close_with_duration_and_code(hub, logs):
    quiet_uvicorn()  # as `supporthub dev` and `serve` do (hub.logs.setup_logging)
    user = await HubClient.connect(hub.ws_url, hub.token("u-logged"),
                                   additional_headers={"X-Request-ID": "ws-trace-1"})  # fmt: skip
    await user.close()
    bad = await websockets.connect(hub.ws_url, subprotocols=[JSON])
    await bad.send('{"type": "hello", "token": "forged"}')
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await bad.recv()
    assert bad.close_code == 4001
    for _ in range(100):  # the server logs the close once its side is done
        if _lines(logs, "hub.ws.endpoint", "before welcome"):
            break
        await asyncio.sleep(0.05)

    [opened] = _lines(logs, "hub.ws.endpoint", "ws open: user u-logged")
    assert opened.request_id == "ws-trace-1" and "from 127.0.0.1" in opened.getMessage()
    [closed] = _lines(logs, "hub.ws.endpoint", "ws closed: user u-logged")
    assert closed.request_id == "ws-trace-1"
    assert re.search(r"after \d+\.\ds, code 1000 by client$", closed.getMessage())
    [refused] = _lines(logs, "hub.ws.endpoint", "ws closed: before welcome")
    assert re.search(r"code 4001 by server$", refused.getMessage())
    assert not _lines(logs, "uvicorn.error", "[accepted]")
    assert not _lines(logs, "uvicorn.error", "connection open")


def _families() -> dict[str, str]:
    """Every supporthub metric this process registers: name -> type."""
    families = {}
    for family in REGISTRY.collect():
        if family.name.startswith("supporthub_"):
            families[family.name] = family.type
    return families


def test_every_metric_is_documented_with_its_type():
    import hub.push.sender  # noqa: F401 - registers its metrics
    import hub.services.webpush  # noqa: F401

    docs = (ROOT / "docs" / "operations.md").read_text()
    table = docs.split("### Metrics", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("supporthub_"):
            rows[cells[0]] = cells[1]
    families = _families()
    assert len(families) >= 20
    for name, kind in families.items():
        exposed = name + ("_total" if kind == "counter" and not name.endswith("_total") else "")
        documented = rows.get(exposed) or rows.get(name)
        assert documented == kind, f"{exposed}: documented as {documented!r}, is a {kind}"
    assert set(rows) <= {
        n + ("_total" if k == "counter" and not n.endswith("_total") else "")
        for n, k in families.items()
    } | set(families), "documented metrics that do not exist"


def test_the_grafana_dashboard_shows_existing_metrics():
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = set(re.findall(r"supporthub_[a-z_]+", " ".join(exprs)))
    families = _families()
    known = set()
    for name in families:
        known |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    assert used <= known, used - known
    for needed in ("supporthub_connections", "supporthub_frames_in_total", "supporthub_frames_out_total",
                   "supporthub_queue_drops_total", "supporthub_writer_batch_size_bucket",
                   "supporthub_writer_commit_seconds_bucket", "supporthub_bus_lag_seconds_bucket",
                   "supporthub_outbox_lag_seconds_bucket", "supporthub_queue_length",
                   "supporthub_queue_wait_seconds_bucket"):  # fmt: skip
        assert needed in used, needed
