"""The prompts routes of the api function over HTTP, with DynamoDB faked by moto."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from functions.api.app import app
from strata.config import Settings, get_settings
from strata.web import REQUEST_CONTEXT_HEADER
from strata_local.aws import create_tables

SETTINGS = Settings()


def key(tenant: str, scopes: str = "chat,documents:write,admin") -> dict[str, str]:
    context = {"authorizer": {"tenant": tenant, "key_id": f"{tenant}-key", "scopes": scopes}}
    return {REQUEST_CONTEXT_HEADER: json.dumps(context)}


ACME, GLOBEX, ACME_CHAT_ONLY = key("acme"), key("globex"), key("acme", "chat")
SUPPORT = {"name": "support", "template": "Answer kindly.\n\nSources:\n{sources}", "description": "for the help desk"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        app.dependency_overrides[get_settings] = lambda: SETTINGS
        with TestClient(app, raise_server_exceptions=True) as test_client:
            yield test_client
        app.dependency_overrides.clear()


def test_an_admin_creates_versions_and_reads_the_latest_or_any(client: TestClient) -> None:
    first = client.post("/v1/prompts", json=SUPPORT, headers=ACME)
    second = client.post("/v1/prompts", json={"name": "support", "template": "Be brief. {sources}"}, headers=ACME)

    assert first.status_code == second.status_code == 200
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["created_by"] == "acme-key"
    assert client.get("/v1/prompts/support", headers=ACME).json() == second.json()
    assert client.get("/v1/prompts/support?version=1", headers=ACME).json() == first.json()
    listed = client.get("/v1/prompts", headers=ACME).json()
    assert listed["object"] == "list"
    assert [(p["name"], p["version"]) for p in listed["data"]] == [("support", 2)]


def test_delete_removes_every_version(client: TestClient) -> None:
    for _ in range(2):
        client.post("/v1/prompts", json=SUPPORT, headers=ACME)

    deleted = client.delete("/v1/prompts/support", headers=ACME)

    assert deleted.status_code == 200
    assert deleted.json() == {"object": "prompt.deleted", "name": "support", "deleted": True, "versions": 2}
    assert client.get("/v1/prompts", headers=ACME).json()["data"] == []
    for path in ("/v1/prompts/support", "/v1/prompts/support?version=1"):
        response = client.get(path, headers=ACME)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert client.delete("/v1/prompts/support", headers=ACME).status_code == 404


def test_another_tenants_key_cannot_read_list_change_or_delete_a_prompt(client: TestClient) -> None:
    client.post("/v1/prompts", json=SUPPORT, headers=ACME)

    assert client.get("/v1/prompts", headers=GLOBEX).json()["data"] == []
    assert client.get("/v1/prompts/support", headers=GLOBEX).status_code == 404
    assert client.get("/v1/prompts/support?version=1", headers=GLOBEX).status_code == 404
    assert client.delete("/v1/prompts/support", headers=GLOBEX).status_code == 404
    # The same name under globex is globex's own prompt: acme's stays at version 1, unchanged.
    theirs = client.post("/v1/prompts", json={**SUPPORT, "template": "globex's"}, headers=GLOBEX).json()
    assert (theirs["tenant"], theirs["version"]) == ("globex", 1)
    mine = client.get("/v1/prompts/support", headers=ACME).json()
    assert (mine["version"], mine["template"]) == (1, SUPPORT["template"])


def test_a_chat_only_key_can_read_but_not_create_or_delete(client: TestClient) -> None:
    client.post("/v1/prompts", json=SUPPORT, headers=ACME)

    assert client.get("/v1/prompts/support", headers=ACME_CHAT_ONLY).status_code == 200
    for response in (
        client.post("/v1/prompts", json={**SUPPORT, "template": "hijacked"}, headers=ACME_CHAT_ONLY),
        client.delete("/v1/prompts/support", headers=ACME_CHAT_ONLY),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert client.get("/v1/prompts/support", headers=ACME).json()["version"] == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**SUPPORT, "name": "Support Desk"}, "name"),
        ({**SUPPORT, "name": "a#b"}, "name"),
        ({**SUPPORT, "template": ""}, "template"),
        ({**SUPPORT, "template": "x" * (32 * 1024 + 1)}, "template"),
        ({**SUPPORT, "template": ["not", "a", "string"]}, "template"),
        ({**SUPPORT, "description": 5}, "description"),
        ({**SUPPORT, "version": 3}, "version"),
        ({"name": "support"}, "template"),
    ],
)
def test_a_bad_prompt_is_a_400_naming_the_field(client: TestClient, body: dict[str, object], param: str) -> None:
    response = client.post("/v1/prompts", json=body, headers=ACME)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert client.get("/v1/prompts", headers=ACME).json()["data"] == []


@pytest.mark.parametrize(
    ("method", "path", "param"),
    [
        ("GET", "/v1/prompts/Support", "name"),
        ("DELETE", "/v1/prompts/a%23b", "name"),
        ("GET", "/v1/prompts/support?version=0", "version"),
        ("GET", "/v1/prompts/support?version=latest", "version"),
    ],
)
def test_a_bad_name_or_version_in_the_url_is_a_400(client: TestClient, method: str, path: str, param: str) -> None:
    response = client.request(method, path, headers=ACME)
    assert (response.status_code, response.json()["error"]["param"]) == (400, param)


def test_the_openapi_document_declares_each_routes_errors() -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("get", "/v1/prompts"): {"401"},
        ("post", "/v1/prompts"): {"400", "401", "403", "409"},
        ("get", "/v1/prompts/{name}"): {"400", "401", "404"},
        ("delete", "/v1/prompts/{name}"): {"400", "401", "403", "404"},
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


GREETING = {
    "name": "greeting",
    "template": "Help {{ customer }} with {{ product }}.",
    "variables": [
        {"name": "customer", "description": "who is asking"},
        {"name": "product", "default": "Strata"},
    ],
}


def test_variables_are_declared_with_the_version_and_labels_can_be_set_with_it(client: TestClient) -> None:
    created = client.post("/v1/prompts", json={**GREETING, "labels": ["production"]}, headers=ACME)

    assert created.status_code == 200
    body = created.json()
    assert body["labels"] == ["production"]
    assert body["variables"] == [
        {"name": "customer", "description": "who is asking", "required": True, "default": None},
        {"name": "product", "description": "", "required": False, "default": "Strata"},
    ]
    assert client.get("/v1/prompts/greeting?label=production", headers=ACME).json() == body


def test_labels_move_between_versions_and_show_on_the_versions(client: TestClient) -> None:
    for n in (1, 2, 3):
        client.post("/v1/prompts", json={"name": "support", "template": f"v{n}"}, headers=ACME)

    moved = client.put("/v1/prompts/support/labels/production", json={"version": 2}, headers=ACME)
    rolled_back = client.put("/v1/prompts/support/labels/production", json={"version": 1}, headers=ACME)

    assert moved.status_code == rolled_back.status_code == 200
    assert moved.json()["object"] == "prompt.label"
    assert (moved.json()["version"], moved.json()["previous_version"]) == (2, None)
    assert (rolled_back.json()["version"], rolled_back.json()["previous_version"]) == (1, 2)
    assert rolled_back.json()["updated_by"] == "acme-key"
    versions = client.get("/v1/prompts/support/versions", headers=ACME).json()
    assert [(v["version"], v["labels"]) for v in versions["data"]] == [(1, ["production"]), (2, []), (3, [])]
    assert client.get("/v1/prompts/support?label=production", headers=ACME).json()["template"] == "v1"
    assert [(p["name"], p["version"]) for p in client.get("/v1/prompts", headers=ACME).json()["data"]] == [
        ("support", 3)
    ]


def test_an_unknown_version_label_or_name_is_a_404(client: TestClient) -> None:
    client.post("/v1/prompts", json=SUPPORT, headers=ACME)

    for response in (
        client.put("/v1/prompts/support/labels/production", json={"version": 2}, headers=ACME),
        client.put("/v1/prompts/other/labels/production", json={"version": 1}, headers=ACME),
        client.get("/v1/prompts/support?label=production", headers=ACME),
        client.get("/v1/prompts/other/versions", headers=ACME),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_another_tenant_cannot_label_or_list_the_versions_of_a_prompt(client: TestClient) -> None:
    client.post("/v1/prompts", json={**SUPPORT, "labels": ["production"]}, headers=ACME)

    assert client.put("/v1/prompts/support/labels/production", json={"version": 1}, headers=GLOBEX).status_code == 404
    assert client.get("/v1/prompts/support/versions", headers=GLOBEX).status_code == 404
    assert client.get("/v1/prompts/support?label=production", headers=GLOBEX).status_code == 404


def test_a_chat_only_key_can_read_versions_but_not_move_a_label(client: TestClient) -> None:
    client.post("/v1/prompts", json=SUPPORT, headers=ACME)
    client.post("/v1/prompts", json={**SUPPORT, "labels": ["production"]}, headers=ACME)

    response = client.put("/v1/prompts/support/labels/production", json={"version": 1}, headers=ACME_CHAT_ONLY)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert client.get("/v1/prompts/support/versions", headers=ACME_CHAT_ONLY).status_code == 200
    assert client.get("/v1/prompts/support?label=production", headers=ACME).json()["version"] == 2


@pytest.mark.parametrize(
    ("body", "param", "named"),
    [
        ({**GREETING, "template": "Help {{ customer }} with {{ product }} for {{ team }}."}, "template", "'team'"),
        ({**GREETING, "template": "Help {{ customer }}."}, "variables", "'product'"),
        ({**GREETING, "template": "Help {{ customer }"}, "template", "line 1"),
        (
            {**GREETING, "variables": [{"name": "customer"}, {"name": "customer"}, {"name": "product"}]},
            "variables",
            "declared twice",
        ),
        ({**GREETING, "variables": [{"name": "1st"}]}, "variables.0.name", "not a variable name"),
        ({**GREETING, "variables": [{"name": "customer", "type": "str"}]}, "variables.0.type", ""),
        ({**GREETING, "variables": [{"name": "customer", "default": 3}]}, "variables.0.default", ""),
        (
            {**GREETING, "variables": [{"name": "product", "required": True, "default": "x"}]},
            "variables.0",
            "not required",
        ),
        ({**GREETING, "variables": [{"name": "product", "default": "é" * 4097}]}, "variables.0.default", "8192"),
        ({**GREETING, "labels": ["Production"]}, "labels.0", "not a label"),
        ({**GREETING, "labels": "production"}, "labels", ""),
    ],
)
def test_variables_and_labels_that_do_not_fit_are_a_400_naming_the_field(
    client: TestClient, body: dict[str, object], param: str, named: str
) -> None:
    response = client.post("/v1/prompts", json=body, headers=ACME)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert named in error["message"]
    assert client.get("/v1/prompts", headers=ACME).json()["data"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("GET", "/v1/prompts/support?version=1&label=production", None, "label"),
        ("GET", "/v1/prompts/support?label=Prod", None, "label"),
        ("PUT", "/v1/prompts/support/labels/Prod", {"version": 1}, "label"),
        ("PUT", "/v1/prompts/support/labels/production", {"version": 0}, "version"),
        ("PUT", "/v1/prompts/support/labels/production", {"version": "1"}, "version"),
        ("PUT", "/v1/prompts/support/labels/production", {"version": 1, "force": True}, "force"),
        ("GET", "/v1/prompts/Support/versions", None, "name"),
    ],
)
def test_a_bad_label_request_is_a_400(
    client: TestClient, method: str, path: str, body: dict[str, object] | None, param: str
) -> None:
    client.post("/v1/prompts", json=SUPPORT, headers=ACME)

    response = client.request(method, path, json=body, headers=ACME)

    assert (response.status_code, response.json()["error"]["param"]) == (400, param)


def test_the_openapi_document_declares_the_label_and_version_routes_errors() -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("get", "/v1/prompts/{name}/versions"): {"400", "401", "404"},
        ("put", "/v1/prompts/{name}/labels/{label}"): {"400", "401", "403", "404"},
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
