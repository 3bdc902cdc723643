"""Continuing a partial answer (vLLM's continue_final_message): validation and prompt rendering."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model_endpoint import ServerConfig, create_app
from model_endpoint.backends.base import ChatMessage, ChatParams
from model_endpoint.backends.llama_cpp import _render_prompt
from model_endpoint.exceptions import InvalidRequestError
from model_endpoint.protocol import ChatCompletionRequest
from tests.unit.model_endpoint.fakes import CountingEmbeddings, HeldChat, serving

pytestmark = pytest.mark.anyio

PARTIAL = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is"},
]


def chatml(messages: list[dict[str, str]], generation_prompt: bool) -> str:
    """SmolLM2's chat template, as far as these tests need it."""
    prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return prompt + ("<|im_start|>assistant\n" if generation_prompt else "")


def trimming_chatml(messages: list[dict[str, str]], generation_prompt: bool) -> str:
    """A template that strips message text, as Llama 3's does."""
    return chatml([{**m, "content": m["content"].strip()} for m in messages], generation_prompt)


def params(messages: list[dict[str, str]], **flags: bool) -> ChatParams:
    return ChatParams(messages=[ChatMessage(m["role"], m["content"]) for m in messages], **flags)


# -- request validation ------------------------------------------------------------------------


def test_request_continuing_the_final_message_needs_no_explicit_add_generation_prompt():
    request = ChatCompletionRequest.model_validate({"messages": PARTIAL, "continue_final_message": True})

    assert request.continue_final_message
    assert not request.generation_prompt()  # the default gives way, as in vLLM


def test_request_without_continuation_keeps_the_generation_prompt_unless_turned_off():
    assert ChatCompletionRequest.model_validate({"messages": PARTIAL}).generation_prompt()
    off = ChatCompletionRequest.model_validate({"messages": PARTIAL, "add_generation_prompt": False})
    assert not off.generation_prompt()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            {"messages": PARTIAL, "continue_final_message": True, "add_generation_prompt": True},
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
        ),
        ({"messages": PARTIAL[:1], "continue_final_message": True}, "the last message is from the user"),
        (
            {"messages": [*PARTIAL[:1], {"role": "assistant", "content": "  "}], "continue_final_message": True},
            "needs text in the last assistant message",
        ),
    ],
    ids=["both-flags", "last-is-user", "empty-assistant"],
)
def test_request_rejects_an_incoherent_continuation(body: dict, fragment: str):
    with pytest.raises(ValidationError, match=fragment.replace("`", ".").replace("(", ".")):
        ChatCompletionRequest.model_validate(body)


# -- prompt rendering --------------------------------------------------------------------------


def test_render_continuation_leaves_the_final_assistant_message_open():
    prompt = _render_prompt(chatml, params(PARTIAL, continue_final_message=True, add_generation_prompt=False))

    assert prompt.endswith("<|im_start|>assistant\nThe capital of France is")
    assert prompt.count("<|im_end|>") == 1  # the user's turn is closed, the assistant's is not


def test_render_without_continuation_starts_a_new_assistant_turn_or_none():
    assert _render_prompt(chatml, params(PARTIAL)).endswith(
        "The capital of France is<|im_end|>\n<|im_start|>assistant\n"
    )
    assert _render_prompt(chatml, params(PARTIAL, add_generation_prompt=False)).endswith("is<|im_end|>\n")


def test_render_continuation_with_a_template_that_trims_the_message_text():
    messages = [*PARTIAL[:1], {"role": "assistant", "content": "The capital of France is "}]

    prompt = _render_prompt(trimming_chatml, params(messages, continue_final_message=True, add_generation_prompt=False))

    assert prompt.endswith("assistant\nThe capital of France is")


def test_render_continuation_refuses_a_final_message_that_is_not_the_assistants():
    with pytest.raises(InvalidRequestError, match="assistant"):
        _render_prompt(chatml, params(PARTIAL[:1], continue_final_message=True, add_generation_prompt=False))


# -- through the server ------------------------------------------------------------------------


async def test_server_passes_the_continuation_to_the_backend_and_answers_only_new_text():
    backend = HeldChat(tokens=(" Paris", "."), held=False)
    app = create_app(ServerConfig(), chat_backend=backend, embedding_backend=CountingEmbeddings())

    async with serving(app) as client:
        reply = await client.post("/invocations", json={"messages": PARTIAL, "continue_final_message": True})

    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == " Paris."
    (sent,) = backend.params
    assert (sent.continue_final_message, sent.add_generation_prompt) == (True, False)


async def test_server_answers_400_to_an_incoherent_continuation():
    backend = HeldChat(held=False)
    app = create_app(ServerConfig(), chat_backend=backend, embedding_backend=CountingEmbeddings())
    body = {"messages": PARTIAL, "continue_final_message": True, "add_generation_prompt": True}

    async with serving(app) as client:
        reply = await client.post("/v1/chat/completions", json=body)

    assert reply.status_code == 400
    assert "Cannot set both" in reply.json()["error"]["message"]
    assert backend.params == []
