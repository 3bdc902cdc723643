"""The error model every route declares (OpenAI's shape, as ``strata.web.errors`` writes it)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from pydantic import AfterValidator, BaseModel
from pydantic_core import PydanticCustomError


class ErrorDetail(BaseModel):
    message: str
    type: str  # invalid_request_error | api_error
    param: str | None = None  # the request field that is wrong, when one is
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "The request is malformed or a field is invalid (`param` names it).",
    401: "No valid API key.",
    403: "The key lacks the scope this route needs.",
    404: "No such resource for this tenant.",
    409: "The write conflicted with a concurrent one; retry.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer each of ``statuses`` with an error."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase)}
        for status in statuses
    }


def checked(validate: Callable[[Any], Any]) -> AfterValidator:
    """A pydantic validator running one of the library's field checks.

    The library's ``Invalid*Error`` names its field in its message; pydantic names it too (the
    400's ``param``), so the message keeps only the reason.
    """

    def run(value: Any) -> Any:
        try:
            return validate(value)
        except ValueError as error:
            raise PydanticCustomError("value_error", getattr(error, "reason", str(error))) from error

    return AfterValidator(run)
