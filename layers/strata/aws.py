"""One factory for boto3 clients, so every client shares the same config and endpoints.

In the cloud the endpoint URLs are unset and boto3 finds AWS as usual; locally the settings
point S3/SQS/DynamoDB at moto and ``sagemaker-runtime`` at the local model server.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from strata.config import Settings, get_settings

# Retries with backoff for the control calls; the model endpoint has its own read timeout
# because generation can take a while before the first byte.
_DEFAULT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
_SAGEMAKER_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=300)


def _endpoint_for(service: str, settings: Settings) -> str | None:
    if service == "sagemaker-runtime":
        return settings.sagemaker_runtime_url
    return settings.aws_endpoint_url


def client(service: str, settings: Settings | None = None) -> Any:
    """A boto3 client for ``service``, built once per (service, settings) pair."""
    return _cached_client(service, settings or get_settings())


def resource(service: str, settings: Settings | None = None) -> Any:
    """A boto3 resource (DynamoDB tables read better through it)."""
    return _cached_resource(service, settings or get_settings())


@lru_cache(maxsize=32)
def _cached_client(service: str, settings: Settings) -> Any:
    config = _SAGEMAKER_CONFIG if service == "sagemaker-runtime" else _DEFAULT_CONFIG
    return boto3.session.Session().client(
        service, region_name=settings.aws_region, endpoint_url=_endpoint_for(service, settings), config=config
    )


@lru_cache(maxsize=8)
def _cached_resource(service: str, settings: Settings) -> Any:
    return boto3.session.Session().resource(
        service,
        region_name=settings.aws_region,
        endpoint_url=_endpoint_for(service, settings),
        config=_DEFAULT_CONFIG,
    )
