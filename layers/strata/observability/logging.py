from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

# Set by the Lambda runtime; absent when the local stack imports the functions.
LAMBDA_ENV = "AWS_LAMBDA_FUNCTION_NAME"


def function_logger(service: str) -> Logger:
    """The function's Powertools logger. In Lambda the library's ``strata.*`` loggers write
    through it too (JSON, same level, same correlation keys); locally they keep the console format."""
    logger = Logger(service=service)
    if os.environ.get(LAMBDA_ENV):
        copy_config_to_registered_loggers(source_logger=logger, include={"strata"})
    return logger
