"""Logging for the Lambda functions (Powertools' structured logger) and the request log."""

from strata.observability.logging import function_logger, with_lambda_context
from strata.observability.redact import redact
from strata.observability.requests import RequestLog, RequestRecord
from strata.observability.timings import Timings

__all__ = ("RequestLog", "RequestRecord", "Timings", "function_logger", "redact", "with_lambda_context")
