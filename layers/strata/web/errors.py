"""Errors in OpenAI's shape, mapped from each package's exceptions in one place."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from strata.auth import AuthError, KeyConflictError, KeyNotFoundError, PermissionDeniedError
from strata.chat import ContextWindowExceededError
from strata.config import Settings, get_settings
from strata.config.routes import error_body
from strata.documents import DocumentNotFoundError, InvalidUploadError
from strata.feedback import FeedbackNotFoundError, InvalidFeedbackError
from strata.inference import (
    InferenceError,
    ModelRequestError,
    ModelUnavailableError,
    ModelWakingError,
    UnknownModelError,
)
from strata.prompts import (
    InvalidPromptError,
    PromptConflictError,
    PromptNotFoundError,
    PromptRenderError,
    PromptsError,
    PromptVariableError,
)
from strata.retrieval import InvalidQueryError, VectorStoreUnavailableError
from strata.throttle import RateLimitExceededError, ThrottleError
from strata.validation import JsonAnswerError
from strata.web.limits import RequestLimits

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class WakingDetail(BaseModel):
    """Present on a 503 while the chat model starts from zero (minutes): show it, retry later."""

    waking: bool = True
    retry_after_s: int


class ErrorResponse(BaseModel):
    """OpenAI's error shape, which every error of the API has."""

    error: ErrorDetail
    strata: WakingDetail | None = None


# exception type → (status, OpenAI error type, code)
_ERROR_MAP: list[tuple[type[Exception], int, str, str | None]] = [
    (PermissionDeniedError, 403, "invalid_request_error", "permission_denied"),
    (AuthError, 401, "invalid_request_error", "invalid_api_key"),
    (UnknownModelError, 404, "invalid_request_error", "model_not_found"),
    (KeyNotFoundError, 404, "invalid_request_error", "not_found"),
    (KeyConflictError, 409, "invalid_request_error", "conflict"),
    (DocumentNotFoundError, 404, "invalid_request_error", "not_found"),
    (PromptNotFoundError, 404, "invalid_request_error", "not_found"),
    (FeedbackNotFoundError, 404, "invalid_request_error", "not_found"),
    (PromptConflictError, 409, "invalid_request_error", "conflict"),
    (InvalidUploadError, 400, "invalid_request_error", "invalid_request"),
    (InvalidPromptError, 400, "invalid_request_error", "invalid_request"),
    (PromptVariableError, 400, "invalid_request_error", "invalid_request"),
    (PromptRenderError, 400, "invalid_request_error", "prompt_render_failed"),
    (InvalidFeedbackError, 400, "invalid_request_error", "invalid_request"),
    (ContextWindowExceededError, 400, "invalid_request_error", "context_length_exceeded"),
    (ModelRequestError, 400, "invalid_request_error", "invalid_request"),
    # OpenAI's 429s: type "requests" or "tokens" per the limit (see public_error_body).
    (RateLimitExceededError, 429, "requests", "rate_limit_exceeded"),
    (ThrottleError, 503, "api_error", "rate_limiter_unavailable"),
    # Scaled to zero and starting: the body's strata.waking tells the page to say so and retry.
    (ModelWakingError, 503, "api_error", "model_waking"),
    (ModelUnavailableError, 503, "api_error", "model_unavailable"),
    # The model's answer did not match the requested response_format, even after a repair round.
    (JsonAnswerError, 502, "api_error", "invalid_model_output"),
    (VectorStoreUnavailableError, 503, "api_error", "search_unavailable"),
    (InvalidQueryError, 400, "invalid_request_error", "invalid_request"),
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
    if isinstance(error, RateLimitExceededError):
        type_, code = (
            ("insufficient_quota", "insufficient_quota") if error.limit == "tokens_per_day" else (error.limit, code)
        )
    message = "internal error" if code == "internal_error" else str(error)
    # The prompt errors name the field at fault (strata.prompt.variables.<name>, template, label).
    param = getattr(error, "param", None) if isinstance(error, PromptsError) else None
    body = error_body(message, type_=type_, code=code, param=param)
    if isinstance(error, ModelWakingError):
        body["strata"] = {"waking": True, "retry_after_s": max(1, math.ceil(error.retry_after or 1))}
    return status, body


def _error_headers(error: Exception, status: int) -> dict[str, str] | None:
    """``Retry-After`` in whole seconds (at least 1) when the error knows when to come back, and
    on every 503 (one second when it does not); a rate limit's ``x-ratelimit-*`` headers."""
    headers = dict(getattr(error, "headers", None) or {})
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None or status == 503:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after or 1)))
    return headers or None


# Parts of a pydantic error location that name a union member or validator, not a field.
_NOT_A_FIELD = re.compile(r"[\[\]()]|^(str|int|float|bool|list|dict|none)$")


def describe_validation_error(errors: Sequence[Any]) -> tuple[str | None, str]:
    """The parameter and message of a request's validation errors, as OpenAI words them: the
    deepest error (for a union, the member that got furthest), its location as a dotted path
    without pydantic's union-member names, and no "Value error, " prefix."""
    if not errors:
        return None, "invalid request"

    def location(item: Any) -> list[str]:
        loc = list(item.get("loc", ()))
        loc = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
        return [str(part) for part in loc if not _NOT_A_FIELD.search(str(part))]

    # Of a union's members, one whose type matched got further than one that wanted another type.
    chosen = max(errors, key=lambda item: (len(location(item)), not str(item.get("type", "")).endswith("_type")))
    param = ".".join(location(chosen)) or None
    message = str(chosen.get("msg", "invalid value")).removeprefix("Value error, ")
    if chosen.get("type") == "json_invalid":
        return None, "We could not parse the JSON body of your request. Send valid JSON."
    return param, f"{param}: {message}" if param else message


def install_error_handlers(app: FastAPI, settings: Settings | None = None) -> None:
    """Errors in OpenAI's shape, and the request limits checked before a body is parsed."""
    settings = settings or get_settings()
    app.add_middleware(
        RequestLimits, max_body_bytes=settings.max_request_bytes, max_header_bytes=settings.max_header_bytes
    )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        param, message = describe_validation_error(error.errors())
        return error_response(400, message, type_="invalid_request_error", code="invalid_request", param=param)

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
        headers = _error_headers(error, status)
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
