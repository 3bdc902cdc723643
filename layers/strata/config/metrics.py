"""Strata's CloudWatch metrics, defined once: names, dimensions, and who emits them.

The gateway's request log (:mod:`strata.observability.requests`), the circuit breakers and the
ingest handler emit these names; the CDK app's dashboard and alarms read them from here, so a
renamed metric cannot leave a graph silently empty. A CloudWatch metric is its name *and* its
exact set of dimensions: each family below says which dimensions its documents carry.

=================  =========================================  ============================
family             dimensions                                 emitted by
=================  =========================================  ============================
RequestMetric      service=:data:`GATEWAY_SERVICE`, route,     the request log, one EMF
                   model                                      document per request
BreakerMetric      service=:data:`GATEWAY_SERVICE`, target     a breaker's transition
IngestMetric       service=:data:`INGEST_SERVICE`              the ingest record handler
=================  =========================================  ============================

Powertools adds the ``service`` dimension from the service it is given. Names only (no
Powertools, no CDK): :mod:`strata.observability.metrics` emits them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from strata.config.settings import Settings

GATEWAY_SERVICE = "strata"
"""The ``service`` dimension of the request log and the breakers (chat and api run one gateway)."""
INGEST_SERVICE = "strata-ingest"
"""The ``service`` dimension of the ingest function's metrics (its ``POWERTOOLS_SERVICE_NAME``)."""
NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_NAMESPACE: str = Settings.model_fields["metrics_namespace"].default


class Dimension(StrEnum):
    SERVICE = "service"
    ROUTE = "route"  # "POST /v1/chat/completions"
    MODEL = "model"  # the model the client asked for
    TARGET = "target"  # a model target of the registry (a breaker's key)


class RequestMetric(StrEnum):
    """One EMF document per request (``RequestLog``); timings in milliseconds."""

    REQUESTS = "Requests"
    LATENCY = "Latency"
    TIME_TO_FIRST_TOKEN = "TimeToFirstToken"
    AUTH_LATENCY = "AuthLatency"
    QUEUE_LATENCY = "QueueLatency"
    ADMIT_LATENCY = "AdmitLatency"
    RETRIEVE_LATENCY = "RetrieveLatency"
    ASSEMBLE_LATENCY = "AssembleLatency"
    PROMPT_TOKENS = "PromptTokens"
    COMPLETION_TOKENS = "CompletionTokens"
    CACHE_HITS = "CacheHits"
    RATE_LIMITED = "RateLimited"  # answered 429
    ERRORS = "Errors"  # a 5xx, or a stream that broke after it started
    VALIDATION_FAILURES = "ValidationFailures"  # only on requests whose answer was validated


REQUEST_DIMENSIONS: tuple[Dimension, ...] = (Dimension.SERVICE, Dimension.ROUTE, Dimension.MODEL)

TIMING_METRICS: Mapping[str, RequestMetric] = MappingProxyType(
    {
        "auth": RequestMetric.AUTH_LATENCY,
        "queue": RequestMetric.QUEUE_LATENCY,
        "admit": RequestMetric.ADMIT_LATENCY,
        "retrieve": RequestMetric.RETRIEVE_LATENCY,
        "assemble": RequestMetric.ASSEMBLE_LATENCY,
        "first_token": RequestMetric.TIME_TO_FIRST_TOKEN,
        "total": RequestMetric.LATENCY,
    }
)
"""A request record's timing stages (``timings_ms`` keys) that become metrics."""


class BreakerMetric(StrEnum):
    OPEN = "BreakerOpen"  # 1 when a target's breaker opens, 0 when it closes (on transitions only)


BREAKER_DIMENSIONS: tuple[Dimension, ...] = (Dimension.SERVICE, Dimension.TARGET)


class IngestMetric(StrEnum):
    LAG = "IngestLag"  # seconds from the S3 event to the document searchable
    FAILURES = "IngestFailures"  # messages parked in the DLQ as permanent failures


INGEST_DIMENSIONS: tuple[Dimension, ...] = (Dimension.SERVICE,)
