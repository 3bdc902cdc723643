"""What the api function's routes share about errors: the model they declare, and field checks.

``ErrorResponse`` is the one model of OpenAI's error shape, the one ``strata.web.errors`` writes
and ``functions.openapi`` documents; it is re-exported here so routes import it from one place.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from strata.web.errors import ErrorDetail, ErrorResponse

__all__ = ("ErrorDetail", "ErrorResponse", "checked", "error_responses")


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
