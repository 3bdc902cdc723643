"""API Gateway REQUEST authorizer: the API key in ``Authorization: Bearer`` → the caller's tenant."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from strata.auth import ApiKeyStore, AuthError, authorize, build_key_store
from strata.config import get_settings
from strata.observability import function_logger

logger = function_logger("strata-authorizer")


@lru_cache
def _keys() -> ApiKeyStore:
    return build_key_store(get_settings())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return authorize(event, _keys())
    except AuthError as error:
        logger.info("request denied", extra={"reason": str(error)})
        # This exact message makes API Gateway answer 401 (its UNAUTHORIZED gateway response).
        raise Exception("Unauthorized") from error
