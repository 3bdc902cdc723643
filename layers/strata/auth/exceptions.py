class AuthError(Exception):
    """Base error of the auth package."""


class MissingCredentialsError(AuthError):
    """The request carries no API key."""


class InvalidCredentialsError(AuthError):
    """The API key is unknown or revoked."""


class InvalidTenantError(AuthError, ValueError):
    """A tenant name that cannot be used in keys, object keys or index filters."""


class PermissionDeniedError(AuthError):
    """The key is valid but lacks the scope the route needs (403)."""
