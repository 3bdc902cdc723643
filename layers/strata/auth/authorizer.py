"""The API Gateway REQUEST authorizer: bearer credential → principal, as an IAM policy with context.

The local gateway calls the same function with the same event shape, so both paths admit
exactly the same requests.

API Gateway caches the returned policy per ``Authorization`` header for
``RESOURCES.api.authorizer_cache_ttl_s`` (60 s), and so does the local gateway. Everything the
authorizer decided therefore holds for up to that long: a revoked or expired key, a change of
scopes, key limits or tenant limits takes effect within 60 s, not at once.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from strata.auth.exceptions import MissingCredentialsError
from strata.auth.jwt import JwtVerifier, build_jwt_verifier, looks_like_jwt
from strata.auth.keys import ApiKeyStore, build_key_store
from strata.auth.tenants import TenantStore, build_tenant_store

if TYPE_CHECKING:
    from strata.auth.types import Principal
    from strata.config import Settings


def bearer_token(headers: dict[str, str]) -> str:
    """The credential from ``Authorization: Bearer <key or JWT>`` (the OpenAI SDK's header).

    Only that header: it is the authorizer's identity source, the key API Gateway caches the
    policy under, so reading the key from anywhere else could hand one caller's cached tenant
    to another.
    """
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    scheme, _, token = lowered.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    raise MissingCredentialsError("missing credentials: send 'Authorization: Bearer <key>'")


class Authenticator:
    """A bearer credential → the caller, with the key's and the tenant's limits.

    A token shaped like a JWT goes to the verifier when JWT sign-in is configured; anything
    else (and every token when it is not) must be an API key. Two reads per cache miss: the key
    (its item names the tenant), then the tenant's limits — once per key per 60 s.
    """

    def __init__(self, *, keys: ApiKeyStore, tenants: TenantStore, jwt: JwtVerifier | None = None) -> None:
        self._keys = keys
        self._tenants = tenants
        self._jwt = jwt

    def authenticate(self, token: str) -> Principal:
        if self._jwt is not None and looks_like_jwt(token):
            principal = self._jwt.verify(token)
        else:
            principal = self._keys.resolve(token)
        tenant = self._tenants.get(principal.tenant)
        return dataclasses.replace(principal, tenant_limits=tenant.limits, redact_pii=tenant.redact_pii)


def build_authenticator(settings: Settings) -> Authenticator:
    return Authenticator(
        keys=build_key_store(settings),
        tenants=build_tenant_store(settings),
        jwt=build_jwt_verifier(settings),
    )


def authorize(event: dict[str, Any], authenticator: Authenticator) -> dict[str, Any]:
    """Resolve the caller and allow every route of this API for it, with the principal as context.

    Raises the auth errors for a missing or refused credential; the Lambda handler turns them
    into API Gateway's 401 (``raise Exception("Unauthorized")``). Scopes are checked per route
    by the functions, from the context, since the policy is cached for every route at once.
    """
    request = APIGatewayAuthorizerRequestEvent(event)
    principal = authenticator.authenticate(bearer_token(dict(request.headers or {})))
    arn = request.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=principal.key_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context=principal.context(),
    )
    policy.allow_all_routes()
    return policy.asdict()
