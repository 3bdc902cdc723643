"""The whole request flow on the local stack, driven the way a user drives it."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import openai
import pytest

from strata.documents import document_id_for
from tests.support import DATASET, RunningStack, wait_until

KANGAROO = DATASET / "documents" / "s08_set1_a1_kangaroo.txt"
PENGUIN = DATASET / "documents" / "s08_set1_a3_penguin.txt"


def ask_streaming(stack: RunningStack, question: str, *, key: str | None = None) -> tuple[list[str], dict]:
    client = openai.OpenAI(base_url=stack.api_url, api_key=key or stack.env["STRATA_API_KEY"])
    contents: list[str] = []
    last = None
    for chunk in client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": question}], stream=True, max_tokens=48
    ):
        last = chunk
        for choice in chunk.choices:
            if choice.delta.content:
                contents.append(choice.delta.content)
    assert last is not None
    return contents, (last.model_extra or {}).get("strata") or {}


def test_document_put_with_boto3_is_indexed_and_cited_in_a_streamed_answer(stack: RunningStack) -> None:
    key = f"tenants/{stack.env['STRATA_TENANT']}/animals/kangaroo.txt"
    stack.boto3_client("s3").put_object(
        Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=KANGAROO.read_bytes()
    )

    document = stack.wait_for_status(document_id_for(key), "indexed")
    assert document["chunks"] > 1
    assert document["source_key"] == key

    contents, strata = ask_streaming(stack, "What do kangaroos eat?")
    assert len(contents) > 3, "the answer should arrive in several chunks"
    assert "".join(contents).strip()
    cited = [c["source_key"] for c in strata["citations"]]
    assert cited[0] == key
    assert strata["request_id"]


def test_file_dropped_in_documents_folder_is_indexed_and_cited(stack: RunningStack) -> None:
    target = stack.documents_dir / "penguin.txt"
    shutil.copy(PENGUIN, target)
    key = f"tenants/{stack.env['STRATA_TENANT']}/penguin.txt"

    stack.wait_for_status(document_id_for(key), "indexed")
    contents, strata = ask_streaming(stack, "Where do penguins live?")
    assert len(contents) > 3
    assert strata["citations"][0]["source_key"] == key
    assert strata["citations"][0]["title"]

    target.unlink()  # removing the file removes the document and its chunks
    wait_until(lambda: stack.document(document_id_for(key)) is None, timeout_s=30, what="document removal")
    _, strata = ask_streaming(stack, "Where do penguins live?")
    assert key not in [c["source_key"] for c in strata["citations"]]


def test_buffered_completion_cites_the_indexed_document(stack: RunningStack) -> None:
    key = f"tenants/{stack.env['STRATA_TENANT']}/buffered/kangaroo.txt"
    stack.boto3_client("s3").put_object(
        Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=KANGAROO.read_bytes()
    )
    stack.wait_for_status(document_id_for(key), "indexed")
    with stack.http() as client:
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": "default",
                "max_tokens": 24,
                "messages": [{"role": "user", "content": "How do kangaroos move?"}],
                "strata": {"retrieval": {"document_ids": [document_id_for(key)]}},
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] > 0
    citations = body["strata"]["citations"]
    assert citations, "the indexed document was given to the model as a source"
    assert {c["source_key"] for c in citations} == {key}
    assert [c["index"] for c in citations] == list(range(1, len(citations) + 1))
    assert all(c["document_id"] == document_id_for(key) and c["title"] for c in citations)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-strata-not-a-real-key"}])
def test_request_without_a_valid_key_gets_401_in_openai_error_shape(stack: RunningStack, headers: dict) -> None:
    response = httpx.post(
        f"{stack.api_url}/chat/completions",
        headers=headers,
        timeout=30,
        json={"model": "default", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"
    assert error["message"]

    client = openai.OpenAI(base_url=stack.api_url, api_key="sk-strata-wrong")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])


def test_unknown_model_is_a_404(stack: RunningStack) -> None:
    client = openai.OpenAI(base_url=stack.api_url, api_key=stack.env["STRATA_API_KEY"])
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-unknown", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["code"] == "model_not_found"


def test_bad_documents_fail_with_a_reason_without_blocking_their_batch_and_end_in_the_dlq(
    stack: RunningStack,
) -> None:
    tenant = stack.env["STRATA_TENANT"]
    s3 = stack.boto3_client("s3")
    bucket = stack.env["STRATA_DOCUMENTS_BUCKET"]
    bad = {
        f"tenants/{tenant}/bad/broken.pdf": b"%PDF-1.7 this is not really a pdf",
        f"tenants/{tenant}/bad/program.exe": b"MZ\x90\x00\x03" * 100,
    }
    good = f"tenants/{tenant}/bad/fine.md"
    for key, body in bad.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key=good, Body=b"# Fine\n\nThe quokka is a small marsupial from Western Australia.")

    stack.wait_for_status(document_id_for(good), "indexed")
    for key in bad:
        failed = stack.wait_for_status(document_id_for(key), "failed")
        assert failed["reason"]
    assert "pdf" in stack.document(document_id_for(next(iter(bad))))["reason"].lower()

    sqs = stack.boto3_client("sqs")
    dlq_url = sqs.get_queue_url(QueueName="strata-ingest-dlq")["QueueUrl"]
    dead: set[str] = set()

    def all_dead_lettered() -> bool:
        for message in sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        ):
            for record in json.loads(message["Body"]).get("Records", []):
                from urllib.parse import unquote_plus

                dead.add(unquote_plus(record["s3"]["object"]["key"]))
        return set(bad) <= dead

    wait_until(all_dead_lettered, timeout_s=60, interval_s=0.5, what="the bad documents in the DLQ")
    assert good not in dead


def test_keys_created_with_the_cli_belong_to_their_tenant_only(stack: RunningStack) -> None:
    result = stack.cli("keys", "create", "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-strata-")

    # The new key works, and its tenant sees none of the dev tenant's documents.
    _, strata = ask_streaming(stack, "What do kangaroos eat?", key=secret)
    assert strata["citations"] == []
    with stack.http(secret) as client:
        assert client.get("/v1/documents").json()["data"] == []

    bad = stack.cli("keys", "create", "--tenant", "Not A Tenant")
    assert bad.returncode == 2
    assert "invalid tenant" in bad.stderr


def test_the_openapi_document_is_served_without_a_key(stack: RunningStack) -> None:
    document = httpx.get(stack.base_url + "/openapi.json", timeout=10).json()
    assert "/v1/chat/completions" in document["paths"]


def test_the_chat_page_is_served(stack: RunningStack) -> None:
    page = httpx.get(stack.base_url + "/", timeout=10)
    assert page.status_code == 200
    assert "<title>Strata</title>" in page.text
    assert httpx.get(stack.base_url + "/js/main.js", timeout=10).status_code == 200
    assert httpx.get(stack.base_url + "/config.json", timeout=10).json() == {"apiBaseUrl": "/v1"}
    assert "connect-src 'self'" in page.headers["content-security-policy"]


def test_stream_starts_before_generation_ends(stack: RunningStack) -> None:
    """Token by token: the first content chunk arrives well before the last one."""
    with (
        stack.http() as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "default",
                "stream": True,
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Describe kangaroos in detail."}],
            },
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        arrivals = []
        for line in response.iter_lines():
            if line.startswith("data:") and '"content"' in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) > 10
    assert arrivals[-1] - arrivals[0] > 0.2


def test_a_prompt_longer_than_the_models_window_is_a_400_not_an_outage(stack: RunningStack) -> None:
    client = openai.OpenAI(base_url=stack.api_url, api_key=stack.env["STRATA_API_KEY"])
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="default", stream=True, messages=[{"role": "user", "content": "kangaroo " * 3000}]
        )
    assert raised.value.body["type"] == "invalid_request_error"


def test_a_tenants_prompt_version_is_rendered_pinned_and_named_in_the_answer(stack: RunningStack) -> None:
    key = f"tenants/{stack.env['STRATA_TENANT']}/prompted/kangaroo.txt"
    stack.boto3_client("s3").put_object(
        Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=KANGAROO.read_bytes()
    )
    stack.wait_for_status(document_id_for(key), "indexed")
    with stack.http() as client:
        first = client.post(
            "/v1/prompts",
            json={
                "name": "animals",
                "template": "Answer {{ audience }} in one short sentence, citing sources like [1].",
                "variables": [{"name": "audience", "default": "a child"}],
                "labels": ["production"],
            },
        )
        second = client.post("/v1/prompts", json={"name": "animals", "template": "Answer in French."})
        assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
        assert (first.json()["version"], second.json()["version"]) == (1, 2)

        def ask(selector: dict) -> dict:
            response = client.post(
                "/v1/chat/completions",
                json={
                    "model": "default",
                    "max_tokens": 32,
                    "messages": [{"role": "user", "content": "What do kangaroos eat?"}],
                    "strata": {"prompt": selector, "retrieval": {"document_ids": [document_id_for(key)]}},
                },
            )
            assert response.status_code == 200, response.text
            return response.json()["strata"]

        production = ask({"name": "animals", "variables": {"audience": "a farmer"}})
        pinned = ask({"name": "animals", "version": 2})
        missing = client.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "Hi"}],
                "strata": {"prompt": {"name": "animals", "version": 1, "variables": {"colour": "red"}}},
            },
        )

    assert production["prompt"] == {"name": "animals", "version": 1}  # the production label
    assert pinned["prompt"] == {"name": "animals", "version": 2}
    assert missing.status_code == 400 and "colour" in missing.json()["error"]["message"]
    context = production["context"]
    assert context["sources_used"] >= 1 and context["prompt_tokens"] <= context["budget"]
    assert production["confidence"] is None or 0 <= production["confidence"] <= 1
    assert set(production["validation"]) >= {"citations_removed", "redacted", "loop_stopped"}
