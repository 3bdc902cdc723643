"""The documents routes of the api function over HTTP, with AWS faked by moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from fastapi.testclient import TestClient
from moto import mock_aws

from functions.api.app import app
from strata.config import Settings, get_settings
from strata.documents import DocumentRegistry, parse_source_key
from strata.web import REQUEST_CONTEXT_HEADER
from strata_local.aws import create_buckets, create_tables

BUCKET = "strata-documents"
SETTINGS = Settings(max_document_bytes=4096)


def key(tenant: str, scopes: str = "chat,documents:write,admin") -> dict[str, str]:
    return {
        REQUEST_CONTEXT_HEADER: json.dumps(
            {"authorizer": {"tenant": tenant, "key_id": f"{tenant}-key", "scopes": scopes}}
        )
    }


ACME, GLOBEX, ACME_CHAT_ONLY = key("acme"), key("globex"), key("acme", "chat")


@pytest.fixture
def env() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        create_buckets(s3)
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))
        app.dependency_overrides[get_settings] = lambda: SETTINGS
        with TestClient(app, raise_server_exceptions=True) as client:
            yield {"client": client, "s3": s3, "registry": registry}
        app.dependency_overrides.clear()


def stored(env: dict[str, Any], key: str) -> str:
    """A document as ingestion leaves it: the object in the bucket and an indexed record."""
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"Kangaroos eat grass.")
    source = parse_source_key(key)
    env["registry"].mark_indexing(source, sequencer=None, size_bytes=20)
    env["registry"].mark_indexed(source, title="Kangaroos", chunks=1, content_type="text/plain", etag="e")
    return source.document_id


def objects(env: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in env["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_post_grants_an_upload_that_lands_the_file_under_the_tenant(env: dict[str, Any]) -> None:
    response = env["client"].post("/v1/documents", json={"path": "notes/q3.md"}, headers=ACME)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source_key"] == "tenants/acme/notes/q3.md"
    assert body["document_id"] == parse_source_key(body["source_key"]).document_id
    assert body["upload"]["method"] == "POST"
    assert body["expires_in"] > 0
    assert body["max_bytes"] == 4096
    upload = requests.post(
        body["upload"]["url"], data=body["upload"]["fields"], files={"file": ("q3.md", b"# Q3\n\nUp.")}, timeout=10
    )
    assert upload.status_code == 204
    assert objects(env) == ["tenants/acme/notes/q3.md"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"path": "../globex/plans.txt"}, "path"),
        ({"path": "/tenants/globex/plans.txt"}, "path"),
        ({"path": "setup.exe"}, "path"),
        ({"path": "a\u0000.txt"}, "path"),
        ({"path": 7}, "path"),
        ({"path": "a.txt", "content_type": "no type"}, "content_type"),
        ({"path": "a.txt", "tenant": "globex"}, "tenant"),
        ({}, "path"),
    ],
)
def test_a_bad_upload_request_is_a_400_naming_the_field(env: dict[str, Any], body: dict[str, Any], param: str) -> None:
    response = env["client"].post("/v1/documents", json=body, headers=ACME)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["message"].startswith(f"{param}: ")
    assert objects(env) == []


def test_a_path_climbing_out_of_the_tenant_names_the_problem(env: dict[str, Any]) -> None:
    response = env["client"].post("/v1/documents", json={"path": "notes/../../globex/a.txt"}, headers=GLOBEX)
    assert "'..'" in response.json()["error"]["message"]


def test_list_and_get_show_status_for_the_callers_tenant_only(env: dict[str, Any]) -> None:
    mine = stored(env, "tenants/acme/a.txt")
    theirs = stored(env, "tenants/globex/b.txt")

    listed = env["client"].get("/v1/documents", headers=ACME).json()["data"]
    assert [(d["document_id"], d["status"]) for d in listed] == [(mine, "indexed")]
    assert env["client"].get(f"/v1/documents/{mine}", headers=ACME).json()["status"] == "indexed"
    response = env["client"].get(f"/v1/documents/{theirs}", headers=ACME)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_delete_removes_the_file_and_answers_the_record_marked_deleting(env: dict[str, Any]) -> None:
    document_id = stored(env, "tenants/acme/a.txt")

    response = env["client"].delete(f"/v1/documents/{document_id}", headers=ACME)

    assert response.status_code == 200
    assert (response.json()["document_id"], response.json()["status"]) == (document_id, "deleting")
    assert objects(env) == []
    assert env["client"].get(f"/v1/documents/{document_id}", headers=ACME).json()["status"] == "deleting"


def test_another_tenants_key_cannot_read_list_or_delete_a_document(env: dict[str, Any]) -> None:
    document_id = stored(env, "tenants/acme/a.txt")

    assert env["client"].get("/v1/documents", headers=GLOBEX).json()["data"] == []
    assert env["client"].get(f"/v1/documents/{document_id}", headers=GLOBEX).status_code == 404
    assert env["client"].delete(f"/v1/documents/{document_id}", headers=GLOBEX).status_code == 404
    # An upload for the same path is globex's own key, never acme's.
    granted = env["client"].post("/v1/documents", json={"path": "a.txt"}, headers=GLOBEX).json()
    assert granted["source_key"] == "tenants/globex/a.txt"
    assert granted["document_id"] != document_id
    assert objects(env) == ["tenants/acme/a.txt"]
    assert env["registry"].get("acme", document_id).status == "indexed"


def test_unknown_documents_are_404(env: dict[str, Any]) -> None:
    response = env["client"].delete("/v1/documents/doc_000000000000000000000000", headers=ACME)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_a_chat_only_key_can_list_but_not_upload_or_delete(env: dict[str, Any]) -> None:
    document_id = stored(env, "tenants/acme/a.txt")

    assert env["client"].get("/v1/documents", headers=ACME_CHAT_ONLY).status_code == 200
    for response in (
        env["client"].post("/v1/documents", json={"path": "b.txt"}, headers=ACME_CHAT_ONLY),
        env["client"].delete(f"/v1/documents/{document_id}", headers=ACME_CHAT_ONLY),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert "documents:write" in response.json()["error"]["message"]
    assert objects(env) == ["tenants/acme/a.txt"]


def test_without_a_principal_every_documents_route_is_401(env: dict[str, Any]) -> None:
    for method, path in (("GET", "/v1/documents"), ("POST", "/v1/documents"), ("DELETE", "/v1/documents/doc_x")):
        response = env["client"].request(method, path, json={"path": "a.txt"} if method == "POST" else None)
        assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_api_key")


def test_the_openapi_document_declares_each_routes_errors() -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("get", "/v1/documents"): {"401"},
        ("post", "/v1/documents"): {"400", "401", "403"},
        ("get", "/v1/documents/{document_id}"): {"401", "404"},
        ("delete", "/v1/documents/{document_id}"): {"401", "403", "404"},
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert statuses <= set(responses), (method, path)
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert paths["/v1/documents"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DocumentUpload"
    )
