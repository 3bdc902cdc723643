"""Authentication: API keys (stored as keyed hashes) resolved to tenants."""

from strata.auth.authorizer import authorize, bearer_token
from strata.auth.exceptions import (
    AuthError,
    InvalidCredentialsError,
    InvalidTenantError,
    MissingCredentialsError,
    PermissionDeniedError,
)
from strata.auth.keys import ApiKeyStore, build_key_store, generate_secret, hash_secret
from strata.auth.types import IssuedKey, KeyRecord, Principal, validate_tenant

__all__ = (
    "ApiKeyStore",
    "AuthError",
    "InvalidCredentialsError",
    "InvalidTenantError",
    "IssuedKey",
    "KeyRecord",
    "MissingCredentialsError",
    "PermissionDeniedError",
    "Principal",
    "authorize",
    "bearer_token",
    "build_key_store",
    "generate_secret",
    "hash_secret",
    "validate_tenant",
)
