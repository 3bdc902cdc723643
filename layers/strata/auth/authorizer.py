"""The API Gateway REQUEST authorizer: API key → tenant, as an IAM policy with context.

The local gateway calls the same function with the same event shape, so both paths admit
exactly the same requests.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from strata.auth.exceptions import MissingCredentialsError
from strata.auth.keys import ApiKeyStore


def bearer_token(headers: dict[str, str]) -> str:
    """The API key from ``Authorization: Bearer <key>`` (the OpenAI SDK's header).

    Only that header: it is the authorizer's identity source, the key API Gateway caches the
    policy under, so reading the key from anywhere else could hand one caller's cached tenant
    to another.
    """
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    scheme, _, token = lowered.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    raise MissingCredentialsError("missing API key: send 'Authorization: Bearer <key>'")


def authorize(event: dict[str, Any], keys: ApiKeyStore) -> dict[str, Any]:
    """Resolve the caller and allow every route of this API for it.

    Raises the auth errors for a missing or unknown key; the Lambda handler turns them into
    API Gateway's 401 (``raise Exception("Unauthorized")``).
    """
    request = APIGatewayAuthorizerRequestEvent(event)
    principal = keys.resolve(bearer_token(dict(request.headers)))
    arn = request.parsed_arn
    # The policy is cached per key by API Gateway, so it allows the whole API, not one method.
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

