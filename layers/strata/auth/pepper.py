"""The pepper: the HMAC key every stored API-key hash is made with.

Read once per process (the builders that call this are cached), from the first source that is
set: ``key_pepper`` itself (tests), a Secrets Manager secret (AWS), a file (the local stack).
Its value is never logged, and never put in an error message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from strata import aws
from strata.auth.exceptions import AuthConfigurationError
from strata.config.settings import ENV_PREFIX

if TYPE_CHECKING:
    from strata.config import Settings

logger = logging.getLogger(__name__)

_SOURCES = ", ".join(f"{ENV_PREFIX}{name.upper()}" for name in ("key_pepper", "key_pepper_secret", "key_pepper_file"))


def load_pepper(settings: Settings) -> str:
    """The configured pepper; raises ``AuthConfigurationError`` when none is set or it is empty."""
    if settings.key_pepper is not None:
        return _non_empty(settings.key_pepper.get_secret_value(), f"{ENV_PREFIX}KEY_PEPPER")
    if settings.key_pepper_secret:
        return _non_empty(_from_secrets_manager(settings), f"secret {settings.key_pepper_secret!r}")
    if settings.key_pepper_file is not None:
        return _non_empty(_from_file(settings), f"file {str(settings.key_pepper_file)!r}")
    raise AuthConfigurationError(f"no API-key pepper configured: set one of {_SOURCES}")


def _from_secrets_manager(settings: Settings) -> str:
    # The project's client factory, so a local endpoint (moto) is honoured like every other client.
    provider = SecretsProvider(boto3_client=aws.client("secretsmanager", settings))
    try:
        value = provider.get(settings.key_pepper_secret)
    except Exception as error:
        # Powertools wraps the SDK error; its text names the secret and the cause, not the value.
        raise AuthConfigurationError(
            f"cannot read the API-key pepper from secret {settings.key_pepper_secret!r}: {error}"
        ) from error
    logger.info("API-key pepper read from Secrets Manager")
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _from_file(settings: Settings) -> str:
    path = settings.key_pepper_file
    try:
        value = path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    except OSError as error:
        raise AuthConfigurationError(f"cannot read the API-key pepper file {str(path)!r}: {error.strerror}") from error
    # An editor's trailing newline must not become part of the HMAC key.
    return value.strip()


def _non_empty(value: str, source: str) -> str:
    if not value:
        raise AuthConfigurationError(f"the API-key pepper from {source} is empty")
    return value
