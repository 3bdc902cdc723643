"""API Gateway REQUEST authorizer: ``Authorization: Bearer <API key or JWT>`` → the caller.

Returns an allow-all policy with the principal as context (tenant, key id, scopes, limits);
API Gateway caches it per header for 60 s, so a revoked or expired key is refused within 60 s.
A refused credential is ``Unauthorized`` (401); a broken deployment (no pepper, JWKS down, table
unreachable) fails the invocation, which API Gateway answers 500 — never a misleading 401.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from strata.auth import Authenticator, AuthError, authorize, build_authenticator
from strata.config import get_settings
from strata.observability import function_logger

logger = function_logger("strata-authorizer")


@lru_cache
def _authenticator() -> Authenticator:
    # Once per container: the pepper is read from Secrets Manager at cold start, not per request.
    return build_authenticator(get_settings())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return authorize(event, _authenticator())
    except AuthError as error:
        # The reason names the check that failed and at most the key id, never the credential.
        # Never log the event: it carries the caller's credential.
        logger.info("request denied: %s", error, extra={"method_arn": event.get("methodArn")})
        # This exact message makes API Gateway answer 401 (its UNAUTHORIZED gateway response).
        raise Exception("Unauthorized") from None
