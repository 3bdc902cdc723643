"""Optional JWT sign-in (Cognito user pools, or any issuer with a JWKS and RS256 tokens).

On when ``jwt_issuer`` is set. A token is accepted when its RS256 signature verifies against
the issuer's JWKS, ``iss`` is the issuer, it has not expired, ``token_use`` is ``id`` or
``access``, and the audience matches: Cognito ID tokens carry it in ``aud``, access tokens in
``client_id``, so either may match. The tenant comes from one claim; the scopes are the
deployment's defaults plus the known scopes named in another claim (Cognito access tokens
always carry a ``scope`` claim of OAuth scopes, which must not take the defaults away).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strata.auth.exceptions import AuthConfigurationError, InvalidCredentialsError, JwksUnavailableError
from strata.auth.types import Principal, validate_tenant
from strata.config import Scope
from strata.config.settings import ENV_PREFIX

if TYPE_CHECKING:
    import jwt as pyjwt

    from strata.config import Settings

# Three base64url parts (the signature may be empty in an unsigned token, which is then refused).
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_ALGORITHMS = ["RS256"]
_TOKEN_USES = frozenset({"id", "access"})
_KNOWN_SCOPES = {scope.value: scope for scope in Scope}


def looks_like_jwt(token: str) -> bool:
    return _JWT_SHAPE.fullmatch(token) is not None


def _scope_names(value: Any) -> list[str]:
    """A scopes claim: OAuth's space-separated string, or a list (e.g. ``cognito:groups``)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _known(names: list[str]) -> frozenset[Scope]:
    return frozenset(_KNOWN_SCOPES[name] for name in names if name in _KNOWN_SCOPES)


@dataclass(frozen=True, slots=True)
class JwtConfig:
    issuer: str
    audience: str
    jwks_url: str
    tenant_claim: str = "custom:tenant"
    scopes_claim: str = "scope"
    default_scopes: frozenset[Scope] = frozenset({Scope.CHAT})
    leeway_s: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtConfig | None:
        """The deployment's JWT settings, or None when JWT sign-in is off (no issuer)."""
        if not settings.jwt_issuer:
            return None
        if not settings.jwt_audience:
            # Without an audience any app client of the pool (or any user of a shared issuer) would pass.
            raise AuthConfigurationError(f"{ENV_PREFIX}JWT_ISSUER is set but {ENV_PREFIX}JWT_AUDIENCE is not")
        names = _scope_names(settings.jwt_default_scopes.replace(",", " "))
        unknown = [name for name in names if name not in _KNOWN_SCOPES]
        if unknown:
            raise AuthConfigurationError(
                f"{ENV_PREFIX}JWT_DEFAULT_SCOPES names unknown scopes {unknown}: use {', '.join(_KNOWN_SCOPES)}"
            )
        issuer = settings.jwt_issuer.rstrip("/")
        return cls(
            issuer=issuer,
            audience=settings.jwt_audience,
            jwks_url=settings.jwt_jwks_url or f"{issuer}/.well-known/jwks.json",
            tenant_claim=settings.jwt_tenant_claim,
            scopes_claim=settings.jwt_scopes_claim,
            default_scopes=_known(names),
        )


class JwtVerifier:
    """Verifies bearer JWTs and turns them into principals (``key_id`` ``jwt:<sub>``).

    ``jwks`` is a ``jwt.PyJWKClient``; the default one fetches the issuer's JWKS and keeps it for
    an hour, fetching again when a token names a key it does not have (key rotation).
    """

    def __init__(self, config: JwtConfig, *, jwks: pyjwt.PyJWKClient | None = None) -> None:
        # PyJWT (and cryptography under it) only when JWT sign-in is on: it costs every cold start
        # of the authorizer about a tenth of a second otherwise.
        import jwt as pyjwt

        self._pyjwt = pyjwt
        self._config = config
        self._jwks = jwks or pyjwt.PyJWKClient(config.jwks_url, cache_jwk_set=True, lifespan=3600, timeout=5)

    def verify(self, token: str) -> Principal:
        claims = self._claims(token)
        config = self._config
        if claims.get("token_use") not in _TOKEN_USES:
            raise InvalidCredentialsError(f"token_use {claims.get('token_use')!r} is neither 'id' nor 'access'")
        if not self._audience_matches(claims):
            raise InvalidCredentialsError("token is for another audience")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidCredentialsError("token has no subject")
        tenant = claims.get(config.tenant_claim)
        if not isinstance(tenant, str):
            raise InvalidCredentialsError(f"token has no {config.tenant_claim!r} claim")
        try:
            validate_tenant(tenant)
        except ValueError as error:
            raise InvalidCredentialsError(f"token's {config.tenant_claim!r} claim: {error}") from None
        scopes = config.default_scopes | _known(_scope_names(claims.get(config.scopes_claim)))
        return Principal(tenant=tenant, key_id=f"jwt:{subject}", scopes=scopes)

    def _claims(self, token: str) -> dict[str, Any]:
        pyjwt = self._pyjwt
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
            return pyjwt.decode(
                token,
                signing_key.key,
                algorithms=_ALGORITHMS,
                issuer=self._config.issuer,
                leeway=self._config.leeway_s,
                # aud is checked below: Cognito access tokens carry client_id instead.
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except pyjwt.PyJWKClientConnectionError as error:
            raise JwksUnavailableError(f"cannot fetch the JWKS at {self._config.jwks_url}: {error}") from error
        except pyjwt.PyJWTError as error:
            # PyJWT's messages name the failed check ("Signature has expired"), never the token.
            raise InvalidCredentialsError(f"invalid token: {error}") from None

    def _audience_matches(self, claims: dict[str, Any]) -> bool:
        audience = self._config.audience
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
        return audience in audiences or claims.get("client_id") == audience


def build_jwt_verifier(settings: Settings) -> JwtVerifier | None:
    config = JwtConfig.from_settings(settings)
    return JwtVerifier(config) if config is not None else None
