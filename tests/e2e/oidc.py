"""An OpenID Connect issuer on 127.0.0.1 for the page's sign-in tests: the authorization-code flow
with PKCE as a Cognito user pool's hosted sign-in runs it, signing one user in without asking."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.unit.auth.support import AUDIENCE, SigningKey, serving


@dataclass
class OidcIssuer:
    tenant: str
    client_id: str = AUDIENCE
    key: SigningKey = field(default_factory=SigningKey)
    issuer: str = ""
    grants: dict[str, dict[str, str]] = field(default_factory=dict)  # code → what it was issued for
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/oauth2/authorize",
            "token_endpoint": f"{self.issuer}/oauth2/token",
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """Where the browser goes back to: the redirect URI with a code, or with an error."""
        if query.get("client_id") != self.client_id or query.get("code_challenge_method") != "S256":
            return f"{query['redirect_uri']}?{urlencode({'error': 'invalid_request', 'state': query.get('state', '')})}"
        code = secrets.token_urlsafe(16)
        self.grants[code] = query
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        grant = self.grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant["redirect_uri"]
            or challenge != grant["code_challenge"]
        ):
            return 400, {"error": "invalid_grant"}
        token = self.key.token(self.issuer, **{"custom:tenant": self.tenant, "sub": "reader-1"})
        return 200, {"id_token": token, "access_token": token, "token_type": "Bearer", "expires_in": 3600}


@contextmanager
def oidc_issuer(tenant: str) -> Iterator[OidcIssuer]:
    issuer = OidcIssuer(tenant)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._json(200, issuer.discovery())
            elif url.path == "/.well-known/jwks.json":
                self._json(200, issuer.key.jwks())
            elif url.path == "/oauth2/authorize":
                query = {name: values[0] for name, values in parse_qs(url.query).items()}
                self.send_response(302)
                self.send_header("Location", issuer.authorize(query))
                self.end_headers()
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/oauth2/token":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            self._json(*issuer.token({name: values[0] for name, values in parse_qs(body).items()}))

        def _json(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Access-Control-Allow-Origin", "*")  # the page reads it from its own origin
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    with serving(Handler) as url:
        issuer.issuer = url
        yield issuer
