"""The admin routes (/v1/keys, /v1/limits) through the api app, with the authorizer's context
header and the tables in moto: what a tenant's admin can do, and what nobody else can."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from functions.api.app import app
from strata.auth import ApiKeyStore, InvalidCredentialsError, TenantStore, parse_api_key
from strata.config import ROUTES, Scope
from strata.throttle.types import Limits
from strata.web import REQUEST_CONTEXT_HEADER, key_store, tenant_store
from tests.unit.auth.support import create_auth_tables

PEPPER = "routes-test-pepper-0123456789abcdef"
ADMIN_ROUTES = [route for route in ROUTES if route.path.startswith(("/v1/keys", "/v1/limits"))]


@dataclass
class Api:
    client: TestClient
    keys: ApiKeyStore
    tenants: TenantStore


def caller(tenant: str, scopes: str = "admin,chat") -> dict[str, str]:
    """The header the Lambda Web Adapter (and the local gateway) set from the authorizer's context."""
    context = {"requestId": "r-1", "authorizer": {"tenant": tenant, "key_id": f"{tenant}-admin", "scopes": scopes}}
    return {REQUEST_CONTEXT_HEADER: json.dumps(context)}


ACME, GLOBEX = caller("acme"), caller("globex")


@pytest.fixture
def api() -> Iterator[Api]:
    with mock_aws():
        create_auth_tables(boto3.client("dynamodb", region_name="us-east-1"))
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        keys = ApiKeyStore(dynamodb.Table("strata-keys"), PEPPER)
        tenants = TenantStore(dynamodb.Table("strata-tenants"))
        app.dependency_overrides[key_store] = lambda: keys
        app.dependency_overrides[tenant_store] = lambda: tenants
        with TestClient(app, raise_server_exceptions=True) as client:
            yield Api(client, keys, tenants)
        app.dependency_overrides.clear()


def create(api: Api, headers: dict[str, str] = ACME, **body: Any) -> dict[str, Any]:
    response = api.client.post("/v1/keys", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


# --- keys ---


def test_a_new_key_is_shown_once_works_and_is_listed_without_its_secret(api: Api) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    every_scope = caller("acme", scopes="admin,chat,documents:write")
    created = create(
        api,
        every_scope,
        name="ci",
        scopes=["chat", "documents:write"],
        rpm=60,
        tpm=10_000,
        expires_at=expires.isoformat(),
    )

    key = created["key"]
    assert parse_api_key(created["secret"]) == key["id"]
    assert key == {
        "object": "api_key",
        "id": key["id"],
        "tenant": "acme",
        "name": "ci",
        "scopes": ["chat", "documents:write"],
        "rpm": 60,
        "tpm": 10_000,
        "created_at": key["created_at"],
        "expires_at": key["expires_at"],
        "revoked_at": None,
    }
    assert datetime.fromisoformat(key["expires_at"]) == expires
    principal = api.keys.resolve(created["secret"])
    assert (principal.tenant, principal.scopes) == ("acme", {Scope.CHAT, Scope.DOCUMENTS_WRITE})
    assert principal.key_limits == Limits(requests_per_minute=60, tokens_per_minute=10_000)

    listed = api.client.get("/v1/keys", headers=ACME)
    one = api.client.get(f"/v1/keys/{key['id']}", headers=ACME)
    assert listed.status_code == one.status_code == 200
    assert listed.json() == {"object": "list", "data": [key]}
    assert one.json() == key
    assert created["secret"] not in listed.text + one.text


def test_a_key_created_with_nothing_but_a_name_may_chat_without_limits(api: Api) -> None:
    key = create(api, name="bot")["key"]
    assert (key["scopes"], key["rpm"], key["tpm"], key["expires_at"]) == (["chat"], None, None, None)


def test_patch_changes_only_the_fields_sent_and_null_lifts_a_limit(api: Api) -> None:
    created = create(api, name="ci", rpm=60, tpm=10_000)
    key_id = created["key"]["id"]

    renamed = api.client.patch(f"/v1/keys/{key_id}", json={"name": "deploy", "rpm": 120}, headers=ACME)
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["rpm"], renamed.json()["tpm"]) == ("deploy", 120, 10_000)

    lifted = api.client.patch(f"/v1/keys/{key_id}", json={"tpm": None, "scopes": ["chat", "admin"]}, headers=ACME)
    assert lifted.status_code == 200
    assert (lifted.json()["rpm"], lifted.json()["tpm"], lifted.json()["scopes"]) == (120, None, ["admin", "chat"])
    principal = api.keys.resolve(created["secret"])
    assert principal.key_limits == Limits(requests_per_minute=120)
    assert principal.scopes == {Scope.CHAT, Scope.ADMIN}


def test_delete_revokes_the_key_and_keeps_it_listed_as_revoked(api: Api) -> None:
    created = create(api)
    key_id = created["key"]["id"]

    revoked = api.client.delete(f"/v1/keys/{key_id}", headers=ACME)

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    with pytest.raises(InvalidCredentialsError, match="revoked"):
        api.keys.resolve(created["secret"])
    assert api.client.get(f"/v1/keys/{key_id}", headers=ACME).json()["revoked_at"] == revoked.json()["revoked_at"]


def test_an_admin_cannot_grant_a_scope_its_own_key_lacks(api: Api) -> None:
    admin_only = caller("acme", scopes="admin")
    key_id = create(api, scopes=["admin"], headers=admin_only)["key"]["id"]

    minted = api.client.post("/v1/keys", json={"scopes": ["documents:write"]}, headers=admin_only)
    raised = api.client.patch(f"/v1/keys/{key_id}", json={"scopes": ["admin", "chat"]}, headers=admin_only)

    for response in (minted, raised):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert [k.scopes for k in api.keys.list("acme")] == [{Scope.ADMIN}]


@pytest.mark.parametrize(
    "body",
    [
        {"rpm": "60"},
        {"rpm": 0},
        {"tpm": 1.5},
        {"rpm": True},
        {"name": 7},
        {"name": "x" * 101},
        {"scopes": ["root"]},
        {"scopes": "chat"},
        {"expires_at": "2099-01-01T00:00:00"},
        {"expires_at": "2001-01-01T00:00:00Z"},
        {"tenant": "globex"},
    ],
    ids=lambda body: json.dumps(body)[:40],
)
def test_a_create_body_that_is_not_exactly_right_is_a_400_and_creates_nothing(api: Api, body: dict[str, Any]) -> None:
    response = api.client.post("/v1/keys", json=body, headers=ACME)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert api.keys.list("acme") == []


@pytest.mark.parametrize("body", [{"rpm": "60"}, {"secret": "x"}, {"scopes": ["root"]}, {"expires_at": None}])
def test_a_patch_body_that_is_not_exactly_right_is_a_400(api: Api, body: dict[str, Any]) -> None:
    key_id = create(api)["key"]["id"]
    response = api.client.patch(f"/v1/keys/{key_id}", json=body, headers=ACME)
    assert response.status_code == 400, response.text


def test_another_tenants_admin_cannot_read_list_change_or_revoke_a_key(api: Api) -> None:
    created = create(api, name="acme's", rpm=5)
    key_id = created["key"]["id"]

    answers = [
        api.client.get(f"/v1/keys/{key_id}", headers=GLOBEX),
        api.client.patch(f"/v1/keys/{key_id}", json={"name": "mine", "rpm": 1000}, headers=GLOBEX),
        api.client.delete(f"/v1/keys/{key_id}", headers=GLOBEX),
    ]

    for response in answers:
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    # Exactly what an id that never existed gets: nothing tells globex the key is somebody's.
    never = api.client.get("/v1/keys/abcdefghijkl", headers=GLOBEX)
    assert (never.status_code, never.json()["error"]["message"]) == (
        404,
        answers[0].json()["error"]["message"].replace(key_id, "abcdefghijkl"),
    )
    assert api.client.get("/v1/keys", headers=GLOBEX).json()["data"] == []
    unchanged = api.client.get(f"/v1/keys/{key_id}", headers=ACME).json()
    assert (unchanged["name"], unchanged["rpm"], unchanged["revoked_at"]) == ("acme's", 5, None)
    assert api.keys.resolve(created["secret"]).tenant == "acme"


def test_keys_are_created_in_the_callers_tenant_only(api: Api) -> None:
    create(api, name="a")
    create(api, GLOBEX, name="g")

    assert [k["name"] for k in api.client.get("/v1/keys", headers=ACME).json()["data"]] == ["a"]
    assert [k["name"] for k in api.client.get("/v1/keys", headers=GLOBEX).json()["data"]] == ["g"]


# --- limits ---


def test_a_tenants_limits_are_unlimited_until_set_and_put_replaces_them(api: Api) -> None:
    unset = api.client.get("/v1/limits", headers=ACME)
    assert unset.status_code == 200
    assert unset.json() == {
        "object": "tenant.limits",
        "tenant": "acme",
        "requests_per_minute": None,
        "tokens_per_minute": None,
        "tokens_per_day": None,
    }

    put = api.client.put("/v1/limits", json={"requests_per_minute": 600, "tokens_per_day": 1_000_000}, headers=ACME)
    assert put.status_code == 200
    assert api.client.get("/v1/limits", headers=ACME).json() == put.json()
    assert api.tenants.get_limits("acme") == Limits(requests_per_minute=600, tokens_per_day=1_000_000)

    api.client.put("/v1/limits", json={"tokens_per_minute": 50_000}, headers=ACME)
    assert api.tenants.get_limits("acme") == Limits(tokens_per_minute=50_000)
    assert api.tenants.get_limits("globex") == Limits()
    assert api.client.get("/v1/limits", headers=GLOBEX).json()["tenant"] == "globex"


@pytest.mark.parametrize(
    "body", [{"tokens_per_day": "1000"}, {"requests_per_minute": 0}, {"tenant": "globex"}, {"rpm": 5}]
)
def test_a_limits_body_that_is_not_exactly_right_is_a_400_and_changes_nothing(api: Api, body: dict[str, Any]) -> None:
    api.tenants.set_limits("acme", Limits(requests_per_minute=7))

    response = api.client.put("/v1/limits", json=body, headers=ACME)

    assert response.status_code == 400, response.text
    assert api.tenants.get_limits("acme") == Limits(requests_per_minute=7)
    assert api.tenants.get_limits("globex") == Limits()


# --- who may call them ---


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_a_key_without_the_admin_scope_gets_403_on_every_admin_route(api: Api, route: Any) -> None:
    key_id = create(api)["key"]["id"]
    api.tenants.set_limits("acme", Limits(requests_per_minute=7))

    response = api.client.request(
        route.method,
        route.path.replace("{key_id}", key_id),
        json={} if route.method in ("POST", "PATCH", "PUT") else None,
        headers=caller("acme", scopes="chat,documents:write"),
    )

    assert route.scope == Scope.ADMIN
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "permission_denied"
    assert [k.revoked_at for k in api.keys.list("acme")] == [None]
    assert api.tenants.get_limits("acme") == Limits(requests_per_minute=7)


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_a_request_the_authorizer_did_not_pass_gets_401_on_every_admin_route(api: Api, route: Any) -> None:
    response = api.client.request(route.method, route.path.replace("{key_id}", "abcdefghijkl"), json={})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_the_admin_routes_are_exactly_the_route_tables_and_declare_their_errors() -> None:
    document = app.openapi()
    served = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith(("/v1/keys", "/v1/limits"))
        for method in operations
    }
    assert served == {(route.method, route.path) for route in ADMIN_ROUTES}
    assert document["paths"]["/v1/keys"]["post"]["responses"].keys() >= {"201", "400", "401", "403"}
    for method in ("get", "patch", "delete"):
        responses = document["paths"]["/v1/keys/{key_id}"][method]["responses"]
        assert responses["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    created = document["paths"]["/v1/keys"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/KeyCreated")
