"""Errors in OpenAI's shape, mapped from each package's exceptions in one place."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from strata.auth import AuthError, PermissionDeniedError
from strata.chat import ContextWindowExceededError
from strata.config.routes import error_body
from strata.documents import DocumentNotFoundError
from strata.inference import InferenceError, ModelRequestError, ModelUnavailableError, UnknownModelError
from strata.retrieval import VectorStoreUnavailableError

logger = logging.getLogger(__name__)

# exception type → (status, OpenAI error type, code)
_ERROR_MAP: list[tuple[type[Exception], int, str, str | None]] = [
    (PermissionDeniedError, 403, "invalid_request_error", "permission_denied"),
    (AuthError, 401, "invalid_request_error", "invalid_api_key"),
    (UnknownModelError, 404, "invalid_request_error", "model_not_found"),
    (DocumentNotFoundError, 404, "invalid_request_error", "not_found"),
    (ContextWindowExceededError, 400, "invalid_request_error", "context_length_exceeded"),
    (ModelRequestError, 400, "invalid_request_error", "invalid_request"),
    (ModelUnavailableError, 503, "api_error", "model_unavailable"),
    (VectorStoreUnavailableError, 503, "api_error", "search_unavailable"),
    (InferenceError, 502, "api_error", "model_error"),
]


def error_response(
    status: int,
    message: str,
    *,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type_=type_, code=code, param=param), status_code=status, headers=headers)


def classify(error: Exception) -> tuple[int, str, str | None]:
    for exc_type, status, type_, code in _ERROR_MAP:
        if isinstance(error, exc_type):
            return status, type_, code
    return 500, "api_error", "internal_error"


def public_error_body(error: Exception) -> tuple[int, dict[str, Any]]:
    """Status and body for ``error``; an unexpected error's own text never reaches the client."""
    status, type_, code = classify(error)
    message = "internal error" if code == "internal_error" else str(error)
    return status, error_body(message, type_=type_, code=code)


def _retry_after_headers(error: Exception, status: int) -> dict[str, str] | None:
    """``Retry-After`` in whole seconds (at least 1): when the error knows when to come back, and
    on every 503 (one second when it does not)."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is None and status != 503:
        return None
    return {"Retry-After": str(max(1, math.ceil(retry_after or 1)))}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = ".".join(str(part) for part in first.get("loc", ())[1:])
        message = f"{location}: {first.get('msg', 'invalid request')}" if location else first.get("msg", "invalid")
        return error_response(400, message, type_="invalid_request_error", param=location or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if error.status_code < 500 else "api_error"
        return error_response(
            error.status_code,
            str(error.detail),
            type_=type_,
            code=HTTPStatus(error.status_code).phrase.lower().replace(" ", "_"),
        )

    async def _known(_: Request, error: Exception) -> JSONResponse:
        status, body = public_error_body(error)
        headers = _retry_after_headers(error, status)
        if status >= 500:
            logger.warning("request failed: %s", error)
        return JSONResponse(body, status_code=status, headers=headers)

    # One handler per known error: these run inside the app, so the response is the whole story.
    for exc_type, *_ in _ERROR_MAP:
        app.add_exception_handler(exc_type, _known)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed")
        return JSONResponse(public_error_body(error)[1], status_code=500)
