"""Every emitter uses the names and dimensions ``strata.observability.metrics`` defines, the ones the
CDK dashboard and alarms read: the request log, the circuit breakers and the ingest handler.

EMF documents are read back from stdout, where Lambda's log picks them up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from strata.inference import BreakerPolicy, CircuitBreakers, InMemoryBreakerStore
from strata.ingest import IngestQueues, handle_sqs_record
from strata.ingest.pipeline import Attempt, IngestResult
from strata.observability import RequestLog, RequestRecord
from strata.observability.metrics import (
    BREAKER_DIMENSIONS,
    DEFAULT_NAMESPACE,
    GATEWAY_SERVICE,
    INGEST_DIMENSIONS,
    INGEST_SERVICE,
    REQUEST_DIMENSIONS,
    TIMING_METRICS,
    BreakerMetric,
    IngestMetric,
    RequestMetric,
)


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)


def _emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents printed since the last call."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def _names(document: dict[str, Any]) -> set[str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {metric["Name"] for metric in directive["Metrics"]}


def _dimensions(document: dict[str, Any]) -> set[str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    (dimension_set,) = directive["Dimensions"]  # one set: CloudWatch keys a metric by all of them
    return set(dimension_set)


def _value(document: dict[str, Any], name: str) -> float:
    (value,) = document[name]  # Powertools writes each metric's values as a list
    return value


def _record(**fields: Any) -> RequestRecord:
    return RequestRecord(
        route="POST /v1/chat/completions",
        status=200,
        outcome="ok",
        request_id="r1",
        model="default",
        timings_ms={stage: 1.0 for stage in TIMING_METRICS},
        **fields,
    )


def test_a_request_emits_exactly_the_defined_names_with_the_defined_dimensions() -> None:
    emitted: list[EphemeralMetrics] = []
    RequestLog(GATEWAY_SERVICE, emit_metrics=emitted.append).write(_record(validation="ok"))

    (metrics,) = emitted
    document = metrics.serialize_metric_set()
    assert _names(document) == {str(name) for name in RequestMetric}
    assert _dimensions(document) == {str(d) for d in REQUEST_DIMENSIONS}
    assert document["service"] == GATEWAY_SERVICE
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == DEFAULT_NAMESPACE


def test_validation_failures_are_emitted_only_for_validated_answers() -> None:
    emitted: list[EphemeralMetrics] = []
    RequestLog(GATEWAY_SERVICE, emit_metrics=emitted.append).write(_record())

    assert RequestMetric.VALIDATION_FAILURES not in _names(emitted[0].serialize_metric_set())


def test_the_gateways_request_log_emits_under_the_searched_service(capsys: pytest.CaptureFixture[str]) -> None:
    from strata.config import Settings
    from strata.web import request_log

    request_log(Settings()).write(_record())

    (document,) = _emitted(capsys)
    assert document["service"] == GATEWAY_SERVICE  # the dashboard's SEARCH filters on it


def test_a_breaker_reports_when_it_opens_and_when_it_closes(capsys: pytest.CaptureFixture[str]) -> None:
    now = [1_000.0]
    policy = BreakerPolicy(failure_rate=0.5, window=2, min_calls=2, cooldown_s=30, cache_ttl_s=0)
    breakers = CircuitBreakers(InMemoryBreakerStore(), policy, clock=lambda: now[0])

    breakers.record_failure("chat-a", "boom")
    assert _emitted(capsys) == []  # one failure of two calls needed: no transition
    breakers.record_failure("chat-a", "boom")
    (opened,) = _emitted(capsys)
    now[0] += 31
    assert breakers.allow("chat-a")  # the half-open probe: not reported
    assert _emitted(capsys) == []
    breakers.record_success("chat-a")
    (closed,) = _emitted(capsys)

    for document, value in ((opened, 1), (closed, 0)):
        assert _names(document) == {BreakerMetric.OPEN}
        assert _dimensions(document) == {str(d) for d in BREAKER_DIMENSIONS}
        assert (document["service"], document["target"], _value(document, BreakerMetric.OPEN)) == (
            GATEWAY_SERVICE,
            "chat-a",
            value,
        )


def test_tripping_and_resetting_a_breaker_are_reported_once_each(capsys: pytest.CaptureFixture[str]) -> None:
    breakers = CircuitBreakers(InMemoryBreakerStore())
    breakers.trip("chat-b", "endpoint deleted")
    breakers.trip("chat-b", "still deleted")  # already open: no transition
    breakers.reset("chat-b")

    assert [_value(d, BreakerMetric.OPEN) for d in _emitted(capsys)] == [1, 0]


class _Pipeline:
    """Answers every S3 record with a fixed result: the handler's side is under test."""

    def __init__(self, result: IngestResult | None) -> None:
        self.result = result

    def apply(self, record: S3EventRecord, *, deadline: float | None, attempt: Attempt) -> IngestResult | None:
        return self.result


class _Sqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **message: Any) -> None:
        self.sent.append(message)


def _sqs_record(body: str) -> SQSRecord:
    return SQSRecord({"messageId": "m1", "body": body, "attributes": {"ApproximateReceiveCount": "1"}})


def _s3_body(event_time: datetime) -> str:
    record = {
        "eventName": "ObjectCreated:Put",
        "eventTime": event_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "s3": {"bucket": {"name": "b"}, "object": {"key": "tenants/acme/a.txt", "size": 1}},
    }
    return json.dumps({"Records": [record]})


def test_a_document_landed_reports_its_lag_from_the_s3_event(capsys: pytest.CaptureFixture[str]) -> None:
    uploaded = datetime.now(UTC) - timedelta(seconds=42)
    handle_sqs_record(_sqs_record(_s3_body(uploaded)), _Pipeline(IngestResult("d1", chunks=3)))  # type: ignore[arg-type]

    (document,) = _emitted(capsys)
    assert _names(document) == {IngestMetric.LAG}
    assert _dimensions(document) == {str(d) for d in INGEST_DIMENSIONS}
    assert document["service"] == INGEST_SERVICE
    assert 42 <= _value(document, IngestMetric.LAG) < 60
    assert document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Seconds"


@pytest.mark.parametrize(
    "result",
    [None, IngestResult("d1", chunks=0), IngestResult("d1", chunks=3, complete=False)],
    ids=["nothing-changed", "nothing-indexed", "continues-in-parts"],
)
def test_no_lag_until_a_document_is_searchable(capsys: pytest.CaptureFixture[str], result: IngestResult | None) -> None:
    handle_sqs_record(_sqs_record(_s3_body(datetime.now(UTC))), _Pipeline(result))  # type: ignore[arg-type]

    assert _emitted(capsys) == []


def test_a_parked_message_counts_as_an_ingest_failure(capsys: pytest.CaptureFixture[str]) -> None:
    sqs = _Sqs()
    queues = IngestQueues(sqs=sqs, queue_url="q", dlq_url="dlq")
    handle_sqs_record(_sqs_record("not json"), _Pipeline(None), queues=queues)  # type: ignore[arg-type]

    assert [m["QueueUrl"] for m in sqs.sent] == ["dlq"]
    (document,) = _emitted(capsys)
    assert _names(document) == {IngestMetric.FAILURES}
    assert (document["service"], _value(document, IngestMetric.FAILURES)) == (INGEST_SERVICE, 1)


def test_nothing_is_emitted_when_metrics_are_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # what the local stack sets
    CircuitBreakers(InMemoryBreakerStore()).trip("chat-c", "down")

    assert _emitted(capsys) == []
