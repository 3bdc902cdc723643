"""``strata report`` and ``strata export finetune``: the report's sections and charts from a
synthetic log, the retrain / re-index signal firing on injected drift and only then, the export
keeping only well-rated answers in OpenAI's fine-tuning shape, and both commands end to end
against moto's S3 and DynamoDB."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench.synthetic_interactions import generate
from strata import aws
from strata.config import Settings
from strata.documents import DocumentRecord, DocumentStatus
from strata.feedback import Feedback, FeedbackStore
from strata.interactions import Interaction, InteractionWriter, LoggedMessage, RetrievedChunk
from strata_local.aws import create_buckets, create_tables
from strata_local.report import (
    CHARTS,
    ReportInputs,
    add_report_commands,
    build_report,
    drift_signal,
    finetune_examples,
)

UNTIL = date(2026, 11, 30)
PNG = b"\x89PNG\r\n\x1a\n"


def interaction(
    n: int, day: date, *, similarity: float | None = 0.8, confidence: float | None = 0.9, **fields: Any
) -> Interaction:
    retrieved = (
        []
        if similarity is None
        else [RetrievedChunk(document_id="faq", chunk_index=0, score=1.0, similarity=similarity)]
    )
    values: dict[str, Any] = {
        "request_id": f"{n:032x}",
        "tenant": "acme",
        "at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        "model": "default",
        "status": "ok",
        "question": "What is the refund policy?",
        "answer": "Refunds are paid within 14 days [1].",
        "retrieved": retrieved,
        "confidence": confidence,
        "latency_ms": {"first_token": 300.0, "total": 1200.0},
        "prompt_tokens": 500,
        "completion_tokens": 40,
    }
    return Interaction(**(values | fields))


def two_weeks(*, weak_last_week: int) -> list[Interaction]:
    """30 answers a day for 14 days; ``weak_last_week`` of each day's answers in the last 7 days
    find only a weak source."""
    found, n = [], 0
    for offset in range(14):
        day = UNTIL - timedelta(days=13 - offset)
        for index in range(30):
            weak = offset >= 7 and index < weak_last_week
            found.append(interaction(n, day, similarity=0.3 if weak else 0.8))
            n += 1
    return found


def feedback_on(record: Interaction, rating: int, comment: str | None = None) -> Feedback:
    return Feedback(
        tenant=record.tenant,
        request_id=record.request_id,
        rating=rating,
        comment=comment,
        key_id="k1",
        created_at=record.at,
    )


# The signal.


def test_the_signal_fires_when_weak_retrieval_drifts_and_asks_for_a_reindex() -> None:
    signal = drift_signal(two_weeks(weak_last_week=6), {}, until=UNTIL)  # 0% → 20%
    weak = next(rate for rate in signal.rates if rate.name == "weak_retrieval")
    assert (weak.previous, weak.current, weak.fired) == (0.0, 0.2, True)
    assert signal.fired
    assert [action.split(":")[0] for action in signal.actions] == ["re-index"]


def test_the_signal_stays_quiet_below_the_threshold() -> None:
    signal = drift_signal(two_weeks(weak_last_week=2), {}, until=UNTIL)  # 0% → 6.7%: under 10 points
    assert not signal.fired
    assert signal.actions == []


def test_the_signal_needs_enough_answers_in_both_windows() -> None:
    sparse = [i for i in two_weeks(weak_last_week=30) if int(i.request_id, 16) % 30 == 0]  # one a day
    assert not drift_signal(sparse, {}, until=UNTIL).fired


def test_negative_feedback_drift_asks_for_a_retrain() -> None:
    records = two_weeks(weak_last_week=0)
    feedback = {}
    for record in records:
        recent = record.at.date() > UNTIL - timedelta(days=7)
        down = recent and int(record.request_id, 16) % 3 == 0  # a third of the last week's ratings
        feedback[(record.tenant, record.request_id)] = feedback_on(record, -1 if down else 1)
    signal = drift_signal(records, feedback, until=UNTIL)
    assert [rate.name for rate in signal.rates if rate.fired] == ["negative_feedback"]
    assert [action.split(":")[0] for action in signal.actions] == ["retrain"]


def test_the_sample_log_fires_with_its_drift_and_not_without() -> None:
    assert drift_signal(*_log(generate(drift=True)), until=UNTIL).fired
    assert not drift_signal(*_log(generate(drift=False)), until=UNTIL).fired


def _log(inputs: ReportInputs) -> tuple[list[Interaction], dict]:
    return inputs.interactions, inputs.feedback


# The report.


def test_the_report_has_its_sections_and_charts(tmp_path: Path) -> None:
    records = two_weeks(weak_last_week=6)
    records[-1] = interaction(9999, UNTIL, confidence=0.2, question="Where is the v3 guide?")
    feedback = {("acme", records[-1].request_id): feedback_on(records[-1], -1, "Nothing about v3")}
    documents = [
        DocumentRecord(
            tenant="acme",
            document_id="faq",
            source_key="tenants/acme/faq.md",
            status=DocumentStatus.INDEXED,
            updated_at="x",
        ),
        DocumentRecord(
            tenant="acme",
            document_id="old",
            source_key="tenants/acme/old.md",
            status=DocumentStatus.INDEXED,
            updated_at="x",
        ),
        DocumentRecord(
            tenant="acme",
            document_id="scan",
            source_key="tenants/acme/scan.pdf",
            status=DocumentStatus.FAILED,
            reason="PDF has no text layer (scanned?): 0 of 12 pages have text",
            updated_at="x",
        ),
    ]
    inputs = ReportInputs(UNTIL - timedelta(days=13), UNTIL, records, feedback, documents)

    text = build_report(inputs, tmp_path).read_text()

    for heading in (
        "## Retrain / re-index signal",
        "## Top questions",
        "## Low-confidence answers",
        "## Questions with weak retrieval",
        "## Negative feedback",
        "## Documents never retrieved",
        "## Ingestion failures by reason",
        "## Latency and tokens per day",
        "## How the signal is computed",
    ):
        assert heading in text
    assert "**FIRING**" in text
    assert "| What is the refund policy? | 419 |" in text
    assert "Where is the v3 guide?" in text and "Nothing about v3" in text
    assert "`tenants/acme/old.md`" in text and "`tenants/acme/faq.md`" not in text
    assert "| PDF has no text layer (scanned?): N of N pages have text | 1 |" in text
    for chart in CHARTS:
        assert (tmp_path / chart).read_bytes().startswith(PNG)
        assert f"]({chart})" in text


def test_a_quiet_log_reports_no_action(tmp_path: Path) -> None:
    inputs = ReportInputs(UNTIL - timedelta(days=13), UNTIL, two_weeks(weak_last_week=0), {}, [])
    text = build_report(inputs, tmp_path).read_text()
    assert "**quiet**" in text
    assert "no action" in text


# The export.


def test_the_export_keeps_only_well_rated_complete_answers_in_openais_shape() -> None:
    messages = [
        LoggedMessage(role="system", content="Answer from the sources."),
        LoggedMessage(role="user", content='<source id="1">…</source>\nRefunds?'),
    ]
    liked = interaction(1, UNTIL, messages=messages)
    disliked = interaction(2, UNTIL, messages=messages)
    unrated = interaction(3, UNTIL, messages=messages)
    broken = interaction(4, UNTIL, messages=messages, status="stream_broken")
    other_tenant = interaction(5, UNTIL, tenant="globex")
    feedback = {
        ("acme", liked.request_id): feedback_on(liked, 1),
        ("acme", disliked.request_id): feedback_on(disliked, -1),
        ("acme", broken.request_id): feedback_on(broken, 1),
        ("acme", other_tenant.request_id): feedback_on(liked, 1),  # same id, but another tenant's record
    }

    examples = finetune_examples([liked, disliked, unrated, broken, other_tenant], feedback)

    assert examples == [
        {
            "messages": [
                {"role": "system", "content": "Answer from the sources."},
                {"role": "user", "content": '<source id="1">…</source>\nRefunds?'},
                {"role": "assistant", "content": "Refunds are paid within 14 days [1]."},
            ]
        }
    ]


# The commands, end to end.


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in ("STRATA_AWS_ENDPOINT_URL", "STRATA_DOCUMENTS_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    aws._cached_client.cache_clear()
    aws._cached_resource.cache_clear()
    with mock_aws():
        create_buckets(boto3.client("s3", region_name="us-east-1"))
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield Settings()
    aws._cached_client.cache_clear()
    aws._cached_resource.cache_clear()


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="strata")
    add_report_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_report_and_export_read_the_log_and_feedback_the_settings_point_at(stack: Settings, tmp_path: Path) -> None:
    writer = InteractionWriter(aws.client("s3", stack), stack.interactions_bucket, prefix=stack.interactions_prefix)
    records = two_weeks(weak_last_week=6)
    for record in records:
        writer.record(record)
    writer.close()
    store = FeedbackStore(aws.resource("dynamodb", stack).Table(stack.feedback_table))
    store.put("acme", records[0].request_id, rating=1, key_id="k1")
    store.put("acme", records[1].request_id, rating=-1, comment="wrong", key_id="k1")
    state = ["--state-dir", str(tmp_path / "no-state"), "--since", "2026-11-17", "--until", "2026-11-30"]

    assert run(["report", *state, "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "420 answered" in text and "**FIRING**" in text and "| wrong |" in text

    out = tmp_path / "finetune.jsonl"
    assert run(["export", "finetune", *state, "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [
        {
            "messages": [
                {"role": "user", "content": "What is the refund policy?"},
                {"role": "assistant", "content": "Refunds are paid within 14 days [1]."},
            ]
        }
    ]


def test_a_range_that_ends_before_it_starts_is_an_error(stack: Settings, tmp_path: Path, capsys: Any) -> None:
    assert run(["report", "--state-dir", str(tmp_path), "--since", "2026-11-30", "--until", "2026-11-01"]) == 1
    assert "before" in capsys.readouterr().err
