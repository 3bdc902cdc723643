"""CORS for the frontend's origin only: the browser may read the API's answers, errors and limits.

API Gateway answers the preflight (``OPTIONS``) itself; the functions add the
``Access-Control-*`` headers to every real response, a 4xx, a 429 or a 503 included, or the
browser would hide the error (and its ``Retry-After``) from the page.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from strata.config import Settings, get_settings
from strata.config.routes import CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS


def allowed_origins(settings: Settings) -> list[str]:
    return [origin.strip().rstrip("/") for origin in settings.cors_origins.split(",") if origin.strip()]


def install_cors(app: FastAPI, settings: Settings | None = None) -> None:
    """Allow the configured origins (``STRATA_CORS_ORIGINS``); nothing when none is set (the
    local stack serves the page from the API's own origin)."""
    origins = allowed_origins(settings or get_settings())
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=list(CORS_ALLOWED_METHODS),
            allow_headers=list(CORS_ALLOWED_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
        )
