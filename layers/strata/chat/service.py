"""The chat request flow: retrieve the tenant's sources → assemble the prompt → count and fit it
into the model's window → infer (through the router, or from the response cache) → cite."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from strata.auth import Principal
from strata.chat.citations import build_citations
from strata.chat.exceptions import ContextWindowExceededError
from strata.chat.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    CompletionChoice,
    ResponseMessage,
    StrataResponseExtension,
    UsageInfo,
)
from strata.config import Settings
from strata.inference import (
    ChatRequest,
    Completion,
    Finish,
    InferenceRouter,
    Message,
    ModelTarget,
    ResponseCache,
    RouteOutcome,
    TextDelta,
    Usage,
    cache_key,
    is_cacheable,
    stream_from_completion,
    token_counter,
)
from strata.prompts import AssembledPrompt, assemble_prompt
from strata.retrieval import Retriever, SearchMode

_ROLES = {"developer": "system"}  # OpenAI's newer name for the system role


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class PreparedChat:
    request_id: str
    created: int
    prompt: AssembledPrompt
    model_request: ChatRequest
    prompt_tokens: int  # counted with the model's own tokenizer
    tokenizer: str | None = None
    cache_key: str | None = None
    outcome: RouteOutcome = field(default_factory=RouteOutcome)
    cache_hit: bool = False


class ChatService:
    def __init__(
        self,
        *,
        retriever: Retriever,
        router: InferenceRouter,
        settings: Settings,
        cache: ResponseCache | None = None,
    ) -> None:
        self._retriever = retriever
        self.router = router
        self._settings = settings
        self._cache = cache

    def target_for(self, alias: str) -> ModelTarget:
        """The registry entry of ``alias``; an unknown alias raises ``UnknownModelError`` (404)."""
        return self.router.registry.target(alias)

    def prepare(self, request: ChatCompletionRequest, principal: Principal, request_id: str) -> PreparedChat:
        target = self.target_for(request.model)
        options = request.strata.retrieval
        hits = []
        if options.enabled and request.question().strip():
            hits = self._retriever.search(
                tenant=principal.tenant,
                query=request.question(),
                k=options.k or self._settings.retrieval_k,
                mode=options.mode or SearchMode(self._settings.retrieval_mode),
                document_ids=options.document_ids,
            )
        prompt = assemble_prompt(
            [{"role": message.role, "content": message.text()} for message in request.messages],
            hits,
            max_context_chars=self._settings.max_context_chars,
        )
        messages = tuple(Message(role=_ROLES.get(m["role"], m["role"]), content=m["content"]) for m in prompt.messages)
        prompt_tokens = token_counter(target.tokenizer).count_messages(messages)
        room = target.context_window - prompt_tokens
        if room < 1:
            raise ContextWindowExceededError(
                f"This model's maximum context length is {target.context_window} tokens; the messages and "
                f"sources use {prompt_tokens}. Shorten the messages."
            )
        requested = request.max_completion_tokens or request.max_tokens or target.max_output_tokens
        model_request = ChatRequest(
            messages=messages,
            max_tokens=min(requested, room),  # clamped to what the window has left
            temperature=request.temperature,
            top_p=request.top_p,
            stop=(request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ()),
            seed=request.seed,
        )
        key = None
        if self._cache is not None and request.strata.cache and is_cacheable(model_request):
            sources = [f"{h.document_id}:{h.chunk_index}:{_digest(h.text)}" for h in prompt.sources]
            key = cache_key(tenant=principal.tenant, alias=request.model, request=model_request, sources=sources)
        return PreparedChat(
            request_id=request_id,
            created=int(time.time()),
            prompt=prompt,
            model_request=model_request,
            prompt_tokens=prompt_tokens,
            tokenizer=target.tokenizer,
            cache_key=key,
        )

    def complete(self, request: ChatCompletionRequest, prepared: PreparedChat) -> ChatCompletion:
        completion = self._cached(prepared)
        if completion is None:
            completion = self.router.complete(request.model, prepared.model_request, prepared.outcome)
            self._store(prepared, completion)
        return ChatCompletion(
            id=f"chatcmpl-{prepared.request_id}",
            created=prepared.created,
            model=request.model,
            choices=[
                CompletionChoice(
                    message=ResponseMessage(content=completion.text), finish_reason=completion.finish_reason
                )
            ],
            usage=self._usage(prepared, completion.usage, completion.text),
            strata=self._extension(prepared, completion.text),
        )

    def stream(
        self, request: ChatCompletionRequest, prepared: PreparedChat
    ) -> Generator[ChatCompletionChunk, None, None]:
        """Chat-completion chunks as the model produces them; the chunk with ``finish_reason``
        carries the citations, and a last one the usage when ``stream_options.include_usage`` asks.

        The first ``next()`` waits for the model's first event, so a target that is down is an
        error raised before anything is sent."""
        cached = self._cached(prepared)
        events: Iterator[Any] = (
            stream_from_completion(cached)
            if cached is not None
            else self.router.stream(request.model, prepared.model_request, prepared.outcome)
        )
        try:
            first = next(events, None)
            yield self._chunk(request, prepared, ChunkDelta(role="assistant", content=""))
            answer: list[str] = []
            usage = Usage()
            finish = "stop"
            event = first
            while event is not None:
                if isinstance(event, TextDelta):
                    answer.append(event.text)
                    yield self._chunk(request, prepared, ChunkDelta(content=event.text))
                elif isinstance(event, Usage):
                    usage = event
                elif isinstance(event, Finish):
                    finish = event.reason
                event = next(events, None)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        text = "".join(answer)
        final = self._chunk(request, prepared, ChunkDelta(), finish=finish)
        final.strata = self._extension(prepared, text)
        yield final
        if cached is None:
            self._store(prepared, Completion(text, finish, usage, prepared.outcome.target or request.model))
        if request.stream_options is not None and request.stream_options.include_usage:
            usage_chunk = self._chunk(request, prepared, None)
            usage_chunk.usage = self._usage(prepared, usage, text)
            yield usage_chunk

    def _cached(self, prepared: PreparedChat) -> Completion | None:
        if self._cache is None or prepared.cache_key is None:
            return None
        completion = self._cache.get(prepared.cache_key)
        if completion is not None:
            prepared.cache_hit = True
            prepared.outcome.target = completion.target
        return completion

    def _store(self, prepared: PreparedChat, completion: Completion) -> None:
        if (
            self._cache is not None
            and prepared.cache_key is not None
            and completion.finish_reason in ("stop", "length")
        ):
            self._cache.put(prepared.cache_key, completion)

    def _usage(self, prepared: PreparedChat, reported: Usage, text: str) -> UsageInfo:
        """The upstream's counts where they cover the whole answer; ours (the same tokenizer) where
        the upstream reported none, or where a continuation means no one upstream saw it all."""
        if prepared.outcome.continued:
            reported = Usage()
        prompt = reported.prompt_tokens or prepared.prompt_tokens
        completion = reported.completion_tokens
        if not completion and text:
            completion = token_counter(prepared.tokenizer).count(text)
        return UsageInfo(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    def _chunk(
        self,
        request: ChatCompletionRequest,
        prepared: PreparedChat,
        delta: ChunkDelta | None,
        *,
        finish: str | None = None,
    ) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=f"chatcmpl-{prepared.request_id}",
            created=prepared.created,
            model=request.model,
            choices=[] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)],
        )

    def _extension(self, prepared: PreparedChat, answer: str) -> StrataResponseExtension:
        return StrataResponseExtension(
            request_id=prepared.request_id,
            citations=build_citations(prepared.prompt.sources, answer),
            cache_hit=prepared.cache_hit,
            target=prepared.outcome.target,
            failovers=prepared.outcome.failovers,
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
