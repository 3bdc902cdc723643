"""Token counting for prompt packing, quotas and usage when an upstream reports none.

``token_counter(spec)`` returns one counter per spec (cached):

* ``None`` → :class:`EstimateTokenCounter`, a conservative estimate for models whose tokenizer
  Strata does not have (hosted models on Bedrock or behind an OpenAI-compatible API);
* ``"smollm2"`` (or ``"SmolLM2-135M-Instruct"``) → the local chat model's own tokenizer and chat
  template, shipped in ``strata/inference/tokenizers/smollm2/`` (exported from the GGUF by
  ``python -m model_endpoint.export_tokenizer``; an integration test keeps them equal), so the
  Lambda layer needs neither the model package nor llama.cpp;
* a path to a Hugging Face ``tokenizer.json`` (or a folder holding one) → that tokenizer; a
  ``tokenizer_config.json`` beside it with a ``chat_template`` makes ``count_messages`` exact too.

Anything else raises ``ModelRegistryError`` naming the spec. Importing this module is cheap: a
tokenizer is read on its first use, once, and jinja2 only when a template is first rendered.

For a model with a chat template, ``count_messages`` renders the template exactly as the model
server does (llama-cpp-python's ``Jinja2ChatFormatter``: a sandboxed jinja2 environment with
``trim_blocks`` and ``lstrip_blocks``, ``add_generation_prompt=True``, the ``bos_token`` and
``eos_token`` texts) and tokenizes the result with its special tokens and without adding a BOS,
so for SmolLM2 it equals the ``usage.prompt_tokens`` the server reports (the template's default
system prompt, written when the conversation has none, included).
"""

from __future__ import annotations

import json
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strata.inference.exceptions import ModelRegistryError, ModelRequestError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from strata.inference.types import Message

__all__ = (
    "BUILTIN_TOKENIZERS",
    "ESTIMATE_ASCII_BYTES_PER_TOKEN",
    "ESTIMATE_MESSAGE_OVERHEAD",
    "ESTIMATE_OTHER_BYTES_PER_TOKEN",
    "ESTIMATE_REPLY_OVERHEAD",
    "ESTIMATE_SYMBOL_BYTES_PER_TOKEN",
    "TOKENIZERS_DIR",
    "EstimateTokenCounter",
    "TokenCounter",
    "TokenizerTokenCounter",
    "token_counter",
)

TOKENIZERS_DIR = Path(__file__).parent / "tokenizers"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
BUILTIN_TOKENIZERS: dict[str, Path] = {
    "smollm2": TOKENIZERS_DIR / "smollm2",
    "smollm2-135m-instruct": TOKENIZERS_DIR / "smollm2",
}

# The estimate. Text is cut into pieces the way GPT-2 style pre-tokenizers cut it (a word with
# its leading space, a single digit, a run of other symbols with its leading space, a run of
# whitespace); every piece is at least one token in such tokenizers. A piece counts its ASCII
# bytes at 3.5 a token (2 a token in a symbol run) and its other UTF-8 bytes at 1.5 a token,
# rounded up, at least 1. Against SmolLM2's small, English-centred vocabulary this over-counts
# English prose and code by 30 to 60 %, JSON, URLs, French, German, CJK text and emoji by 0 to
# 35 %; only strings without structure (base64, random ids) are under-counted, by up to half.
# Each message adds the tokens a chat template wraps around it (role, start and end markers: 4
# to 5 in ChatML and Llama 3), and the conversation adds the reply's opening (and a BOS).
ESTIMATE_ASCII_BYTES_PER_TOKEN = 3.5
ESTIMATE_SYMBOL_BYTES_PER_TOKEN = 2.0
ESTIMATE_OTHER_BYTES_PER_TOKEN = 1.5
ESTIMATE_MESSAGE_OVERHEAD = 6
ESTIMATE_REPLY_OVERHEAD = 4
_PIECES = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+|\d| ?[^\s\w]+|_+|\s+(?!\S)|\s+")


class TokenCounter(ABC):
    """Counts tokens the way one model does (or, for the estimate, a little more)."""

    @abstractmethod
    def count(self, text: str) -> int:
        """Tokens of ``text`` alone (no special tokens added)."""

    @abstractmethod
    def count_messages(self, messages: Sequence[Message]) -> int:
        """The prompt tokens the model will see for ``messages``, chat template included."""


class EstimateTokenCounter(TokenCounter):
    """A tokenizer-free upper estimate; see ``ESTIMATE_*`` for the rule.

    Examples
    --------
    >>> EstimateTokenCounter().count("The capital of France is Paris.")  # SmolLM2: 7
    11
    """

    def count(self, text: str) -> int:
        return sum(_estimate_piece(match.group()) for match in _PIECES.finditer(text))

    def count_messages(self, messages: Sequence[Message]) -> int:
        return ESTIMATE_REPLY_OVERHEAD + sum(self.count(m.content) + ESTIMATE_MESSAGE_OVERHEAD for m in messages)


def _estimate_piece(piece: str) -> int:
    size = len(piece.encode("utf-8"))
    ascii_bytes = sum(1 for char in piece if char < "\x80")
    symbols = piece.strip() and not any(char.isalnum() for char in piece)
    per_token = ESTIMATE_SYMBOL_BYTES_PER_TOKEN if symbols else ESTIMATE_ASCII_BYTES_PER_TOKEN
    return max(1, math.ceil(ascii_bytes / per_token + (size - ascii_bytes) / ESTIMATE_OTHER_BYTES_PER_TOKEN))


class TokenizerTokenCounter(TokenCounter):
    """A Hugging Face ``tokenizers`` tokenizer and, when it has one, its chat template.

    Nothing is read until the first count; then the files are loaded once (thread safe).

    Parameters
    ----------
    tokenizer_file
        A ``tokenizer.json``.
    config_file
        A ``tokenizer_config.json`` with ``chat_template`` (and ``bos_token``/``eos_token``); without
        one, ``count_messages`` adds the estimate's per-message overheads to the exact content counts.
    """

    def __init__(self, tokenizer_file: Path, config_file: Path | None = None) -> None:
        self.tokenizer_file = tokenizer_file
        self.config_file = config_file
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._template: _ChatTemplate | None = None

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._load().encode(text, add_special_tokens=False).ids)

    def count_messages(self, messages: Sequence[Message]) -> int:
        tokenizer = self._load()
        if self._template is None:
            return ESTIMATE_REPLY_OVERHEAD + sum(self.count(m.content) + ESTIMATE_MESSAGE_OVERHEAD for m in messages)
        prompt = self._template.render(messages)
        return len(tokenizer.encode(prompt, add_special_tokens=False).ids)

    def _load(self) -> Tokenizer:
        if self._tokenizer is not None:
            return self._tokenizer
        with self._lock:
            if self._tokenizer is None:
                self._template = _ChatTemplate.from_config(self.config_file) if self.config_file else None
                self._tokenizer = _read_tokenizer(self.tokenizer_file)
        return self._tokenizer


def _read_tokenizer(path: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for a malformed file
        raise ModelRegistryError(f"tokenizer {str(path)!r} cannot be read: {error}") from error
    # Counting must see every token: a file's truncation or padding settings would change the count.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class _ChatTemplate:
    """A chat template rendered the way llama-cpp-python's ``Jinja2ChatFormatter`` renders it."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str) -> None:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        class IgnoreGenerationTags(jinja2.ext.Extension):
            """Hugging Face's ``{% generation %}`` tag renders its body, as in transformers."""

            tags = {"generation"}

            def parse(self, parser: Any) -> Any:
                parser.stream.skip(1)
                return parser.parse_statements(("name:endgeneration",), drop_needle=True)

        environment = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[IgnoreGenerationTags, jinja2.ext.loopcontrols],
        )
        environment.filters["tojson"] = _tojson
        self._template = environment.from_string(source)
        self._template_error = jinja2.TemplateError
        self.bos_token = bos_token
        self.eos_token = eos_token

    @classmethod
    def from_config(cls, path: Path) -> _ChatTemplate | None:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelRegistryError(f"tokenizer config {str(path)!r} cannot be read: {error}") from error
        source = config.get("chat_template")
        if isinstance(source, list):  # transformers' named templates: the default one
            source = next((t.get("template") for t in source if t.get("name") == "default"), None)
        if not source:
            return None
        return cls(
            source, bos_token=_token_text(config.get("bos_token")), eos_token=_token_text(config.get("eos_token"))
        )

    def render(self, messages: Sequence[Message]) -> str:
        def raise_exception(message: str) -> None:
            raise ValueError(message)

        try:
            return self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                add_generation_prompt=True,
                raise_exception=raise_exception,
                functions=None,
                function_call=None,
                tools=None,
                tool_choice=None,
                strftime_now=lambda fmt: datetime.now().strftime(fmt),
            )
        except (ValueError, TypeError, self._template_error) as error:
            # The model server answers 400 for the same conversation.
            raise ModelRequestError(f"the chat template rejected the messages: {error}") from error


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _token_text(value: Any) -> str:
    if isinstance(value, dict):  # transformers writes AddedToken objects as {"content": ...}
        return str(value.get("content") or "")
    return str(value or "")


_ESTIMATE = EstimateTokenCounter()


@lru_cache(maxsize=32)
def token_counter(spec: str | None) -> TokenCounter:
    """The counter for a registry ``tokenizer`` entry; see the module docstring.

    Examples
    --------
    >>> token_counter(None).count("hello")
    2
    >>> token_counter("smollm2").count_messages([Message("user", "Hi")])  # doctest: +SKIP
    """
    if spec is None:
        return _ESTIMATE
    builtin = BUILTIN_TOKENIZERS.get(spec.strip().lower())
    if builtin is not None:
        return TokenizerTokenCounter(builtin / TOKENIZER_FILE, builtin / TOKENIZER_CONFIG_FILE)
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if path.is_file() and path.suffix == ".json":
        config = path.with_name(TOKENIZER_CONFIG_FILE)
        return TokenizerTokenCounter(path, config if config.is_file() else None)
    names = ", ".join(sorted(BUILTIN_TOKENIZERS))
    raise ModelRegistryError(f"unknown tokenizer {spec!r}: expected one of {names} or a path to a tokenizer.json")
