"""GET /openapi.json describes exactly the REST endpoints an app serves (hub and payments
in `dev`, payments alone in `supporthub payments`), and /api/docs shows it under a strict
CSP."""

from __future__ import annotations

from starlette.routing import Route

from supporthub_core.openapi import DOCS_PATHS
from tests.edge import payments_alone

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def api_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every Starlette route under /api, the docs page excepted."""
    found = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            if route.path in DOCS_PATHS:
                continue
            found |= {(m, route.path) for m in route.methods or () if m in HTTP_METHODS}
    return found


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item}


def check_document(doc: dict) -> None:
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["summary"] and op["responses"], (method, path)
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert len(ok) == 1, (method, path)
            if ok[0] != "204":  # no content, by definition
                assert "content" in op["responses"][ok[0]], f"{method} {path} has no response model"
            for status, response in op["responses"].items():
                if not status.startswith("2"):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody")
            if "503" in op["responses"]:
                assert "Retry-After" in op["responses"]["503"]["headers"]
            for param in op.get("parameters", []):
                assert "anyOf" not in param["schema"] or param["in"] != "query"
    # every $ref resolves
    text = str(doc)
    for name in schemas:
        assert f"#/components/schemas/{name}" in text or name == "ErrorDetail"


async def test_the_document_matches_the_routes_in_dev(hub):
    async with hub.http() as http:
        resp = await http.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    check_document(doc)
    routes = api_routes(hub.app)
    assert routes, "no /api routes?"
    assert documented(doc) == routes
    # the payments part and the hub part are both there, one port in dev
    assert ("POST", "/api/payments") in routes and ("POST", "/api/agents/login") in routes
    assert ("GET", "/api/help/search") in routes and ("GET", "/api/dev/token") in routes


async def test_payments_alone_documents_its_own_part(services):
    from payments.api import api as payments_api

    async with payments_alone(services.dsn, services.redis_url) as server:
        async with server.http() as http:
            doc = (await http.get("/openapi.json")).json()
            page = await http.get("/api/docs")
        assert page.status_code == 200
        check_document(doc)
        routes = api_routes(server.app)
        assert documented(doc) == routes
        assert routes == {(op.method, op.path) for op in payments_api.operations}
        assert ("POST", "/api/agents/login") not in routes


async def test_the_request_and_response_models_are_in_the_document(hub):
    async with hub.http() as http:
        doc = (await http.get("/openapi.json")).json()
    pay = doc["paths"]["/api/payments"]["post"]
    assert pay["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PaymentIn"
    )
    assert "202" in pay["responses"] and "422" in pay["responses"]
    payment_in = doc["components"]["schemas"]["PaymentIn"]
    assert set(payment_in["required"]) == {"to_account", "amount", "speed", "idempotency_key"}
    limit = next(
        p for p in doc["paths"]["/api/conversations"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 500)
    assert "security" not in doc["paths"]["/api/agents/login"]["post"]
    assert doc["paths"]["/api/stats"]["get"]["security"] == [{"bearer": []}]


async def test_a_wrong_method_gets_405_with_allow(hub):
    async with hub.http() as http:
        resp = await http.put("/api/payments")
        assert resp.status_code == 405
        assert set(resp.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
        assert resp.json()["error"]["code"] == "invalid"


async def test_the_docs_page_is_static_under_a_strict_csp(hub):
    async with hub.http() as http:
        page = await http.get("/api/docs")
        script = await http.get("/api/docs/docs.js")
        style = await http.get("/api/docs/docs.css")
    assert page.status_code == script.status_code == style.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    html = page.text
    assert '<script type="module" src="/api/docs/docs.js"></script>' in html
    assert "<style" not in html and " style=" not in html and "onload=" not in html
    assert "http://" not in html.replace('content="', "") and "https://" not in html  # no CDN
    assert "/openapi.json" in script.text and "innerHTML" not in script.text
    assert script.headers["content-type"].startswith("text/javascript")
