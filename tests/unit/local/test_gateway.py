from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from strata.web import REQUEST_CONTEXT_HEADER
from strata_local.gateway import FrontendSite, LocalGateway, Route

pytestmark = pytest.mark.anyio

GOOD_KEY = "sk-strata-good"


def fake_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    def echo(request: Request) -> dict[str, Any]:
        return {"path": request.url.path, "context": json.loads(request.headers.get(REQUEST_CONTEXT_HEADER, "{}"))}

    return app


def authorizer(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """Stands in for the authorizer function: allows GOOD_KEY, denies 'sk-deny', else 401."""
    token = event["headers"].get("authorization", "").removeprefix("Bearer ")
    if token not in (GOOD_KEY, "sk-deny"):
        raise Exception("Unauthorized")
    effect = "Allow" if token == GOOD_KEY else "Deny"
    arn = event["methodArn"].split("/")[0]
    return {
        "principalId": "k",
        "context": {"tenant": "acme", "key_id": "k"},
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": [f"{arn}/local/*/*"]}],
        },
    }


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = fake_app()
    gateway = LocalGateway(
        routes=[Route("/v1/chat/completions", app), Route("/healthz", app, authorized=False), Route("/v1/{rest}", app)],
        authorizer=authorizer,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway")


async def test_gateway_passes_the_authorizer_context_to_the_function(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {GOOD_KEY}"})
    assert response.status_code == 200
    authorizer = response.json()["context"]["authorizer"]
    assert {k: authorizer[k] for k in ("tenant", "key_id")} == {"tenant": "acme", "key_id": "k"}
    assert authorizer["latency"] >= 0  # as API Gateway's $context.authorizer.latency


async def test_gateway_answers_401_in_openai_shape_without_a_valid_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_gateway_honours_a_deny_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models", headers={"Authorization": "Bearer sk-deny"})
    assert response.status_code == 403


async def test_gateway_drops_a_client_supplied_request_context(client: httpx.AsyncClient) -> None:
    forged = json.dumps({"authorizer": {"tenant": "victim"}})
    response = await client.get(
        "/v1/models", headers={"Authorization": f"Bearer {GOOD_KEY}", REQUEST_CONTEXT_HEADER: forged}
    )
    assert response.json()["context"]["authorizer"]["tenant"] == "acme"


async def test_public_routes_skip_the_authorizer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/nothing-here")).status_code == 404


async def test_unknown_files_are_a_404_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>Strata</title>")
    gateway = LocalGateway(routes=[], authorizer=authorizer, frontend=FrontendSite(tmp_path, {"apiBaseUrl": "/v1"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
        assert (await client.get("/")).status_code == 200
        missing = await client.get("/favicon.ico")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


async def test_the_page_and_its_config_carry_the_site_headers_as_cloudfront_sends_them(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>Strata</title>")
    site = FrontendSite(tmp_path, {"apiBaseUrl": "/v1"}, {"Content-Security-Policy": "default-src 'none'"})
    gateway = LocalGateway(routes=[], authorizer=authorizer, frontend=site)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
        page, config = await client.get("/"), await client.get("/config.json")
        missing = await client.get("/nothing.js")

    assert page.headers["content-security-policy"] == "default-src 'none'"
    assert config.json() == {"apiBaseUrl": "/v1"}
    assert config.headers["content-security-policy"] == "default-src 'none'"
    assert config.headers["cache-control"] == "no-cache"
    assert missing.status_code == 404


async def test_gateway_reuses_a_policy_per_authorization_header_until_its_ttl_like_api_gateway() -> None:
    calls: list[str] = []
    now = [0.0]

    def counting(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["headers"].get("authorization", ""))
        return authorizer(event, context)

    gateway = LocalGateway(
        routes=[Route("/v1/models", fake_app())], authorizer=counting, authorizer_cache_ttl_s=60, clock=lambda: now[0]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
        good = {"Authorization": f"Bearer {GOOD_KEY}"}
        for _ in range(3):
            assert (await client.get("/v1/models", headers=good)).status_code == 200
        assert (await client.get("/v1/models", headers={"Authorization": "Bearer sk-deny"})).status_code == 403
        assert (await client.get("/v1/models", headers={"Authorization": "Bearer sk-deny"})).status_code == 403
        for _ in range(2):  # refusals are not cached
            assert (await client.get("/v1/models", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await client.get("/v1/models")).status_code == 401  # no identity source: not even asked
        now[0] = 61
        assert (await client.get("/v1/models", headers=good)).status_code == 200

    assert calls == [f"Bearer {GOOD_KEY}", "Bearer sk-deny", "Bearer nope", "Bearer nope", f"Bearer {GOOD_KEY}"]


def test_routes_come_from_the_route_table() -> None:
    from strata.config import ROUTES
    from strata_local.gateway import routes_from_table

    chat, api = object(), object()
    routes = routes_from_table(ROUTES, {"chat": chat, "api": api})

    served = {(method, route.path) for route in routes for method in route.methods or ()}
    assert served == {(spec.method, spec.path) for spec in ROUTES}
    document = next(r for r in routes if r.path == "/v1/documents/{document_id}")
    assert document.matches("/v1/documents/abc") and not document.matches("/v1/documents/abc/x")
    assert next(r for r in routes if r.path == "/healthz").authorized is False
