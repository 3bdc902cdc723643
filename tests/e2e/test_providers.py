"""Switching provider is configuration only: the same chat, through the official ``openai`` SDK,
against the local SageMaker-contract model server and against an OpenAI-compatible upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from strata.documents import document_id_for
from tests.support import DATASET, RunningStack, start_stack

LEOPARD = DATASET / "documents" / "s08_set1_a2_leopard.txt"


@pytest.fixture(scope="module")
def openai_stack(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A second stack whose ``default`` is the first stack's model server spoken to as an OpenAI
    upstream (its ``/v1/chat/completions``), with the SageMaker path as a named alias beside it."""
    workdir = tmp_path_factory.mktemp("openai-stack")
    upstream = stack.env["STRATA_SAGEMAKER_RUNTIME_URL"]
    models = workdir / "models.yaml"
    models.write_text(
        "models:\n"
        "  default:\n"
        "    provider: openai\n"
        f"    base_url: {upstream}/v1\n"
        "    model: SmolLM2-135M-Instruct\n"
        "    context_window: 2048\n"
        "    tokenizer: smollm2\n"
        "  local:\n"
        "    provider: sagemaker\n"
        "    endpoint: strata-chat\n"
        "    context_window: 2048\n"
        "    tokenizer: smollm2\n"
    )
    running = start_stack(workdir, models_file=models)
    try:
        yield running
    finally:
        running.stop()


def chat_with_citations(stack: RunningStack, model: str = "default") -> None:
    key = f"tenants/{stack.env['STRATA_TENANT']}/providers/leopard.txt"
    stack.boto3_client("s3").put_object(Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=LEOPARD.read_bytes())
    stack.wait_for_status(document_id_for(key), "indexed")

    client = openai.OpenAI(base_url=stack.api_url, api_key=stack.env["STRATA_API_KEY"])
    contents, last = [], None
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What do leopards hunt?"}],
        stream=True,
        max_tokens=32,
        stream_options={"include_usage": True},
    ):
        last = chunk
        contents.extend(c.delta.content for c in chunk.choices if c.delta.content)
    assert len(contents) > 3, "the answer arrives in several chunks"
    assert last is not None and last.usage is not None
    assert last.usage.prompt_tokens > 100 and 0 < last.usage.completion_tokens <= 32
    # The chunk before the usage one carries the citations.
    buffered = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What do leopards hunt?"}], max_tokens=16
    )
    strata = buffered.model_extra["strata"]
    assert key in [c["source_key"] for c in strata["citations"]]
    assert strata["target"] == model
    assert buffered.usage.total_tokens == buffered.usage.prompt_tokens + buffered.usage.completion_tokens


def test_chat_against_the_sagemaker_contract_model_server(stack: RunningStack) -> None:
    chat_with_citations(stack)


def test_the_same_chat_against_an_openai_compatible_upstream(openai_stack: RunningStack) -> None:
    chat_with_citations(openai_stack)


def test_models_lists_the_registrys_aliases_and_healthz_reports_each_target(openai_stack: RunningStack) -> None:
    with openai_stack.http() as client:
        models = client.get("/v1/models").json()
        health = client.get("/healthz").json()
    assert [m["id"] for m in models["data"]] == ["default", "local"]
    assert health["status"] == "ok"
    assert health["models"]["default"] == {"provider": "openai", "breaker": "closed", "failures": 0, "last_error": None}
    assert health["models"]["local"]["provider"] == "sagemaker"


def test_a_bad_models_file_stops_the_start_with_the_field_named(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  default:\n    provider: openai\n    model: m\n")
    with pytest.raises(RuntimeError) as raised:
        start_stack(tmp_path, models_file=models, timeout_s=60)
    assert "models.default" in str(raised.value) and "base_url" in str(raised.value)
