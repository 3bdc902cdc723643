"""The chat page's runtime configuration (``config.json``) and its content security policy.

One definition for both places that serve the page — CloudFront (``infra_cdk``) and the local
gateway — so the page runs under the same rules locally as deployed, and its browser tests catch
what the deployed policy would block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strata.config.settings import Settings

CONFIG_OBJECT = "config.json"
SIGN_IN_SCOPES = "openid email profile"


@dataclass(frozen=True, slots=True)
class SignIn:
    """OpenID Connect sign-in for the page (authorization code with PKCE).

    issuer
        The token issuer (``STRATA_JWT_ISSUER``); the page reads its endpoints from
        ``{issuer}/.well-known/openid-configuration``.
    client_id
        The app client the tokens are for (``STRATA_JWT_AUDIENCE``).
    origin
        Where the issuer's sign-in pages and token endpoint are, e.g. a Cognito user pool domain
        (``https://<prefix>.auth.<region>.amazoncognito.com``): the page exchanges its code there.
    """

    issuer: str
    client_id: str
    origin: str
    scopes: str = SIGN_IN_SCOPES


def sign_in_from(settings: Settings) -> SignIn | None:
    """The page's sign-in where JWT sign-in is on (an issuer and an audience), else None."""
    if not settings.jwt_issuer or not settings.jwt_audience:
        return None
    origin = settings.jwt_sign_in_origin or issuer_origin(settings.jwt_issuer)
    return SignIn(issuer=settings.jwt_issuer, client_id=settings.jwt_audience, origin=origin)


def runtime_config(api_base_url: str, sign_in: SignIn | None = None) -> dict[str, Any]:
    """What the page reads at start: the API's base URL and, when configured, how to sign in."""
    config: dict[str, Any] = {"apiBaseUrl": api_base_url}
    if sign_in is not None:
        config["signIn"] = {"issuer": sign_in.issuer, "clientId": sign_in.client_id, "scopes": sign_in.scopes}
    return config


def connect_origins(
    api_origin: str, *, upload_origins: Iterable[str] = (), sign_in: SignIn | None = None
) -> list[str]:
    """The origins besides its own that the page may fetch from: the API, where documents are
    uploaded (S3's presigned POST), and the sign-in's issuer and token endpoint."""
    origins = [api_origin, *upload_origins]
    if sign_in is not None:
        origins += [issuer_origin(sign_in.issuer), sign_in.origin]
    return list(dict.fromkeys(origins))  # in order, once each


def issuer_origin(issuer: str) -> str:
    """``scheme://host[:port]`` of an issuer URL (a plain string, not a deploy-time token)."""
    scheme, _, rest = issuer.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def content_security_policy(connect: Iterable[str]) -> str:
    """Scripts, styles and images from the page only; fetches to the page (``config.json``) and
    the ``connect`` origins. No inline script or style: the page sets none."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            " ".join(("connect-src", "'self'", *connect)),
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
