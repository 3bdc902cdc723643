"""Emitting Strata's CloudWatch metrics; their names and dimensions are defined once in
:mod:`strata.config.metrics` (which the CDK app's dashboard and alarms read too)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from enum import StrEnum

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from strata.config.metrics import (
    BREAKER_DIMENSIONS,
    DEFAULT_NAMESPACE,
    GATEWAY_SERVICE,
    INGEST_DIMENSIONS,
    INGEST_SERVICE,
    NAMESPACE_ENV,
    REQUEST_DIMENSIONS,
    TIMING_METRICS,
    BreakerMetric,
    Dimension,
    IngestMetric,
    RequestMetric,
)

__all__ = (
    "BREAKER_DIMENSIONS",
    "DEFAULT_NAMESPACE",
    "GATEWAY_SERVICE",
    "INGEST_DIMENSIONS",
    "INGEST_SERVICE",
    "NAMESPACE_ENV",
    "REQUEST_DIMENSIONS",
    "TIMING_METRICS",
    "BreakerMetric",
    "Dimension",
    "IngestMetric",
    "RequestMetric",
    "emit_metric",
)

logger = logging.getLogger(__name__)


def emit_metric(
    name: StrEnum,
    value: float,
    unit: MetricUnit,
    *,
    service: str,
    dimensions: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> None:
    """One figure as its own EMF document on stdout, which CloudWatch reads from the function's log.

    For events outside a request (a breaker's transition, a parked message). Never raises: a
    metric must not fail the work it describes. ``namespace`` defaults to Powertools' variable,
    which the CDK app sets to the same namespace as the request log's.
    """
    if is_metrics_disabled():
        return
    try:
        metrics = EphemeralMetrics(
            namespace=namespace or os.getenv(NAMESPACE_ENV) or DEFAULT_NAMESPACE, service=service
        )
        for dimension, dimension_value in (dimensions or {}).items():
            metrics.add_dimension(dimension, dimension_value)
        metrics.add_metric(str(name), unit, value)
        metrics.flush_metrics()
    except Exception:
        logger.exception("emitting the metric %s failed", name)
