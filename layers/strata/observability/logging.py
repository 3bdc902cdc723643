from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

# Set by the Lambda runtime; absent when the local stack imports the functions.
LAMBDA_ENV = "AWS_LAMBDA_FUNCTION_NAME"


def function_logger(service: str) -> Logger | logging.Logger:
    """The function's logger. In Lambda: Powertools' JSON logger, and the library's ``strata.*``
    loggers (the request log included) write through its configuration. Locally: a plain
    ``strata.<service>`` logger, so the console keeps one readable format."""
    if not os.environ.get(LAMBDA_ENV):
        return logging.getLogger(f"strata.{service.removeprefix('strata-')}")
    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={"strata"})
    return logger


def with_lambda_context(logger: Logger | logging.Logger):  # noqa: ANN201 - a decorator
    """Powertools' ``inject_lambda_context`` in Lambda (function name, request id, cold start on
    every record); locally the handler as it is."""
    if isinstance(logger, Logger):
        return logger.inject_lambda_context
    return lambda handler: handler
