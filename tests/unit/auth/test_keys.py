"""API keys against moto's DynamoDB: format, keyed hashes, refusals, tenant isolation."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.auth import (
    ApiKeyStore,
    Authenticator,
    InvalidCredentialsError,
    InvalidTenantError,
    KeyConflictError,
    KeyNotFoundError,
    MissingCredentialsError,
    TenantStore,
    authorize,
    generate_secret,
    parse_api_key,
)
from strata.config import Scope
from strata.throttle.types import Limits
from tests.unit.auth.support import create_auth_tables

PEPPER = "pepper-" + "x" * 32
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/chat/completions"


@pytest.fixture
def tables() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        create_auth_tables(boto3.client("dynamodb", region_name="us-east-1"))
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.Table("strata-keys"), dynamodb.Table("strata-tenants")


@pytest.fixture
def table(tables: tuple[Any, Any]) -> Any:
    return tables[0]


@pytest.fixture
def store(table: Any) -> ApiKeyStore:
    return ApiKeyStore(table, PEPPER)


@pytest.fixture
def calls(table: Any) -> list[str]:
    """Every DynamoDB operation the keys table's client sends from here on."""
    sent: list[str] = []
    table.meta.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: sent.append(model.name))
    return sent


def authorizer_event(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "httpMethod": "POST",
        "path": "/v1/chat/completions",
        "resource": "/v1/chat/completions",
    }


# --- the key's format ---


def test_a_new_key_names_its_id_and_its_secret_part_cannot_be_mistaken_for_it() -> None:
    for _ in range(200):
        key = generate_secret()
        key_id = parse_api_key(key)
        assert key_id is not None and len(key_id) == 12 and key_id.isalnum() and key_id == key_id.lower()
        assert key.startswith(f"sk-strata-{key_id}-")
        assert len(key.removeprefix(f"sk-strata-{key_id}-")) >= 43


@pytest.mark.parametrize(
    "value",
    [
        "sk-strata-" + secrets.token_urlsafe(32),  # the old format
        "sk-strata-ABCDEFGHIJKL-" + "a" * 43,  # upper-case id
        "sk-strata-abcdefghijk-" + "a" * 43,  # id too short
        "sk-strata-abcdefghijkl-short",
        "sk-strata-abcdefghijkl-" + "a" * 43 + "!",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "",
        "Bearer sk-strata-abcdefghijkl-" + "a" * 43,
    ],
)
def test_anything_but_a_well_formed_key_does_not_parse(value: str) -> None:
    assert parse_api_key(value) is None


# --- storing and resolving ---


def test_the_table_keeps_only_a_keyed_hash_of_the_whole_key(store: ApiKeyStore, table: Any) -> None:
    issued = store.create("acme", name="ci", limits=Limits(requests_per_minute=5, tokens_per_minute=500))

    [item] = table.scan()["Items"]
    assert item["key_id"] == issued.key_id
    assert item["secret_hash"] == hmac.new(PEPPER.encode(), issued.secret.encode(), hashlib.sha256).hexdigest()
    secret_part = issued.secret.rsplit(f"{issued.key_id}-", 1)[1]
    assert secret_part not in json.dumps(item, default=str)
    principal = store.resolve(issued.secret)
    assert (principal.tenant, principal.key_id, principal.scopes) == ("acme", issued.key_id, {Scope.CHAT})
    assert principal.key_limits == Limits(requests_per_minute=5, tokens_per_minute=500)
    # The same key under another pepper is another hash: a stolen table is useless without it.
    with pytest.raises(InvalidCredentialsError, match="wrong secret"):
        ApiKeyStore(table, "another-pepper").resolve(issued.secret)


def test_a_wrong_secret_for_a_real_key_id_is_refused(store: ApiKeyStore) -> None:
    issued = store.create("acme")
    forged = f"sk-strata-{issued.key_id}-{secrets.token_urlsafe(32)}"

    with pytest.raises(InvalidCredentialsError, match=f"wrong secret for key id {issued.key_id}"):
        store.resolve(forged)


def test_an_unknown_key_id_is_refused(store: ApiKeyStore) -> None:
    store.create("acme")
    with pytest.raises(InvalidCredentialsError, match="unknown key id"):
        store.resolve(generate_secret())


@pytest.mark.parametrize("value", ["sk-strata-" + secrets.token_urlsafe(32), "junk", "x" * 5000])
def test_a_malformed_key_is_refused_without_reading_the_table(store: ApiKeyStore, calls: list[str], value: str) -> None:
    with pytest.raises(InvalidCredentialsError, match="malformed") as refused:
        store.resolve(value)

    assert calls == []
    assert value not in str(refused.value)


def test_a_revoked_key_is_refused_and_the_reason_says_so(store: ApiKeyStore) -> None:
    issued = store.create("acme")
    store.revoke("acme", issued.key_id)

    with pytest.raises(InvalidCredentialsError, match="revoked") as refused:
        store.resolve(issued.secret)
    assert issued.secret not in str(refused.value)


def test_a_key_works_until_it_expires(table: Any) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    clock = {"now": now}
    store = ApiKeyStore(table, PEPPER, clock=lambda: clock["now"])
    issued = store.create("acme", expires_at=now + timedelta(hours=1))

    assert store.resolve(issued.secret).tenant == "acme"
    clock["now"] = now + timedelta(hours=1)
    with pytest.raises(InvalidCredentialsError, match="expired"):
        store.resolve(issued.secret)


@pytest.mark.parametrize(
    "expires_at", [datetime(2099, 1, 1), datetime.now(UTC) - timedelta(seconds=1)], ids=["naive", "past"]
)
def test_a_key_cannot_be_created_already_expired_or_with_an_ambiguous_expiry(
    store: ApiKeyStore, table: Any, expires_at: datetime
) -> None:
    with pytest.raises(ValueError, match="expires_at"):
        store.create("acme", expires_at=expires_at)
    assert table.scan()["Items"] == []


@pytest.mark.parametrize("tenant", ["", "Acme", "a b", "../x", "x" * 64])
def test_tenant_names_unfit_for_keys_and_filters_are_refused(store: ApiKeyStore, tenant: str) -> None:
    with pytest.raises(InvalidTenantError):
        store.create(tenant)


def test_an_unknown_scope_is_refused_by_name(store: ApiKeyStore) -> None:
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        store.create("acme", scopes=["root"])  # type: ignore[list-item]


# --- registering a known key (the local stack's dev key) ---


def test_registering_is_idempotent_grants_every_scope_and_restores_a_revoked_key(store: ApiKeyStore) -> None:
    key = generate_secret()
    first = store.register(key, "dev", name="local development key")
    store.revoke("dev", first.key_id)

    again = store.register(key, "dev", name="local development key")

    assert again.record.created_at == first.record.created_at
    assert again.record.revoked_at is None
    assert store.resolve(key).scopes == frozenset(Scope)
    assert [r.key_id for r in store.list("dev")] == [first.key_id]


def test_a_registered_key_id_cannot_be_taken_by_another_secret_or_tenant(store: ApiKeyStore) -> None:
    key = generate_secret()
    store.register(key, "dev")
    key_id = parse_api_key(key)

    with pytest.raises(KeyConflictError):
        store.register(key, "globex")
    with pytest.raises(KeyConflictError):
        store.register(f"sk-strata-{key_id}-{secrets.token_urlsafe(32)}", "dev")
    assert store.resolve(key).tenant == "dev"


def test_registering_an_old_format_key_says_what_a_key_looks_like(store: ApiKeyStore) -> None:
    with pytest.raises(ValueError, match="not a Strata API key"):
        store.register("sk-strata-" + secrets.token_urlsafe(32), "dev")


# --- managing a tenant's keys ---


def test_a_tenant_lists_only_its_own_keys_oldest_first_revoked_included(store: ApiKeyStore) -> None:
    first = store.create("acme", name="first")
    store.create("globex", name="theirs")
    second = store.create("acme", name="second")
    store.revoke("acme", first.key_id)

    listed = store.list("acme")

    assert [r.key_id for r in listed] == [first.key_id, second.key_id]
    assert listed[0].revoked_at is not None and listed[1].revoked_at is None
    assert store.list("initech") == []


def test_update_changes_only_what_is_given(store: ApiKeyStore) -> None:
    issued = store.create("acme", name="ci", scopes={Scope.CHAT}, limits=Limits(requests_per_minute=5))

    renamed = store.update("acme", issued.key_id, name="deploy")
    assert (renamed.name, renamed.scopes, renamed.limits) == ("deploy", {Scope.CHAT}, Limits(requests_per_minute=5))

    changed = store.update(
        "acme", issued.key_id, scopes={Scope.CHAT, Scope.DOCUMENTS_WRITE}, limits=Limits(tokens_per_minute=9)
    )
    assert changed.name == "deploy"
    assert changed.scopes == {Scope.CHAT, Scope.DOCUMENTS_WRITE}
    assert changed.limits == Limits(tokens_per_minute=9)
    principal = store.resolve(issued.secret)
    assert principal.scopes == {Scope.CHAT, Scope.DOCUMENTS_WRITE}
    assert principal.key_limits == Limits(tokens_per_minute=9)


def test_revoking_twice_keeps_the_first_revocation_time(table: Any) -> None:
    clock = {"now": datetime(2030, 1, 1, tzinfo=UTC)}
    store = ApiKeyStore(table, PEPPER, clock=lambda: clock["now"])
    issued = store.create("acme")

    first = store.revoke("acme", issued.key_id)
    clock["now"] += timedelta(days=1)
    second = store.revoke("acme", issued.key_id)

    assert first.revoked_at == second.revoked_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_another_tenants_key_is_not_found_for_reading_changing_or_revoking(store: ApiKeyStore) -> None:
    theirs = store.create("acme", name="acme's")

    with pytest.raises(KeyNotFoundError):
        store.get("globex", theirs.key_id)
    with pytest.raises(KeyNotFoundError):
        store.update("globex", theirs.key_id, name="mine now", scopes={Scope.ADMIN})
    with pytest.raises(KeyNotFoundError):
        store.revoke("globex", theirs.key_id)

    record = store.get("acme", theirs.key_id)
    assert (record.name, record.scopes, record.revoked_at) == ("acme's", {Scope.CHAT}, None)
    assert store.resolve(theirs.secret).tenant == "acme"


@pytest.mark.parametrize("key_id", ["nope", "ABCDEFGHIJKL", "../../etc", "a" * 500])
def test_a_malformed_key_id_is_not_found_without_reading_the_table(
    store: ApiKeyStore, calls: list[str], key_id: str
) -> None:
    for operation in (
        lambda: store.get("acme", key_id),
        lambda: store.update("acme", key_id, name="x"),
        lambda: store.revoke("acme", key_id),
    ):
        with pytest.raises(KeyNotFoundError):
            operation()
    assert calls == []


def test_an_unknown_key_id_is_not_found(store: ApiKeyStore) -> None:
    with pytest.raises(KeyNotFoundError):
        store.revoke("acme", "abcdefghijkl")


# --- the authorizer ---


def test_the_authorizer_allows_the_api_with_the_principal_and_both_limits(tables: tuple[Any, Any]) -> None:
    keys_table, tenants_table = tables
    store = ApiKeyStore(keys_table, PEPPER)
    tenants = TenantStore(tenants_table)
    tenants.set_limits("acme", Limits(tokens_per_day=1000))
    issued = store.create("acme", scopes={Scope.CHAT, Scope.ADMIN}, limits=Limits(requests_per_minute=5))

    policy = authorize(
        authorizer_event({"Authorization": f"Bearer {issued.secret}"}), Authenticator(keys=store, tenants=tenants)
    )

    assert policy["principalId"] == issued.key_id
    context = policy["context"]
    assert (context["tenant"], context["key_id"], context["scopes"]) == ("acme", issued.key_id, "admin,chat")
    assert json.loads(context["limits"]) == {"key": {"requests_per_minute": 5}, "tenant": {"tokens_per_day": 1000}}
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"]
    assert issued.secret not in json.dumps(policy)


def test_the_authorizer_accepts_any_header_and_scheme_case(tables: tuple[Any, Any]) -> None:
    store = ApiKeyStore(tables[0], PEPPER)
    issued = store.create("acme")
    authenticator = Authenticator(keys=store, tenants=TenantStore(tables[1]))

    policy = authorize(authorizer_event({"authorization": f"bearer {issued.secret}"}), authenticator)

    assert policy["context"]["tenant"] == "acme"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"x-api-key": "sk-strata-x"}]
)
def test_the_authorizer_refuses_requests_without_a_bearer_credential(
    tables: tuple[Any, Any], headers: dict[str, str]
) -> None:
    authenticator = Authenticator(keys=ApiKeyStore(tables[0], PEPPER), tenants=TenantStore(tables[1]))
    with pytest.raises(MissingCredentialsError):
        authorize(authorizer_event(headers), authenticator)


def test_without_jwt_configured_a_jwt_is_just_a_malformed_key(tables: tuple[Any, Any]) -> None:
    authenticator = Authenticator(keys=ApiKeyStore(tables[0], PEPPER), tenants=TenantStore(tables[1]))
    with pytest.raises(InvalidCredentialsError, match="malformed API key"):
        authenticator.authenticate("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
