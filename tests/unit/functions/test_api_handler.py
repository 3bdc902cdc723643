"""The api function as Lambda runs it: an API Gateway proxy event through Mangum, with the
authorizer's context in ``requestContext`` (AWS faked by moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.documents import DocumentRegistry, parse_source_key
from strata_local.aws import create_tables
from strata_local.lambda_context import LocalLambdaContext


@pytest.fixture
def handler() -> Iterator[Any]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))
        for key in ("tenants/acme/a.txt", "tenants/globex/b.txt"):
            registry.mark_indexing(parse_source_key(key), sequencer=None, size_bytes=1)
        from functions.api.app import handler

        yield handler


def proxy_event(path: str, tenant: str | None) -> dict[str, Any]:
    authorizer = {"tenant": tenant, "key_id": "abc", "scopes": "chat", "principalId": "abc"} if tenant else {}
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "api.example.com"},
        "multiValueHeaders": {"Host": ["api.example.com"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": "GET",
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "r-1",
            "identity": {"sourceIp": "203.0.113.9"},
            "authorizer": authorizer,
        },
    }


def test_documents_are_listed_for_the_authorizers_tenant_only(handler: Any) -> None:
    response = handler(proxy_event("/v1/documents", "acme"), LocalLambdaContext("strata-api"))

    assert response["statusCode"] == 200
    assert [d["source_key"] for d in json.loads(response["body"])["data"]] == ["tenants/acme/a.txt"]


def test_without_an_authorizer_context_the_answer_is_401(handler: Any) -> None:
    response = handler(proxy_event("/v1/documents", None), LocalLambdaContext("strata-api"))

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "invalid_api_key"


def test_health_needs_no_tenant(handler: Any) -> None:
    response = handler(proxy_event("/healthz", None), LocalLambdaContext("strata-api"))
    body = json.loads(response["body"])
    assert (response["statusCode"], body["status"]) == (200, "ok")
    assert body["models"]["default"] == {
        "provider": "sagemaker",
        "breaker": "closed",
        "failures": 0,
        "last_error": None,
    }


def test_health_reports_a_dead_model_instead_of_ok(handler: Any) -> None:
    from strata.inference import BreakerRecord, BreakerState, DynamoDBBreakerStore
    from strata.web.dependencies import _breakers

    table = boto3.resource("dynamodb", region_name="us-east-1").Table("strata-breakers")
    error = "chat endpoint 'strata-chat' is unreachable"
    record = BreakerRecord(BreakerState.OPEN, 5, opened_at=9e9, last_error=error, version=1)
    assert DynamoDBBreakerStore(table).put("default", record, expected_version=0)
    _breakers.cache_clear()

    response = handler(proxy_event("/healthz", None), LocalLambdaContext("strata-api"))
    body = json.loads(response["body"])
    assert (response["statusCode"], body["status"]) == (503, "unavailable")
    assert body["models"]["default"]["breaker"] == "open"
    assert "unreachable" in body["models"]["default"]["last_error"]
