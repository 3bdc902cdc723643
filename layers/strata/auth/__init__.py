"""Authentication: API keys (stored as keyed hashes) and optional JWTs, resolved to principals;
per-tenant limits."""

from strata.auth.authorizer import Authenticator, authorize, bearer_token, build_authenticator
from strata.auth.exceptions import (
    AuthConfigurationError,
    AuthError,
    InvalidCredentialsError,
    InvalidTenantError,
    JwksUnavailableError,
    KeyConflictError,
    KeyNotFoundError,
    MissingCredentialsError,
    PermissionDeniedError,
)
from strata.auth.jwt import JwtConfig, JwtVerifier, build_jwt_verifier, looks_like_jwt
from strata.auth.keys import (
    ApiKeyStore,
    build_key_store,
    generate_secret,
    hash_secret,
    is_key_shaped,
    parse_api_key,
    parse_scopes,
)
from strata.auth.pepper import load_pepper
from strata.auth.tenants import TenantStore, build_tenant_store
from strata.auth.types import IssuedKey, KeyRecord, Principal, validate_tenant

__all__ = (
    "ApiKeyStore",
    "AuthConfigurationError",
    "AuthError",
    "Authenticator",
    "InvalidCredentialsError",
    "InvalidTenantError",
    "IssuedKey",
    "JwksUnavailableError",
    "JwtConfig",
    "JwtVerifier",
    "KeyConflictError",
    "KeyNotFoundError",
    "KeyRecord",
    "MissingCredentialsError",
    "PermissionDeniedError",
    "Principal",
    "TenantStore",
    "authorize",
    "bearer_token",
    "build_authenticator",
    "build_jwt_verifier",
    "build_key_store",
    "build_tenant_store",
    "generate_secret",
    "hash_secret",
    "is_key_shaped",
    "load_pepper",
    "looks_like_jwt",
    "parse_api_key",
    "parse_scopes",
    "validate_tenant",
)
