"""The interaction log: the pipeline records each settled turn; the writer batches them into
date-partitioned JSON Lines in S3 off the request path, loses none at close and never fails the
turn; the reader reads a date range back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.auth import Principal
from strata.chat import ChatCompletionRequest, ChatPipeline, RequestContext
from strata.config import Settings
from strata.interactions import (
    Interaction,
    InteractionReader,
    InteractionWriter,
    InvalidDateRangeError,
    RetrievedChunk,
    build_interaction_writer,
)
from tests.fakes import RecordingRetriever, ScriptedModel, hit, router_for

BUCKET = "strata-documents"
PREFIX = "interactions/"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def interaction(request_id: str, at: datetime, *, tenant: str = "acme", **fields: Any) -> Interaction:
    return Interaction(request_id=request_id, tenant=tenant, at=at, model="default", status="ok", **fields)


def keys(s3: Any) -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def lines(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_a_flush_writes_json_lines_partitioned_by_day_and_hour(s3: Any) -> None:
    writer = InteractionWriter(s3, BUCKET, linger_s=60)
    writer.record(interaction("a" * 32, datetime(2026, 11, 30, 23, 59, tzinfo=UTC)))
    writer.record(interaction("b" * 32, datetime(2026, 12, 1, 9, 5, tzinfo=UTC)))
    writer.record(interaction("c" * 32, datetime(2026, 12, 1, 9, 40, tzinfo=UTC)))
    writer.flush()

    found = keys(s3)
    assert [key.rsplit("-", 1)[0] for key in found] == [
        "interactions/date=2026-11-30/23",
        "interactions/date=2026-12-01/09",
    ]
    assert all(key.endswith(".jsonl") for key in found)
    assert [line["request_id"] for line in lines(s3, found[1])] == ["b" * 32, "c" * 32]
    writer.close()


def test_the_background_thread_writes_after_the_linger_without_a_flush(s3: Any) -> None:
    writer = InteractionWriter(s3, BUCKET, linger_s=0.05)
    writer.record(interaction("a" * 32, datetime.now(UTC)))
    deadline = datetime.now(UTC).timestamp() + 5
    while not keys(s3) and datetime.now(UTC).timestamp() < deadline:
        threading.Event().wait(0.02)
    assert len(keys(s3)) == 1
    writer.close()


def test_close_writes_what_is_still_buffered(s3: Any) -> None:
    writer = InteractionWriter(s3, BUCKET, linger_s=3600)
    for n in range(5):
        writer.record(interaction(f"{n:032x}", datetime(2026, 12, 1, 10, tzinfo=UTC)))
    assert keys(s3) == []  # still lingering
    writer.close()
    assert sum(len(lines(s3, key)) for key in keys(s3)) == 5


def test_a_full_buffer_is_written_at_once(s3: Any) -> None:
    writer = InteractionWriter(s3, BUCKET, linger_s=3600, max_records=3)
    for n in range(3):
        writer.record(interaction(f"{n:032x}", datetime(2026, 12, 1, 10, tzinfo=UTC)))
    deadline = datetime.now(UTC).timestamp() + 5
    while not keys(s3) and datetime.now(UTC).timestamp() < deadline:
        threading.Event().wait(0.02)
    assert sum(len(lines(s3, key)) for key in keys(s3)) == 3
    writer.close()


class BrokenS3:
    def put_object(self, **kwargs: Any) -> None:
        raise ConnectionError("S3 is down")


def test_a_failed_write_is_logged_and_dropped_never_raised() -> None:
    writer = InteractionWriter(BrokenS3(), BUCKET, linger_s=3600)
    writer.record(interaction("a" * 32, datetime(2026, 12, 1, tzinfo=UTC)))
    writer.close()
    assert writer.dropped == 1


def test_records_beyond_the_buffer_bound_are_dropped(s3: Any) -> None:
    writer = InteractionWriter(s3, BUCKET, linger_s=3600, max_records=100, max_buffered=2)
    for n in range(4):
        writer.record(interaction(f"{n:032x}", datetime(2026, 12, 1, tzinfo=UTC)))
    writer.close()
    assert writer.dropped == 2
    assert sum(len(lines(s3, key)) for key in keys(s3)) == 2


def test_the_reader_reads_a_date_range_and_one_tenant(s3: Any) -> None:
    writer = InteractionWriter(s3, BUCKET)
    for day in (1, 2, 3):
        writer.record(interaction(f"{day:032x}", datetime(2026, 12, day, 12, tzinfo=UTC)))
    writer.record(interaction("f" * 32, datetime(2026, 12, 2, 12, tzinfo=UTC), tenant="globex"))
    writer.close()
    reader = InteractionReader(s3, BUCKET)

    assert sorted(i.request_id for i in reader.read(date(2026, 12, 2), date(2026, 12, 3))) == [
        f"{2:032x}",
        f"{3:032x}",
        "f" * 32,
    ]
    assert [i.request_id for i in reader.read(date(2026, 12, 1), date(2026, 12, 3), tenant="globex")] == ["f" * 32]


def test_the_reader_skips_a_line_it_cannot_parse(s3: Any) -> None:
    good = interaction("a" * 32, datetime(2026, 12, 1, tzinfo=UTC)).model_dump_json()
    newer = json.dumps({**json.loads(good), "schema_version": 99})
    body = f"{good}\n{{truncated\n{newer}\n"
    s3.put_object(Bucket=BUCKET, Key="interactions/date=2026-12-01/00-x.jsonl", Body=body.encode())
    found = list(InteractionReader(s3, BUCKET).read(date(2026, 12, 1), date(2026, 12, 1)))
    assert [i.request_id for i in found] == ["a" * 32]


def test_a_range_that_ends_before_it_starts_is_refused(s3: Any) -> None:
    with pytest.raises(InvalidDateRangeError):
        list(InteractionReader(s3, BUCKET).read(date(2026, 12, 2), date(2026, 12, 1)))


# The pipeline's one call.


class ListWriter:
    def __init__(self) -> None:
        self.records: list[Interaction] = []

    def record(self, interaction: Interaction) -> None:
        self.records.append(interaction)


class ExplodingWriter:
    def record(self, interaction: Interaction) -> None:
        raise RuntimeError("the log is broken")


def chat(writer: Any, hits: list) -> ChatPipeline:
    return ChatPipeline(
        retriever=RecordingRetriever(hits),
        router=router_for(ScriptedModel(["Kangaroos ", "eat ", "grass [1]."])),
        settings=Settings(retrieval_min_similarity=0.0),
        interactions=writer,
    )


def ask(pipeline: ChatPipeline, principal: Principal, question: str = "What do kangaroos eat?") -> list:
    request = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": question}]})
    return list(pipeline.stream(pipeline.start(request, principal, RequestContext("e" * 32))))


def test_a_settled_turn_is_recorded_with_its_sources_scores_and_answer() -> None:
    writer = ListWriter()
    source = hit("zoo", 3, 0.9).model_copy(update={"similarity": 0.71})
    ask(chat(writer, [source]), Principal(tenant="acme", key_id="k1", redact_pii=False))

    (record,) = writer.records
    assert (record.request_id, record.tenant, record.key_id, record.status) == ("e" * 32, "acme", "k1", "ok")
    assert record.question == "What do kangaroos eat?"
    assert record.answer == "Kangaroos eat grass [1]."
    assert record.retrieved == [
        RetrievedChunk(document_id="zoo", chunk_index=3, source_key="tenants/acme/zoo.txt", score=0.9, similarity=0.71)
    ]
    assert record.retrieved[0].chunk_id == "zoo#3"
    assert record.top_similarity == 0.71
    assert (record.prompt_name, record.prompt_version) == ("builtin", 0)
    assert [m.role for m in record.messages] == ["system", "user"]
    assert "Kangaroos eat grass." in record.messages[-1].content  # the source, next to the question
    assert record.messages[-1].content.rstrip().endswith("What do kangaroos eat?")
    assert record.validation == "ok"
    assert record.confidence is not None
    assert record.completion_tokens == 3
    assert {"retrieve", "assemble", "first_token", "total"} <= record.latency_ms.keys()


def test_a_redacting_tenants_question_is_redacted_in_the_log() -> None:
    writer = ListWriter()
    ask(chat(writer, []), Principal(tenant="acme", key_id="k1", redact_pii=True), "Mail jane@example.com please")
    assert writer.records[0].question == "Mail [email] please"
    assert all("jane@example.com" not in m.content for m in writer.records[0].messages)


def test_a_broken_interaction_log_never_fails_the_turn() -> None:
    chunks = ask(chat(ExplodingWriter(), []), Principal(tenant="acme", key_id="k1"))
    # Without sources the citation marker is removed; the answer is whole and finished all the same.
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Kangaroos eat grass."
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_the_writer_is_built_for_the_interaction_logs_bucket_or_not_at_all(s3: Any) -> None:
    assert build_interaction_writer(Settings(interaction_log=False)) is None
    writer = build_interaction_writer(Settings(interactions_bucket=BUCKET))
    assert writer is not None
    writer.record(interaction("a" * 32, datetime(2026, 12, 1, 8, tzinfo=UTC)))
    writer.close()
    (key,) = keys(s3)
    assert key.startswith("interactions/date=2026-12-01/08-")
