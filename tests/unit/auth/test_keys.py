from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.auth import ApiKeyStore, InvalidCredentialsError, InvalidTenantError, MissingCredentialsError, authorize
from strata_local.aws import create_tables

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/chat/completions"


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield boto3.resource("dynamodb", region_name="us-east-1").Table("strata-keys")


def authorizer_event(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "httpMethod": "POST",
        "path": "/v1/chat/completions",
        "resource": "/v1/chat/completions",
    }


def test_key_store_keeps_only_a_keyed_hash_of_the_secret(table: Any) -> None:
    store = ApiKeyStore(table, pepper="pepper-1")
    issued = store.create("acme", name="ci")

    items = table.scan()["Items"]
    assert len(items) == 1
    assert issued.secret not in str(items)
    assert store.resolve(issued.secret).tenant == "acme"
    # The same secret under another pepper is another hash: a stolen table is useless without it.
    with pytest.raises(InvalidCredentialsError):
        ApiKeyStore(table, pepper="pepper-2").resolve(issued.secret)


def test_key_store_rejects_unknown_and_revoked_keys(table: Any) -> None:
    store = ApiKeyStore(table, pepper="p")
    issued = store.create("acme")
    with pytest.raises(InvalidCredentialsError):
        store.resolve(issued.secret + "x")
    table.update_item(
        Key={"key_hash": table.scan()["Items"][0]["key_hash"]},
        UpdateExpression="SET revoked = :t",
        ExpressionAttributeValues={":t": True},
    )
    with pytest.raises(InvalidCredentialsError):
        store.resolve(issued.secret)


@pytest.mark.parametrize("tenant", ["", "Acme", "a b", "../x", "x" * 64])
def test_key_store_refuses_tenant_names_unfit_for_keys_and_filters(table: Any, tenant: str) -> None:
    with pytest.raises(InvalidTenantError):
        ApiKeyStore(table, pepper="p").create(tenant)


def test_authorizer_allows_the_api_for_a_valid_key_and_passes_the_tenant(table: Any) -> None:
    store = ApiKeyStore(table, pepper="p")
    issued = store.create("acme")

    policy = authorize(authorizer_event({"Authorization": f"Bearer {issued.secret}"}), store)

    assert policy["context"] == {"tenant": "acme", "key_id": issued.key_id}
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"]
    assert issued.secret not in str(policy)


def test_authorizer_accepts_any_header_case(table: Any) -> None:
    store = ApiKeyStore(table, pepper="p")
    issued = store.create("acme")
    assert authorize(authorizer_event({"authorization": f"bearer {issued.secret}"}), store)["context"]["tenant"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"x-api-key": "sk-strata-x"}]
)
def test_authorizer_refuses_requests_without_a_key(table: Any, headers: dict[str, str]) -> None:
    with pytest.raises(MissingCredentialsError):
        authorize(authorizer_event(headers), ApiKeyStore(table, pepper="p"))
