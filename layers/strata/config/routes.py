"""The public API's routes, defined once.

The CDK app builds API Gateway's methods from this table, the local gateway routes by it, each
route's scope is checked from it, and a test holds the functions' FastAPI apps (and so the
OpenAPI document) to it: a route cannot exist in one place and be missing in another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal


class Scope(StrEnum):
    CHAT = "chat"
    DOCUMENTS_WRITE = "documents:write"
    ADMIN = "admin"


Function = Literal["chat", "api"]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One method on one path. ``scope`` None: any valid key; ``authorized`` False: no key at all."""

    method: str
    path: str  # FastAPI's template, e.g. /v1/documents/{document_id}
    function: Function
    scope: Scope | None = None
    authorized: bool = True

    @property
    def streaming(self) -> bool:
        return self.function == "chat"

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", self.path) + "$")


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/chat/completions", "chat", Scope.CHAT),
    RouteSpec("POST", "/v1/embeddings", "api", Scope.CHAT),
    RouteSpec("POST", "/v1/search", "api", Scope.CHAT),  # retrieval without generation
    RouteSpec("GET", "/v1/models", "api"),
    RouteSpec("GET", "/v1/usage", "api"),
    RouteSpec("GET", "/v1/documents", "api"),
    RouteSpec("POST", "/v1/documents", "api", Scope.DOCUMENTS_WRITE),
    RouteSpec("GET", "/v1/documents/{document_id}", "api"),
    RouteSpec("DELETE", "/v1/documents/{document_id}", "api", Scope.DOCUMENTS_WRITE),
    RouteSpec("GET", "/v1/prompts", "api"),
    RouteSpec("POST", "/v1/prompts", "api", Scope.ADMIN),
    RouteSpec("GET", "/v1/prompts/{name}", "api"),
    RouteSpec("GET", "/v1/prompts/{name}/versions", "api"),
    RouteSpec("PUT", "/v1/prompts/{name}/labels/{label}", "api", Scope.ADMIN),
    RouteSpec("DELETE", "/v1/prompts/{name}", "api", Scope.ADMIN),
    RouteSpec("GET", "/v1/keys", "api", Scope.ADMIN),
    RouteSpec("POST", "/v1/keys", "api", Scope.ADMIN),
    RouteSpec("GET", "/v1/keys/{key_id}", "api", Scope.ADMIN),
    RouteSpec("PATCH", "/v1/keys/{key_id}", "api", Scope.ADMIN),
    RouteSpec("DELETE", "/v1/keys/{key_id}", "api", Scope.ADMIN),
    RouteSpec("GET", "/v1/limits", "api", Scope.ADMIN),
    RouteSpec("PUT", "/v1/limits", "api", Scope.ADMIN),
    RouteSpec("POST", "/v1/feedback", "api", Scope.CHAT),
    RouteSpec("GET", "/v1/feedback", "api"),
    RouteSpec("GET", "/v1/feedback/{request_id}", "api"),
    RouteSpec("GET", "/healthz", "api", authorized=False),
)

_BY_ENDPOINT = {(route.method, route.path): route for route in ROUTES}


def route_for(method: str, path_template: str) -> RouteSpec | None:
    """The spec of a route by its template (what FastAPI matched), or None."""
    return _BY_ENDPOINT.get((method, path_template))


# What a browser on the frontend's origin may send and read (CORS): the API Gateway preflight and
# the functions' responses use the same lists.
CORS_ALLOWED_HEADERS = ("Authorization", "Content-Type")
CORS_ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
CORS_EXPOSED_HEADERS = (
    "Retry-After",
    "x-request-id",  # a chat answer's id (strata.request_id), known before its last chunk
    *(f"x-ratelimit-{kind}-{limit}" for kind in ("limit", "remaining", "reset") for limit in ("requests", "tokens")),
)


def error_body(message: str, *, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, which every error of the API has."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# What a request without a valid key gets, from the local gateway and from API Gateway alike.
UNAUTHORIZED_MESSAGE = "Invalid or missing API key. Send 'Authorization: Bearer <key>'."
UNAUTHORIZED_BODY = error_body(UNAUTHORIZED_MESSAGE, type_="invalid_request_error", code="invalid_api_key")
