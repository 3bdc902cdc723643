"""API keys, stored only as keyed hashes (HMAC-SHA256 with a server-side pepper)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from strata import aws
from strata.auth.exceptions import InvalidCredentialsError
from strata.auth.types import IssuedKey, KeyRecord, Principal, validate_tenant
from strata.throttle.types import Limits
from strata.config import Scope, Settings
from strata.config.settings import ENV_PREFIX

KEY_PREFIX = "sk-strata-"


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def key_id_of(secret: str) -> str:
    """A short, non-secret handle for logs and listings (the prefix plus a few characters)."""
    return secret[: len(KEY_PREFIX) + 6]


def build_key_store(settings: Settings) -> ApiKeyStore:
    """The keys table with the configured pepper; refuses to run without one."""
    if settings.key_pepper is None or not settings.key_pepper.get_secret_value():
        raise RuntimeError(f"{ENV_PREFIX}KEY_PEPPER is not set: API keys cannot be hashed without it")
    table = aws.resource("dynamodb", settings).Table(settings.keys_table)
    return ApiKeyStore(table, settings.key_pepper.get_secret_value())


class ApiKeyStore:
    """The keys table: ``key_hash`` → tenant. Takes a boto3 DynamoDB Table."""

    def __init__(self, table: Any, pepper: str) -> None:
        self._table = table
        self._pepper = pepper

    def create(self, tenant: str, *, name: str = "") -> IssuedKey:
        return self.register(generate_secret(), tenant, name=name)

    def register(self, secret: str, tenant: str, *, name: str = "") -> IssuedKey:
        """Store the hash of a given secret (idempotent: the local stack re-registers its dev key)."""
        validate_tenant(tenant)
        key_id = key_id_of(secret)
        self._table.put_item(
            Item={
                "key_hash": hash_secret(secret, self._pepper),
                "tenant": tenant,
                "key_id": key_id,
                "name": name,
                "created_at": datetime.now(UTC).isoformat(),
            }
        )
        record = KeyRecord(key_id, tenant, name, frozenset(Scope), Limits(), datetime.now(UTC))
        return IssuedKey(secret=secret, record=record)

    def resolve(self, secret: str) -> Principal:
        item = self._table.get_item(Key={"key_hash": hash_secret(secret, self._pepper)}).get("Item")
        if not item or item.get("revoked"):
            raise InvalidCredentialsError("invalid API key")
        return Principal(tenant=item["tenant"], key_id=item["key_id"])
