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

# Retries with backoff for the control calls. Model calls pass a config of their own with
# retries off (the inference router retries, once, for every provider).
_DEFAULT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
_MODEL_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=120)
_MODEL_SERVICES = ("sagemaker-runtime", "bedrock-runtime")


def _endpoint_for(service: str, settings: Settings) -> str | None:
    if service == "sagemaker-runtime":
        return settings.sagemaker_runtime_url
    if service == "bedrock-runtime":
        return settings.bedrock_runtime_url
    return settings.aws_endpoint_url


def client(
    service: str, settings: Settings | None = None, *, config: Config | None = None, region: str | None = None
) -> Any:
    """A boto3 client for ``service``, built once per (service, settings, config, region)."""
    return _cached_client(service, settings or get_settings(), config, region)


def resource(service: str, settings: Settings | None = None) -> Any:
    """A boto3 resource (DynamoDB tables read better through it)."""
    return _cached_resource(service, settings or get_settings())


@lru_cache(maxsize=32)
def _cached_client(service: str, settings: Settings, config: Config | None, region: str | None) -> Any:
    if config is None:
        config = _MODEL_CONFIG if service in _MODEL_SERVICES else _DEFAULT_CONFIG
    return boto3.session.Session().client(
        service,
        region_name=region or settings.aws_region,
        endpoint_url=_endpoint_for(service, settings),
        config=config,
    )


@lru_cache(maxsize=8)
def _cached_resource(service: str, settings: Settings) -> Any:
    return boto3.session.Session().resource(
        service,
        region_name=settings.aws_region,
        endpoint_url=_endpoint_for(service, settings),
        config=_DEFAULT_CONFIG,
    )
