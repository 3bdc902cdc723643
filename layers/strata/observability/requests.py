"""The request log: one structured record per request, and its figures as EMF metrics.

The record goes through the ``strata.requests`` logger (JSON through Powertools in Lambda, one
readable line locally); the metrics are one CloudWatch embedded-metric document per request
(Powertools' ``EphemeralMetrics``: nothing shared between concurrent requests). Prompt and
answer text appear only when ``log_content`` is set, and redacted then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from strata.observability.metrics import TIMING_METRICS, Dimension, RequestMetric
from strata.observability.redact import redact

logger = logging.getLogger("strata.requests")


@dataclass(slots=True)
class RequestRecord:
    route: str
    status: int
    outcome: str  # ok | error | rate_limited | client_disconnected | stream_broken
    request_id: str
    correlation_id: str = ""
    tenant: str = ""
    key_id: str = ""
    model: str | None = None
    target: str | None = None
    prompt_version: str | None = None
    stream: bool = False
    cache_hit: bool = False
    failovers: int = 0
    validation: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    prompt: str | None = None
    answer: str | None = None


class RequestLog:
    def __init__(
        self,
        service: str,
        *,
        namespace: str = "Strata",
        log_content: bool = False,
        emit_metrics: Callable[[EphemeralMetrics], None] | None = None,
    ) -> None:
        self._service = service
        self._namespace = namespace
        self._log_content = log_content
        self._emit = emit_metrics or (lambda metrics: metrics.flush_metrics())
        # Locally (POWERTOOLS_METRICS_DISABLED) nothing would read them: do not build them.
        self._metrics_on = emit_metrics is not None or not is_metrics_disabled()

    def write(self, record: RequestRecord) -> None:
        try:
            fields = self._fields(record)
            summary = _summary(record)
            for name in ("prompt", "answer"):  # the readable line says what the record says
                if name in fields:
                    summary += f" {name}={json.dumps(fields[name], ensure_ascii=False)}"
            logger.info(summary, extra={"request": fields})
            if self._metrics_on:
                self._emit(self._metrics(record))
        except Exception:  # the log must never fail a request that succeeded
            logger.exception("writing the request record failed")

    def _fields(self, record: RequestRecord) -> dict[str, Any]:
        fields = {k: v for k in RequestRecord.__slots__ if (v := getattr(record, k)) not in (None, "", {})}
        fields.pop("prompt", None)
        fields.pop("answer", None)
        if self._log_content:
            if record.prompt is not None:
                fields["prompt"] = redact(record.prompt)
            if record.answer is not None:
                fields["answer"] = redact(record.answer)
        return fields

    def _metrics(self, record: RequestRecord) -> EphemeralMetrics:
        metrics = EphemeralMetrics(namespace=self._namespace, service=self._service)
        metrics.add_dimension(Dimension.ROUTE, record.route)
        if record.model:
            metrics.add_dimension(Dimension.MODEL, record.model)
        for stage, value in record.timings_ms.items():
            if stage in TIMING_METRICS:
                metrics.add_metric(TIMING_METRICS[stage], MetricUnit.Milliseconds, value)
        metrics.add_metric(RequestMetric.REQUESTS, MetricUnit.Count, 1)
        metrics.add_metric(RequestMetric.PROMPT_TOKENS, MetricUnit.Count, record.prompt_tokens)
        metrics.add_metric(RequestMetric.COMPLETION_TOKENS, MetricUnit.Count, record.completion_tokens)
        metrics.add_metric(RequestMetric.CACHE_HITS, MetricUnit.Count, int(record.cache_hit))
        metrics.add_metric(RequestMetric.RATE_LIMITED, MetricUnit.Count, int(record.outcome == "rate_limited"))
        failed = record.status >= 500 or record.outcome == "stream_broken"
        metrics.add_metric(RequestMetric.ERRORS, MetricUnit.Count, int(failed))
        if record.validation is not None:
            metrics.add_metric(RequestMetric.VALIDATION_FAILURES, MetricUnit.Count, int(record.validation != "ok"))
        metrics.add_metadata("request_id", record.request_id)
        if record.correlation_id:
            metrics.add_metadata("correlation_id", record.correlation_id)
        return metrics


def _summary(record: RequestRecord) -> str:
    """The record as one readable line (what the local console shows)."""
    parts = [f"{record.route} {record.status} {record.outcome}", f"tenant={record.tenant}"]
    if record.model:
        parts.append(
            f"model={record.model}" + (f"→{record.target}" if record.target not in (None, record.model) else "")
        )
    if record.prompt_tokens or record.completion_tokens:
        parts.append(f"tokens={record.prompt_tokens}+{record.completion_tokens}")
    if record.cache_hit:
        parts.append("cache_hit")
    if record.validation not in (None, "ok"):
        parts.append(f"validation={record.validation}")
    parts.append(" ".join(f"{stage}={ms:.1f}ms" for stage, ms in record.timings_ms.items()))
    if record.error:
        parts.append(f"error={record.error}")
    return "request " + " ".join(parts) + f" id={record.request_id}"
