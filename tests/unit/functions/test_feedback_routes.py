"""The feedback routes of the api function over HTTP, with DynamoDB faked by moto."""

from __future__ import annotations

import json
import uuid
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


ACME, GLOBEX = key("acme"), key("globex")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        app.dependency_overrides[get_settings] = lambda: SETTINGS
        with TestClient(app, raise_server_exceptions=True) as test_client:
            yield test_client
        app.dependency_overrides.clear()


def test_feedback_on_an_answer_is_recorded_and_a_second_replaces_it(client: TestClient) -> None:
    request_id = uuid.uuid4().hex
    first = client.post("/v1/feedback", json={"request_id": request_id, "rating": 1}, headers=ACME)
    second = client.post(
        "/v1/feedback", json={"request_id": request_id, "rating": -1, "comment": "wrong page cited"}, headers=ACME
    )

    assert first.status_code == second.status_code == 200
    found = client.get(f"/v1/feedback/{request_id}", headers=ACME).json()
    assert found == second.json()
    assert (found["rating"], found["comment"], found["key_id"], found["tenant"]) == (
        -1,
        "wrong page cited",
        "acme-key",
        "acme",
    )
    listed = client.get("/v1/feedback", headers=ACME).json()
    assert (listed["object"], listed["has_more"], [f["request_id"] for f in listed["data"]]) == (
        "list",
        False,
        [request_id],
    )


def test_the_list_pages_with_has_more_and_after(client: TestClient) -> None:
    ids = sorted(uuid.uuid4().hex for _ in range(3))
    for request_id in ids:
        client.post("/v1/feedback", json={"request_id": request_id, "rating": 1}, headers=ACME)

    page = client.get("/v1/feedback?limit=2", headers=ACME).json()
    rest = client.get(f"/v1/feedback?limit=2&after={page['data'][-1]['request_id']}", headers=ACME).json()

    assert (page["has_more"], rest["has_more"]) == (True, False)
    assert [f["request_id"] for f in page["data"] + rest["data"]] == ids


def test_another_tenants_key_cannot_read_list_or_change_feedback(client: TestClient) -> None:
    request_id = uuid.uuid4().hex
    client.post("/v1/feedback", json={"request_id": request_id, "rating": 1, "comment": "great"}, headers=ACME)

    assert client.get("/v1/feedback", headers=GLOBEX).json()["data"] == []
    response = client.get(f"/v1/feedback/{request_id}", headers=GLOBEX)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    # Rating the same id from globex writes globex's feedback only.
    client.post("/v1/feedback", json={"request_id": request_id, "rating": -1}, headers=GLOBEX)
    mine = client.get(f"/v1/feedback/{request_id}", headers=ACME).json()
    assert (mine["rating"], mine["comment"]) == (1, "great")


def test_unknown_feedback_is_404(client: TestClient) -> None:
    response = client.get(f"/v1/feedback/{uuid.uuid4().hex}", headers=ACME)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_a_key_without_the_chat_scope_cannot_leave_feedback(client: TestClient) -> None:
    response = client.post(
        "/v1/feedback", json={"request_id": uuid.uuid4().hex, "rating": 1}, headers=key("acme", "documents:write")
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert client.get("/v1/feedback", headers=ACME).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"request_id": "chatcmpl-123", "rating": 1}, "request_id"),
        ({"request_id": "A" * 32, "rating": 1}, "request_id"),
        ({"request_id": "a" * 32, "rating": 0}, "rating"),
        ({"request_id": "a" * 32, "rating": 5}, "rating"),
        ({"request_id": "a" * 32, "rating": "1"}, "rating"),
        ({"request_id": "a" * 32, "rating": True}, "rating"),
        ({"request_id": "a" * 32, "rating": 1.0}, "rating"),
        ({"request_id": "a" * 32, "rating": 1, "comment": "x" * 2001}, "comment"),
        ({"request_id": "a" * 32, "rating": 1, "tenant": "globex"}, "tenant"),
        ({"request_id": "a" * 32}, "rating"),
    ],
)
def test_bad_feedback_is_a_400_naming_the_field(client: TestClient, body: dict[str, object], param: str) -> None:
    response = client.post("/v1/feedback", json=body, headers=ACME)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert client.get("/v1/feedback", headers=ACME).json()["data"] == []


@pytest.mark.parametrize(
    ("path", "param"),
    [("/v1/feedback/not-hex", "request_id"), ("/v1/feedback?limit=0", "limit"), ("/v1/feedback?after=x", "after")],
)
def test_bad_ids_and_limits_in_the_url_are_400(client: TestClient, path: str, param: str) -> None:
    response = client.get(path, headers=ACME)
    assert (response.status_code, response.json()["error"]["param"]) == (400, param)


def test_the_openapi_document_declares_each_routes_errors() -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("post", "/v1/feedback"): {"400", "401", "403"},
        ("get", "/v1/feedback"): {"400", "401"},
        ("get", "/v1/feedback/{request_id}"): {"400", "401", "404"},
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
