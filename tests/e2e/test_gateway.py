"""The gateway on the local stack, in front of a mock upstream: the official clients, keys and
scopes, rate limits exact under concurrency, token reservations that reconcile to the usage,
tenant isolation, and logs that hold no secret."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import openai
import pytest

from bench.common import start_strata_with_models
from bench.mock_upstream import Behaviour, MockUpstream
from strata.inference import token_counter
from tests.support import RunningStack, wait_until

ANSWER = "".join(f"tok{i} " for i in range(20))
QUESTION = [{"role": "user", "content": "What do kangaroos eat?"}]
NO_RETRIEVAL = {"retrieval": {"enabled": False}, "cache": False}


@dataclass
class Gateway:
    stack: RunningStack
    upstream: MockUpstream

    def key(self, tenant: str, *options: str) -> str:
        secret = self.stack.create_key(tenant, *options)
        assert secret.startswith("sk-strata-")
        return secret

    def http(self, key: str) -> httpx.Client:
        return self.stack.http(key)

    def usage(self, key: str) -> dict:
        with self.http(key) as client:
            response = client.get("/v1/usage")
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    with MockUpstream(Behaviour(seed=3)) as upstream:
        default = {
            "provider": "openai",
            "base_url": upstream.base_url,
            "model": "mock",
            "context_window": 8192,
            "max_output_tokens": 64,
        }
        stack = start_strata_with_models(workdir, {"default": default}, env={"STRATA_LOG_CONTENT": "true"})
        try:
            yield Gateway(stack, upstream)
        finally:
            stack.stop()


@pytest.fixture(autouse=True)
def healthy_upstream(gateway: Gateway) -> None:
    gateway.upstream.configure(cut_rate=0.0, chunk_delay_s=0.0, error_rate=0.0)


def test_the_openai_sdk_buffered_and_streamed_with_usage_and_rate_limit_headers(gateway: Gateway) -> None:
    key = gateway.key("sdk", "--rpm", "10", "--tpm", "1000000")
    client = openai.OpenAI(base_url=gateway.stack.api_url, api_key=key)

    raw = client.chat.completions.with_raw_response.create(
        model="default", messages=QUESTION, max_tokens=32, extra_body={"strata": NO_RETRIEVAL}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == ANSWER
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    assert raw.headers["x-ratelimit-limit-requests"] == "10"
    assert raw.headers["x-ratelimit-remaining-requests"] == "9"  # one refills every 6 s
    assert raw.headers["x-ratelimit-limit-tokens"] == "1000000"

    chunks = list(
        client.chat.completions.create(
            model="default",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"strata": NO_RETRIEVAL},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    embedded = client.embeddings.create(model="default", input=["kangaroos eat grass", "wombats dig"])
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 384
    assert embedded.usage.prompt_tokens > 4  # counted with the embedding model's tokenizer


def test_langchain_chat_openai_invokes_and_streams_with_usage(gateway: Gateway) -> None:
    from langchain_openai import ChatOpenAI

    key = gateway.key("langchain")
    model = ChatOpenAI(
        base_url=gateway.stack.api_url,
        api_key=key,
        model="default",
        max_tokens=32,
        stream_usage=True,
        extra_body={"strata": NO_RETRIEVAL},
    )
    message = model.invoke("What do kangaroos eat?")
    assert message.content == ANSWER
    assert message.usage_metadata["output_tokens"] > 0
    assert message.usage_metadata["total_tokens"] == (
        message.usage_metadata["input_tokens"] + message.usage_metadata["output_tokens"]
    )

    pieces = list(model.stream("What do kangaroos eat?"))
    assert "".join(piece.content for piece in pieces) == ANSWER
    assert sum((piece.usage_metadata or {}).get("output_tokens", 0) for piece in pieces) > 0


def test_64_workers_on_one_key_limited_to_100_requests_a_minute_get_exactly_the_limit(gateway: Gateway) -> None:
    key = gateway.key("burst", "--rpm", "100")
    body = {"model": "default", "messages": QUESTION, "max_tokens": 8, "strata": NO_RETRIEVAL}
    attempts_per_worker = 5

    def worker(_: int) -> list[tuple[int, dict[str, str], dict]]:
        seen = []
        with gateway.http(key) as client:
            for _ in range(attempts_per_worker):
                response = client.post("/v1/chat/completions", json=body)
                seen.append((response.status_code, dict(response.headers), response.json()))
        return seen

    began = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        results = [result for batch in pool.map(worker, range(64)) for result in batch]
    elapsed = time.monotonic() - began

    admitted = sum(1 for status, _, _ in results if status == 200)
    refused = [(headers, body) for status, headers, body in results if status == 429]
    assert admitted + len(refused) == 64 * attempts_per_worker
    assert 100 <= admitted <= 100 + 100 * elapsed / 60, (admitted, elapsed)
    headers, error = refused[0]
    assert error["error"]["code"] == "rate_limit_exceeded" and error["error"]["type"] == "requests"
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert headers["x-ratelimit-remaining-requests"] == "0"


def _stream(gateway: Gateway, key: str, *, read: int | None = None) -> tuple[str, dict | None, dict | None]:
    """Text, usage chunk and error event of one streamed answer (``read``: leave after that many
    content chunks)."""
    body = {
        "model": "default",
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
        "strata": NO_RETRIEVAL,
    }
    text, usage, error, contents = "", None, None, 0
    with gateway.http(key) as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            if "error" in event:
                error = event["error"]
                continue
            usage = event.get("usage") or usage
            for choice in event.get("choices", []):
                if choice["delta"].get("content"):
                    text += choice["delta"]["content"]
                    contents += 1
            if read is not None and contents >= read:
                break
    return text, usage, error


def _tokens_today(gateway: Gateway, key: str) -> int:
    return gateway.usage(key)["tenant"]["tokens_today"]


def test_token_reservations_reconcile_to_the_reported_usage_also_when_the_stream_breaks(gateway: Gateway) -> None:
    key = gateway.key("ledger", "--tpm", "100000")
    assert _tokens_today(gateway, key) == 0

    text, usage, error = _stream(gateway, key)
    assert text == ANSWER and error is None
    assert _tokens_today(gateway, key) == usage["total_tokens"]

    with gateway.http(key) as client:
        body = {"model": "default", "messages": QUESTION, "strata": NO_RETRIEVAL}
        buffered = client.post("/v1/chat/completions", json=body).json()["usage"]
    expected = usage["total_tokens"] + buffered["total_tokens"]
    assert _tokens_today(gateway, key) == expected

    gateway.upstream.configure(cut_rate=1.0, cut_after=5)  # the upstream drops the stream
    text, broken, error = _stream(gateway, key)
    assert error is not None and error["code"] == "model_unavailable"
    assert text and text != ANSWER
    assert broken["completion_tokens"] == token_counter(None).count(text)  # what was sent, to the token
    expected += broken["total_tokens"]
    assert _tokens_today(gateway, key) == expected


def test_a_client_that_leaves_is_charged_what_was_generated_for_it(gateway: Gateway) -> None:
    key = gateway.key("leaver")
    gateway.upstream.configure(chunk_delay_s=0.05)
    text, _, _ = _stream(gateway, key, read=3)
    assert text.count("tok") == 3

    def settled() -> dict | None:
        records = [
            line for line in _request_lines(gateway) if "tenant=leaver" in line and "client_disconnected" in line
        ]
        return records[-1] if records else None

    record = wait_until(settled, timeout_s=10, what="the request record of the abandoned stream")
    prompt, completion = map(int, re.search(r"tokens=(\d+)\+(\d+)", record).groups())
    assert 3 <= completion < 20  # more than the client read (in flight), less than the whole answer
    assert _tokens_today(gateway, key) == prompt + completion


def _request_lines(gateway: Gateway) -> list[str]:
    log = gateway.stack.state_dir / "logs" / "strata.log"
    return [line for line in log.read_text(errors="replace").splitlines() if "strata.requests" in line]


def test_scopes_keep_a_chat_key_out_of_admin_routes(gateway: Gateway) -> None:
    chat = gateway.key("scoped", "--scopes", "chat")
    admin = gateway.key("scoped", "--scopes", "chat,admin")
    with gateway.http(chat) as client:
        assert client.get("/v1/keys").status_code == 403
        assert client.put("/v1/limits", json={"requests_per_minute": 5}).status_code == 403
        assert client.post("/v1/prompts", json={"name": "p", "template": "t"}).status_code == 403
        denied = client.post("/v1/documents", json={"path": "a.txt"})
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "permission_denied")
    with gateway.http(admin) as client:
        listed = client.get("/v1/keys")
        assert listed.status_code == 200
        assert len(listed.json()["data"]) == 2


def test_tenant_b_cannot_reach_tenant_as_resources(gateway: Gateway) -> None:
    everything = "chat,documents:write,admin"
    a, b = gateway.key("tenant-a", "--scopes", everything), gateway.key("tenant-b", "--scopes", everything)
    with gateway.http(a) as client:
        prompt = client.post("/v1/prompts", json={"name": "greeting", "template": "Hello"}).json()
        request_id = client.post(
            "/v1/chat/completions", json={"model": "default", "messages": QUESTION, "strata": NO_RETRIEVAL}
        ).json()["strata"]["request_id"]
        assert client.post("/v1/feedback", json={"request_id": request_id, "rating": 1}).status_code == 200
        a_key_id = client.get("/v1/keys").json()["data"][0]["id"]
        upload = client.post("/v1/documents", json={"path": "private.txt"}).json()
        form = upload["upload"]
        stored = httpx.post(form["url"], data=form["fields"], files={"file": ("private.txt", b"Secret plans.")})
        assert stored.status_code in (200, 204), stored.text
        document_id = upload["document_id"]

    def indexed() -> bool:
        with gateway.http(a) as client:
            response = client.get(f"/v1/documents/{document_id}")
        return response.status_code == 200 and response.json()["status"] == "indexed"

    wait_until(indexed, timeout_s=120, what="the uploaded document indexed")  # S3 POST → SQS → ingest

    with gateway.http(b) as client:
        assert client.get("/v1/documents").json()["data"] == []
        assert client.get(f"/v1/documents/{document_id}").status_code == 404
        assert client.delete(f"/v1/documents/{document_id}").status_code == 404
        assert client.get("/v1/prompts").json()["data"] == []
        assert client.get(f"/v1/prompts/{prompt['name']}").status_code == 404
        assert client.delete(f"/v1/prompts/{prompt['name']}").status_code == 404
        assert client.get(f"/v1/feedback/{request_id}").status_code == 404
        assert client.get("/v1/feedback").json()["data"] == []
        assert a_key_id not in [k["id"] for k in client.get("/v1/keys").json()["data"]]
        assert client.get(f"/v1/keys/{a_key_id}").status_code == 404
        assert client.patch(f"/v1/keys/{a_key_id}", json={"name": "mine"}).status_code == 404
        assert client.delete(f"/v1/keys/{a_key_id}").status_code == 404
        assert client.get("/v1/usage").json()["tenant"]["tenant"] == "tenant-b"
    with gateway.http(a) as client:  # and A's things are all still there
        assert client.get(f"/v1/documents/{document_id}").status_code == 200
        assert client.get(f"/v1/prompts/{prompt['name']}").status_code == 200
        assert client.get(f"/v1/feedback/{request_id}").status_code == 200


def test_a_body_of_12_mb_is_refused_with_a_413(gateway: Gateway) -> None:
    key = gateway.key("big")
    body = b'{"model": "default", "messages": [{"role": "user", "content": "' + b"x" * 12_000_000 + b'"}]}'
    with gateway.http(key) as client:
        response = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")


def test_logs_hold_no_key_pepper_or_redacted_value(gateway: Gateway) -> None:
    key = gateway.key("logged")
    secret_email = "jane.doe@example.com"
    with gateway.http(key) as client:
        body = {
            "model": "default",
            "messages": [{"role": "user", "content": f"Mail {secret_email} with key {key}"}],
            "strata": NO_RETRIEVAL,
        }
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    wait_until(lambda: any("tenant=logged" in line for line in _request_lines(gateway)), timeout_s=10)

    pepper = (gateway.stack.state_dir / "pepper").read_text().strip()
    logs = "\n".join(
        path.read_text(errors="replace")
        for path in [gateway.stack.log_path, *(gateway.stack.state_dir / "logs").glob("*.log")]
    )
    secret = key.split("-", 3)[3]  # sk-strata-<id>-<secret>; the secret may itself hold a '-'
    assert key not in logs and secret not in logs
    assert pepper not in logs
    assert secret_email not in logs
    assert "[email]" in logs and "[api_key]" in logs  # the prompt was logged (log_content), redacted
