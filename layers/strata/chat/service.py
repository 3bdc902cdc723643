"""The chat request flow: retrieve the tenant's sources → assemble the prompt → generate → cite."""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from strata.auth import Principal
from strata.chat.citations import build_citations
from strata.chat.protocol import ChatCompletionRequest, StrataResponseExtension
from strata.config import Settings
from strata.inference import SageMakerChatModel, UnknownModelError
from strata.prompts import AssembledPrompt, assemble_prompt
from strata.retrieval import Retriever, SearchMode


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class PreparedChat:
    request_id: str
    created: int
    prompt: AssembledPrompt
    body: dict[str, Any]


class ChatService:
    def __init__(self, *, retriever: Retriever, models: dict[str, SageMakerChatModel], settings: Settings) -> None:
        self._retriever = retriever
        self._models = models
        self._settings = settings

    def model_for(self, alias: str) -> SageMakerChatModel:
        try:
            return self._models[alias]
        except KeyError:
            raise UnknownModelError(f"The model '{alias}' does not exist") from None

    def prepare(self, request: ChatCompletionRequest, principal: Principal, request_id: str) -> PreparedChat:
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
            [message.model_dump(exclude_none=True) for message in request.messages],
            hits,
            max_context_chars=self._settings.max_context_chars,
        )
        return PreparedChat(
            request_id=request_id,
            created=int(time.time()),
            prompt=prompt,
            body=self._model_body(request, prompt),
        )

    def complete(self, request: ChatCompletionRequest, prepared: PreparedChat) -> dict[str, Any]:
        reply = self.model_for(request.model).complete(prepared.body)
        answer = "".join((choice.get("message") or {}).get("content") or "" for choice in reply.get("choices", []))
        return {
            **reply,
            "id": f"chatcmpl-{prepared.request_id}",
            "object": "chat.completion",
            "created": prepared.created,
            "model": request.model,
            "strata": self._extension(prepared, answer),
        }

    def stream(self, request: ChatCompletionRequest, prepared: PreparedChat) -> Generator[dict[str, Any], None, None]:
        """Chat-completion chunks, forwarded one by one as the model produces them; the chunk
        that carries ``finish_reason`` also carries the citations."""
        answer: list[str] = []
        finished = False
        for upstream in self.model_for(request.model).stream(prepared.body):
            choices = upstream.get("choices") or []
            chunk = self._chunk(request, prepared, choices, usage=upstream.get("usage"))
            for choice in choices:
                answer.append((choice.get("delta") or {}).get("content") or "")
                if choice.get("finish_reason"):
                    finished = True
                    chunk["strata"] = self._extension(prepared, "".join(answer))
            yield chunk
        if not finished:
            final = self._chunk(request, prepared, [{"index": 0, "delta": {}, "finish_reason": "stop"}])
            final["strata"] = self._extension(prepared, "".join(answer))
            yield final

    def _chunk(
        self,
        request: ChatCompletionRequest,
        prepared: PreparedChat,
        choices: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-{prepared.request_id}",
            "object": "chat.completion.chunk",
            "created": prepared.created,
            "model": request.model,
            "choices": [
                {
                    "index": c.get("index", 0),
                    "delta": c.get("delta") or {},
                    "finish_reason": c.get("finish_reason"),
                }
                for c in choices
            ],
        }
        if usage:
            chunk["usage"] = usage
        return chunk

    def _model_body(self, request: ChatCompletionRequest, prompt: AssembledPrompt) -> dict[str, Any]:
        limit = self._settings.max_output_tokens
        body: dict[str, Any] = {
            "messages": prompt.messages,
            "max_tokens": min(request.max_completion_tokens or request.max_tokens or limit, limit),
        }
        for field in ("temperature", "top_p", "stop", "seed"):
            value = getattr(request, field)
            if value is not None:
                body[field] = value
        if request.stream and request.stream_options is not None:
            body["stream_options"] = request.stream_options.model_dump()
        return body

    def _extension(self, prepared: PreparedChat, answer: str) -> dict[str, Any]:
        return StrataResponseExtension(
            request_id=prepared.request_id, citations=build_citations(prepared.prompt.sources, answer)
        ).model_dump()
