"""Authentication: API keys (stored as keyed hashes) resolved to tenants."""

from strata.auth.authorizer import authorize, bearer_token, principal_context, principal_from_context
from strata.auth.exceptions import (
    AuthError,
    InvalidCredentialsError,
    InvalidTenantError,
    MissingCredentialsError,
)
from strata.auth.keys import ApiKeyStore, build_key_store, generate_secret, hash_secret
from strata.auth.types import IssuedKey, Principal, validate_tenant

__all__ = (
    "ApiKeyStore",
    "AuthError",
    "InvalidCredentialsError",
    "InvalidTenantError",
    "IssuedKey",
    "MissingCredentialsError",
    "Principal",
    "authorize",
    "bearer_token",
    "build_key_store",
    "generate_secret",
    "hash_secret",
    "principal_context",
    "principal_from_context",
    "validate_tenant",
)
