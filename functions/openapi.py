"""One OpenAPI document for the public API, generated from the functions' FastAPI apps."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

TITLE = "Strata API"
VERSION = "0.1.0"


def build_openapi(*apps: FastAPI) -> dict[str, Any]:
    routes = [route for app in apps for route in app.routes if getattr(route, "include_in_schema", False)]
    document = get_openapi(
        title=TITLE,
        version=VERSION,
        summary="OpenAI-compatible chat and embeddings over your own documents, plus Strata's own resources.",
        routes=routes,
    )
    document.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "A Strata API key (sk-strata-…)"}
    }
    document["security"] = [{"apiKey": []}]
    return document


def public_openapi() -> dict[str, Any]:
    """The document for the deployed API: the chat function's and the api function's routes."""
    from functions.api.app import app as api_app
    from functions.chat.app import app as chat_app

    return build_openapi(chat_app, api_app)
