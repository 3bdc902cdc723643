"""API Gateway REQUEST authorizer: the API key in ``Authorization: Bearer`` → the caller's tenant."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from strata import aws
from strata.auth import ApiKeyStore, AuthError, authorize
from strata.config import get_settings

logger = Logger(service="strata-authorizer")


@lru_cache
def _keys() -> ApiKeyStore:
    settings = get_settings()
    return ApiKeyStore(
        aws.resource("dynamodb", settings).Table(settings.keys_table), settings.key_pepper.get_secret_value()
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return authorize(event, _keys())
    except AuthError as error:
        logger.info("request denied", extra={"reason": str(error)})
        # This exact message makes API Gateway answer 401 (its UNAUTHORIZED gateway response).
        raise Exception("Unauthorized") from error
