"""What the auth tests share: the tables (with the keys table's tenant index), an RSA signing key
with its JWKS, tokens signed by it, and a JWKS served on 127.0.0.1 (no network)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from strata_local.aws import create_tables

AUDIENCE = "app-client-1"


def create_auth_tables(dynamodb: Any) -> None:
    """Every table of RESOURCES (the keys table with its ``by-tenant`` index)."""
    create_tables(dynamodb)


@dataclass
class SigningKey:
    """An RSA key pair as an issuer holds it: private key to sign, public JWKS to publish."""

    kid: str = "key-1"
    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, issuer: str, **claims: Any) -> str:
        """A Cognito-shaped ID token for tenant acme, valid for an hour; ``claims`` override it
        (a ``None`` value removes that claim)."""
        now = int(time.time())
        body = {
            "iss": issuer,
            "sub": "user-1",
            "aud": AUDIENCE,
            "token_use": "id",
            "custom:tenant": "acme",
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid})


@contextmanager
def jwks_server(key: SigningKey) -> Iterator[str]:
    """Serves ``key``'s JWKS at ``{issuer}/.well-known/jwks.json``; yields the issuer URL."""
    document = json.dumps(key.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_: Any) -> None:
            pass

    with serving(Handler) as url:
        yield url


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free port of 127.0.0.1 from a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
