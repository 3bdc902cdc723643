"""The auth package's errors.

``AuthError`` and its subclasses are what a caller did wrong and are answered 401 (403 for
``PermissionDeniedError``); the authorizer turns them into API Gateway's ``Unauthorized``. The
others are not the caller's fault or not about credentials, so they deliberately sit outside
``AuthError``: a missing pepper or an unreachable JWKS must be a 500, never a 401 that hides it.
"""


class AuthError(Exception):
    """Base error of the caller's credentials (401)."""


class MissingCredentialsError(AuthError):
    """The request carries no API key or token."""


class InvalidCredentialsError(AuthError):
    """The API key or token is malformed, unknown, wrong, revoked or expired.

    The message is the reason, for the log; clients only ever see the generic 401.
    """


class InvalidTenantError(AuthError, ValueError):
    """A tenant name that cannot be used in keys, object keys or index filters."""


class PermissionDeniedError(AuthError):
    """The key is valid but lacks the scope the route needs (403)."""


class KeyNotFoundError(LookupError):
    """No such key for this tenant (404). Another tenant's key is not found either."""


class KeyConflictError(ValueError):
    """A key id that is already registered with another secret or for another tenant."""


class AuthConfigurationError(RuntimeError):
    """The deployment's auth settings are missing or contradictory (no pepper, JWT half set)."""


class JwksUnavailableError(RuntimeError):
    """The issuer's signing keys could not be fetched: the authorizer fails (500), not the caller."""
