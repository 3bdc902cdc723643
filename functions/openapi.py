"""One OpenAPI document for the public API: the functions' FastAPI apps, held to the route table.

Each route's own models come from its FastAPI declaration; what every route of a kind can answer
— the gateway's and the request limits' errors — is added here from the route table, once, so
the document lists every status a route returns (schemathesis checks it against the running
stack).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from strata.chat import ChatCompletionChunk, StreamProgress
from strata.config import ROUTES, RouteSpec
from strata.web.errors import ErrorResponse

TITLE = "Strata API"
VERSION = "0.1.0"

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_DESCRIPTIONS = {
    "400": "Invalid request: malformed JSON, a wrong type, or a parameter this API does not support",
    "401": "Missing or invalid API key",
    "403": "The key lacks the scope this route needs",
    "404": "Not found (for another tenant's resource too)",
    "405": "Method not allowed on this path",
    "413": "Request body too large",
    "429": "Rate limit or daily token quota reached (see Retry-After and x-ratelimit-*)",
    "431": "Request headers too large",
    "502": "The model's answer did not match the requested response_format, even after one repair round",
    "503": "A model or the search index is unavailable (see Retry-After)",
}
# Routes that reach a model: admitted by the rate limiter, failing over to 503.
_METERED = {("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")}


_RATE_LIMIT_HEADERS = {
    f"x-ratelimit-{what}-{dimension}": {
        "description": f"OpenAI's {what} of the {dimension} limit (sent where a limit applies)",
        "schema": {"type": "string"},
    }
    for dimension in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
}


def error_statuses(route: RouteSpec) -> list[str]:
    """The error statuses a route can answer besides its own declared ones."""
    statuses = ["400", "431"]
    if route.authorized:
        statuses += ["401", "403"]
    if route.method in ("POST", "PUT", "PATCH"):
        statuses.append("413")
    if "{" in route.path or route.function == "chat":
        statuses.append("404")
    if (route.method, route.path) in _METERED:
        statuses += ["429", "503"]
    if route.function == "chat":
        statuses.append("502")
    return statuses


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in generated.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas[model.__name__] = generated


def build_openapi(*apps: FastAPI) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": apps[0].openapi()["openapi"],
        "info": {
            "title": TITLE,
            "version": VERSION,
            "summary": "OpenAI-compatible chat and embeddings over your own documents, plus Strata's own resources.",
        },
        "paths": {},
        "components": {"schemas": {}},
    }
    for app in apps:
        generated = copy.deepcopy(app.openapi())
        document["paths"].update(generated.get("paths", {}))
        document["components"]["schemas"].update(generated.get("components", {}).get("schemas", {}))
    schemas = document["components"]["schemas"]
    # Models a route's document names by reference without FastAPI seeing them: the error
    # shape, and what each streamed event carries (as it is sent: fields that are None are left
    # out, which the validation schema allows as they are not required).
    for model in (ErrorResponse, ChatCompletionChunk, StreamProgress):
        _add_model(schemas, model)
    # FastAPI's own validation error is never sent: wrong input is a 400 in OpenAI's shape.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    document["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "A Strata API key (sk-strata-…)"}
    }
    document["security"] = [{"apiKey": []}]
    for route in ROUTES:
        operation = document["paths"].get(route.path, {}).get(route.method.lower())
        if operation is None:  # a route the apps lack: the route-table test names it
            continue
        responses = operation.setdefault("responses", {})
        responses.pop("422", None)
        for status in error_statuses(route):
            responses.setdefault(
                status, {"description": _DESCRIPTIONS[status], "content": {"application/json": {"schema": _ERROR_REF}}}
            )
        if (route.method, route.path) in _METERED:
            for status in ("200", "429"):
                responses[status].setdefault("headers", {}).update(_RATE_LIMIT_HEADERS)
            responses["429"]["headers"]["Retry-After"] = {
                "description": "Seconds to wait",
                "schema": {"type": "string"},
            }
        if not route.authorized:
            operation["security"] = []
    return document


def public_openapi() -> dict[str, Any]:
    """The document for the deployed API: the chat function's and the api function's routes."""
    from functions.api.app import app as api_app
    from functions.chat.app import app as chat_app

    return build_openapi(chat_app, api_app)
