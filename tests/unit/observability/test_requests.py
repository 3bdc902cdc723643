from __future__ import annotations

import json
import logging

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from strata.observability import RequestLog, RequestRecord, redact


def record(**fields) -> RequestRecord:
    return RequestRecord(
        route="POST /v1/chat/completions",
        status=200,
        outcome="ok",
        request_id="r1",
        tenant="acme",
        model="default",
        prompt_tokens=12,
        completion_tokens=5,
        timings_ms={"admit": 0.1, "first_token": 4.0, "total": 9.5},
        **fields,
    )


def test_one_record_per_request_and_its_figures_as_one_emf_document(caplog: pytest.LogCaptureFixture) -> None:
    emitted: list[EphemeralMetrics] = []
    caplog.set_level(logging.INFO, logger="strata.requests")
    RequestLog("chat", emit_metrics=emitted.append).write(record(prompt="hi", answer="yo"))

    (line,) = caplog.records
    assert line.getMessage().startswith("request POST /v1/chat/completions 200 ok tenant=acme model=default")
    assert "tokens=12+5" in line.getMessage()
    assert "prompt" not in line.request and "answer" not in line.request  # content off by default
    (metrics,) = emitted
    document = metrics.serialize_metric_set()
    names = {m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Latency", "TimeToFirstToken", "AdmitLatency", "PromptTokens", "CompletionTokens", "RateLimited"} <= names
    assert document["Latency"] == [9.5] and document["route"] == "POST /v1/chat/completions"
    assert json.dumps(document)  # serializable as the EMF line CloudWatch reads


def test_content_is_logged_only_when_configured_and_then_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="strata.requests")
    prompt = "Write to jane@example.com with sk-strata-abcdefghijkl-SECRETSECRETSECRET and card 4111 1111 1111 1111"
    RequestLog("chat", log_content=True, emit_metrics=lambda m: None).write(record(prompt=prompt, answer="ok"))

    logged = caplog.records[0].request["prompt"]
    assert logged == "Write to [email] with [api_key] and card [card]"
    assert "SECRET" not in repr(caplog.records[0].__dict__)


def test_a_failing_log_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: EphemeralMetrics) -> None:
        raise OSError("stdout closed")

    RequestLog("chat", emit_metrics=broken).write(record())  # does not raise
    assert "writing the request record failed" in caplog.text


def test_redact_leaves_plain_text_alone() -> None:
    assert redact("Kangaroos eat grass in 2024.") == "Kangaroos eat grass in 2024."
