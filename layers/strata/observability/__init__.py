"""Logging for the Lambda functions: Powertools' structured logger, shared with the library."""

from strata.observability.logging import function_logger

__all__ = ("function_logger",)
