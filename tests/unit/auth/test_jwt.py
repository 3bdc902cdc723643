"""JWT sign-in: RS256 tokens checked against a JWKS (served from memory, or on 127.0.0.1)."""

from __future__ import annotations

import socket
import time
from typing import Any

import jwt
import pytest

from strata.auth import (
    AuthConfigurationError,
    InvalidCredentialsError,
    JwksUnavailableError,
    JwtConfig,
    JwtVerifier,
    looks_like_jwt,
)
from strata.config import Scope, Settings
from tests.unit.auth.support import AUDIENCE, SigningKey, jwks_server

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"


class StaticJwks(jwt.PyJWKClient):
    """PyJWKClient with its key matching, over a JWKS held in memory instead of fetched."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        super().__init__("https://unused.invalid/jwks.json")
        self._document = jwks

    def fetch_data(self) -> Any:
        return self._document


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def verifier(key: SigningKey) -> JwtVerifier:
    config = JwtConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url="unused", default_scopes=frozenset({Scope.CHAT}))
    return JwtVerifier(config, jwks=StaticJwks(key.jwks()))


def test_a_valid_id_token_is_its_subject_in_its_tenant_with_the_default_scopes(
    verifier: JwtVerifier, key: SigningKey
) -> None:
    principal = verifier.verify(key.token(ISSUER))

    assert (principal.tenant, principal.key_id, principal.scopes) == ("acme", "jwt:user-1", {Scope.CHAT})


def test_an_access_token_matches_by_client_id_and_adds_the_known_scopes_it_names(
    verifier: JwtVerifier, key: SigningKey
) -> None:
    token = key.token(ISSUER, aud=None, client_id=AUDIENCE, token_use="access", scope="openid admin email")

    assert verifier.verify(token).scopes == {Scope.CHAT, Scope.ADMIN}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 10}, "expired"),
        ({"aud": "another-client"}, "another audience"),
        ({"aud": None, "client_id": "another-client", "token_use": "access"}, "another audience"),
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"token_use": "refresh"}, "token_use"),
        ({"token_use": None}, "token_use"),
        ({"custom:tenant": None}, "custom:tenant"),
        ({"custom:tenant": "../acme"}, "invalid tenant"),
        ({"sub": None}, "sub"),
        ({"exp": None}, "exp"),
    ],
)
def test_a_token_failing_a_check_is_refused_with_that_reason(
    verifier: JwtVerifier, key: SigningKey, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidCredentialsError, match=reason):
        verifier.verify(key.token(ISSUER, **claims))


def test_a_token_signed_by_another_key_under_the_same_kid_is_refused(verifier: JwtVerifier) -> None:
    impostor = SigningKey(kid="key-1")
    with pytest.raises(InvalidCredentialsError, match="Signature verification failed"):
        verifier.verify(impostor.token(ISSUER))


def test_a_token_naming_an_unknown_key_is_refused(verifier: JwtVerifier) -> None:
    with pytest.raises(InvalidCredentialsError, match="signing key"):
        verifier.verify(SigningKey(kid="key-2").token(ISSUER))


def test_tokens_with_a_symmetric_or_no_algorithm_are_refused(verifier: JwtVerifier, key: SigningKey) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "token_use": "id", "custom:tenant": "acme", "exp": now + 60}
    public_pem = key.jwks()["keys"][0]["n"]  # an attacker's guess at a shared secret: the public modulus
    for token in (
        jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": "key-1"}),
        jwt.encode(claims, None, algorithm="none", headers={"kid": "key-1"}),
    ):
        with pytest.raises(InvalidCredentialsError):
            verifier.verify(token)


def test_the_verifier_fetches_the_issuers_jwks_over_http(key: SigningKey) -> None:
    with jwks_server(key) as issuer:
        config = JwtConfig.from_settings(Settings(jwt_issuer=issuer + "/", jwt_audience=AUDIENCE))
        assert config is not None and config.jwks_url == f"{issuer}/.well-known/jwks.json"

        assert JwtVerifier(config).verify(key.token(issuer)).tenant == "acme"


def test_an_unreachable_jwks_fails_the_authorizer_instead_of_refusing_the_caller(key: SigningKey) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuer = f"http://127.0.0.1:{port}"
    config = JwtConfig(issuer=issuer, audience=AUDIENCE, jwks_url=f"{issuer}/.well-known/jwks.json")

    with pytest.raises(JwksUnavailableError):
        JwtVerifier(config).verify(key.token(issuer))


def test_jwt_settings_are_off_without_an_issuer_and_checked_with_one() -> None:
    assert JwtConfig.from_settings(Settings(jwt_issuer=None)) is None
    with pytest.raises(AuthConfigurationError, match="STRATA_JWT_AUDIENCE"):
        JwtConfig.from_settings(Settings(jwt_issuer=ISSUER, jwt_audience=None))
    with pytest.raises(AuthConfigurationError, match="root"):
        JwtConfig.from_settings(Settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_default_scopes="chat,root"))

    config = JwtConfig.from_settings(
        Settings(
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_jwks_url="https://keys.example.com/jwks",
            jwt_tenant_claim="org",
            jwt_scopes_claim="cognito:groups",
            jwt_default_scopes="",
        )
    )
    assert config == JwtConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="https://keys.example.com/jwks",
        tenant_claim="org",
        scopes_claim="cognito:groups",
        default_scopes=frozenset(),
    )


def test_claims_named_by_the_settings_give_the_tenant_and_a_list_of_scopes(key: SigningKey) -> None:
    config = JwtConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="unused",
        tenant_claim="org",
        scopes_claim="cognito:groups",
        default_scopes=frozenset(),
    )
    token = key.token(ISSUER, org="globex", **{"custom:tenant": None, "cognito:groups": ["admin", "staff"]})

    principal = JwtVerifier(config, jwks=StaticJwks(key.jwks())).verify(token)

    assert (principal.tenant, principal.scopes) == ("globex", {Scope.ADMIN})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", True),
        ("a.b.", True),
        ("sk-strata-abcdefghijkl-" + "a" * 43, False),
        ("a.b", False),
        ("a.b.c.d", False),
        ("a b.c.d", False),
    ],
)
def test_what_looks_like_a_jwt(value: str, expected: bool) -> None:
    assert looks_like_jwt(value) is expected
