"""The authorizer function as Lambda calls it: a REQUEST event and a context, settings from the
environment, the tables in moto, a JWKS on 127.0.0.1 — and nothing secret in its logs."""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.authorizer import app
from strata.auth import ApiKeyStore, AuthConfigurationError, Principal, TenantStore, parse_api_key
from strata.config import Scope, get_settings
from strata.throttle.types import Limits
from strata_local.lambda_context import LocalLambdaContext
from tests.unit.auth.support import AUDIENCE, SigningKey, create_auth_tables, jwks_server

PEPPER = "authorizer-test-pepper-" + secrets.token_urlsafe(16)
ACCOUNT, API_ID, STAGE = "123456789012", "a1b2c3d4e5", "prod"


@dataclass
class Deployment:
    keys: ApiKeyStore
    tenants: TenantStore
    issuer: str
    signer: SigningKey


def _reset_caches() -> None:
    get_settings.cache_clear()
    app._authenticator.cache_clear()


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey()


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, signer: SigningKey) -> Iterator[Deployment]:
    with mock_aws(), jwks_server(signer) as issuer:
        create_auth_tables(boto3.client("dynamodb", region_name="us-east-1"))
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        for name in ("STRATA_KEY_PEPPER_SECRET", "STRATA_KEY_PEPPER_FILE", "STRATA_JWT_JWKS_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("STRATA_KEY_PEPPER", PEPPER)
        monkeypatch.setenv("STRATA_JWT_ISSUER", issuer)
        monkeypatch.setenv("STRATA_JWT_AUDIENCE", AUDIENCE)
        _reset_caches()
        yield Deployment(
            keys=ApiKeyStore(dynamodb.Table("strata-keys"), PEPPER),
            tenants=TenantStore(dynamodb.Table("strata-tenants")),
            issuer=issuer,
            signer=signer,
        )
    _reset_caches()


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """Everything the function and the library log, at every level, as text."""
    # In Lambda the function logs through Powertools, whose handler was bound to the stdout of
    # import time: point it at the captured one. Locally it is a plain strata.* logger.
    handler = getattr(app.logger, "registered_handler", None)
    previous = handler.stream if handler is not None else None
    if handler is not None:
        handler.setStream(sys.stdout)
    caplog.set_level(logging.DEBUG, logger="strata")
    caplog.set_level(logging.DEBUG, logger=app.logger.name)

    def text() -> str:
        captured = capsys.readouterr()
        records = "\n".join(repr(record.__dict__) for record in caplog.records)
        return "\n".join((captured.out, captured.err, caplog.text, records))

    yield text
    if handler is not None:
        handler.stream = previous  # not setStream: it would flush the captured stream, closed by now


def request_event(headers: dict[str, str], method: str = "POST", path: str = "/v1/chat/completions") -> dict[str, Any]:
    """A REST API REQUEST-authorizer event, as API Gateway sends it."""
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "api.example.com", "User-Agent": "OpenAI/Python 1.40.0", **headers},
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "stage": STAGE,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "resourcePath": path,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.9"},
        },
    }


def call(headers: dict[str, str]) -> dict[str, Any]:
    return app.handler(request_event(headers), LocalLambdaContext("strata-authorizer"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_key_is_allowed_with_its_tenant_scopes_and_both_limits(deployment: Deployment, logs: Any) -> None:
    deployment.tenants.set_limits("acme", Limits(tokens_per_day=100_000))
    issued = deployment.keys.create(
        "acme", scopes={Scope.CHAT, Scope.ADMIN}, limits=Limits(requests_per_minute=10, tokens_per_minute=2000)
    )

    policy = call(bearer(issued.secret))

    [statement] = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == [f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/*/*"]
    assert policy["principalId"] == issued.key_id
    context = policy["context"]
    assert all(isinstance(value, str) for value in context.values()), "API Gateway takes string values only"
    assert Principal.from_context(context) == Principal(
        tenant="acme",
        key_id=issued.key_id,
        scopes=frozenset({Scope.CHAT, Scope.ADMIN}),
        key_limits=Limits(requests_per_minute=10, tokens_per_minute=2000),
        tenant_limits=Limits(tokens_per_day=100_000),
    )
    assert issued.secret not in json.dumps(policy)
    text = logs()
    assert PEPPER not in text and issued.secret not in text


def _revoked(deployment: Deployment) -> str:
    issued = deployment.keys.create("acme")
    deployment.keys.revoke("acme", issued.key_id)
    return issued.secret


def _expired(deployment: Deployment) -> str:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    # Made by a store whose clock says it is an hour ago, so its 30 minutes are already over.
    back_then = ApiKeyStore(deployment.keys._table, PEPPER, clock=lambda: an_hour_ago)
    return back_then.create("acme", expires_at=an_hour_ago + timedelta(minutes=30)).secret


def _wrong_secret(deployment: Deployment) -> str:
    issued = deployment.keys.create("acme")
    return f"sk-strata-{issued.key_id}-{secrets.token_urlsafe(32)}"


def _other_pepper(deployment: Deployment) -> str:
    return ApiKeyStore(deployment.keys._table, "another-deployments-pepper").create("acme").secret


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (_revoked, "revoked"),
        (_expired, "expired"),
        (_wrong_secret, "wrong secret"),
        (_other_pepper, "wrong secret"),
        (lambda _: "sk-strata-" + secrets.token_urlsafe(32), "malformed"),
        (lambda _: "not-a-key", "malformed"),
    ],
    ids=["revoked", "expired", "wrong-secret", "other-pepper", "old-format", "junk"],
)
def test_a_refused_key_is_unauthorized_and_only_the_reason_is_logged(
    deployment: Deployment, logs: Any, make_token: Any, reason: str
) -> None:
    token = make_token(deployment)

    with pytest.raises(Exception, match="^Unauthorized$"):
        call(bearer(token))

    text = logs()
    assert reason in text
    assert token not in text and PEPPER not in text
    key_id = parse_api_key(token)
    if key_id is not None:
        assert token.removeprefix(f"sk-strata-{key_id}-") not in text, "not even the secret part"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
def test_a_request_without_a_bearer_credential_is_unauthorized(deployment: Deployment, headers: dict[str, str]) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        call(headers)


def test_a_valid_jwt_is_allowed_as_its_subject_in_its_tenant(deployment: Deployment, logs: Any) -> None:
    deployment.tenants.set_limits("acme", Limits(requests_per_minute=100))
    token = deployment.signer.token(deployment.issuer, scope="admin")

    policy = call(bearer(token))

    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    principal = Principal.from_context(policy["context"])
    assert (principal.tenant, principal.key_id) == ("acme", "jwt:user-1")
    assert principal.scopes == {Scope.CHAT, Scope.ADMIN}
    assert principal.tenant_limits == Limits(requests_per_minute=100)
    assert token not in logs()


@pytest.mark.parametrize(
    ("claims", "reason"),
    [({"exp": 1_600_000_000}, "expired"), ({"aud": "someone-elses-app"}, "audience")],
    ids=["expired", "wrong-audience"],
)
def test_a_refused_jwt_is_unauthorized(deployment: Deployment, logs: Any, claims: dict[str, Any], reason: str) -> None:
    token = deployment.signer.token(deployment.issuer, **claims)

    with pytest.raises(Exception, match="^Unauthorized$"):
        call(bearer(token))

    text = logs()
    assert reason in text and token not in text


def test_api_keys_still_work_beside_jwts_and_a_jwt_is_refused_when_jwt_is_off(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = deployment.keys.create("acme")
    token = deployment.signer.token(deployment.issuer)
    assert call(bearer(issued.secret))["context"]["tenant"] == "acme"

    monkeypatch.delenv("STRATA_JWT_ISSUER")
    _reset_caches()

    with pytest.raises(Exception, match="^Unauthorized$"):
        call(bearer(token))
    assert call(bearer(issued.secret))["context"]["tenant"] == "acme"


def test_a_deployment_without_a_pepper_fails_instead_of_answering_unauthorized(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = deployment.keys.create("acme")
    monkeypatch.delenv("STRATA_KEY_PEPPER")
    _reset_caches()

    # API Gateway answers a failed authorizer with 500: the operator sees it, callers are not told
    # their valid key is wrong.
    with pytest.raises(AuthConfigurationError, match="STRATA_KEY_PEPPER_SECRET"):
        call(bearer(issued.secret))


def test_the_pepper_comes_from_secrets_manager_once_per_container(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    issued = deployment.keys.create("acme")
    secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
    secretsmanager.create_secret(Name="strata/pepper", SecretString=PEPPER)
    monkeypatch.delenv("STRATA_KEY_PEPPER")
    monkeypatch.setenv("STRATA_KEY_PEPPER_SECRET", "strata/pepper")
    _reset_caches()

    assert call(bearer(issued.secret))["context"]["tenant"] == "acme"
    secretsmanager.delete_secret(SecretId="strata/pepper", ForceDeleteWithoutRecovery=True)
    assert call(bearer(issued.secret))["context"]["tenant"] == "acme", "read at cold start, not per request"
    assert PEPPER not in logs()


@pytest.mark.anyio
async def test_a_revoked_key_is_refused_once_the_authorizer_cache_ttl_has_passed(deployment: Deployment) -> None:
    """Revocation takes effect within the authorizer cache TTL (60 s): the gateway keeps a policy
    per Authorization header that long, as API Gateway does, then asks the authorizer again."""
    import httpx
    from starlette.responses import PlainTextResponse

    from strata.config import RESOURCES
    from strata_local.gateway import LocalGateway, Route

    issued = deployment.keys.create("acme")
    now = [0.0]
    gateway = LocalGateway(
        routes=[Route("/v1/models", PlainTextResponse("ok"))], authorizer=app.handler, clock=lambda: now[0]
    )
    headers = {"Authorization": f"Bearer {issued.secret}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
        assert (await client.get("/v1/models", headers=headers)).status_code == 200
        deployment.keys.revoke("acme", issued.key_id)
        now[0] = RESOURCES.api.authorizer_cache_ttl_s - 1
        assert (await client.get("/v1/models", headers=headers)).status_code == 200  # the cached policy
        now[0] = RESOURCES.api.authorizer_cache_ttl_s + 1
        assert (await client.get("/v1/models", headers=headers)).status_code == 401
