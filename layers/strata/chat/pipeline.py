"""The chat request flow as stages over one ``ChatTurn``:

admit (rate limits and quotas) → retrieve (the tenant's sources) → assemble (the prompt, counted
and fitted into the model's window) → infer (router or response cache) → validate (stream
transformers; citations) → settle and log (reconcile the token reservation to the real usage,
write the request record) — settling in a ``finally`` the pipeline owns, so it also runs when
the stream breaks, the upstream fails or the client goes away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator
from dataclasses import asdict, replace

from strata.auth import Principal
from strata.chat.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    CompletionChoice,
    ContextInfo,
    PromptUsed,
    ResponseMessage,
    StrataResponseExtension,
    StreamProgress,
    UsageInfo,
    ValidationReport,
)
from strata.chat.turn import ChatTurn, RequestContext
from strata.config import Settings
from strata.inference import (
    ChatEvent,
    ChatRequest,
    Completion,
    Finish,
    InferenceRouter,
    Message,
    ResponseCache,
    TextDelta,
    Usage,
    cache_key,
    is_cacheable,
    stream_from_completion,
    token_counter,
)
from strata.interactions import InteractionWriter, record_turn
from strata.observability import RequestLog, RequestRecord
from strata.prompts import PromptStore, assemble_prompt, render_prompt
from strata.prompts.templates import BUILTIN_PROMPT, NOT_IN_DOCUMENTS
from strata.retrieval import Retriever, SearchHit, SearchMode, search_query
from strata.throttle import RateLimiter, RateLimitExceededError
from strata.validation import (
    CitationCheck,
    JsonAnswerError,
    LoopGuard,
    PiiRedactor,
    StreamValidator,
    answer_confidence,
    check_json,
    json_instructions,
    outcome_of,
    redact,
    repair_instructions,
    validated,
)

ROUTE = "POST /v1/chat/completions"
_ROLES = {"developer": "system"}  # OpenAI's newer name for the system role


class ChatPipeline:
    def __init__(
        self,
        *,
        retriever: Retriever,
        router: InferenceRouter,
        settings: Settings,
        cache: ResponseCache | None = None,
        limiter: RateLimiter | None = None,
        log: RequestLog | None = None,
        prompts: PromptStore | None = None,
        interactions: InteractionWriter | None = None,
    ) -> None:
        self._retriever = retriever
        self.router = router
        self._settings = settings
        self._cache = cache
        self._limiter = limiter
        self._log = log
        self._prompts = prompts
        self._interactions = interactions

    def start(self, request: ChatCompletionRequest, principal: Principal, context: RequestContext) -> ChatTurn:
        """A turn for ``request``; an unknown model is a 404 here, before anything runs."""
        return ChatTurn(
            request=request, principal=principal, context=context, target=self.router.registry.target(request.model)
        )

    def stream(
        self, turn: ChatTurn, *, progress: bool = False
    ) -> Generator[ChatCompletionChunk | StreamProgress, None, None]:
        """Chunks as the model produces them; the one with ``finish_reason`` carries the
        citations, a last one the usage when ``stream_options.include_usage`` asks. The first
        ``next()`` runs admission, retrieval and assembly and waits for the model's first event,
        so a refusal or a target that is down is raised before anything is sent. With
        ``progress``, a ``StreamProgress`` comes once the turn is admitted and once it is
        assembled: a rate limit is still raised first, what fails later after them."""
        events: Iterator[ChatEvent] | None = None
        try:
            for step in self._prepare(turn):
                if progress:
                    yield step
            events = self._infer_validated(turn, streamed=True)
            first = next(events, None)
            turn.timings.elapsed("first_token")
            yield self._chunk(turn, ChunkDelta(role="assistant", content=""))
            event = first
            while event is not None:
                if isinstance(event, TextDelta):
                    turn.answer.append(event.text)
                    yield self._chunk(turn, ChunkDelta(content=event.text))
                else:
                    self._take(turn, event)
                event = next(events, None)
            self._complete(turn)
            final = self._chunk(turn, ChunkDelta(), finish=turn.finish_reason)
            final.strata = self._extension(turn)
            yield final
            if turn.request.stream_options is not None and turn.request.stream_options.include_usage:
                usage_chunk = self._chunk(turn, None)
                usage_chunk.usage = turn.usage
                yield usage_chunk
        except GeneratorExit:
            turn.status = "client_disconnected"
            raise
        except Exception as error:
            self._failed(turn, error)
            if turn.answer and turn.request.stream_options is not None and turn.request.stream_options.include_usage:
                # A broken answer still says what it cost, before the error ends the stream.
                usage_chunk = self._chunk(turn, None)
                usage_chunk.usage = self._charged(turn)
                yield usage_chunk
            raise
        finally:
            if events is not None:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            self._settle(turn)

    def complete(self, turn: ChatTurn) -> ChatCompletion:
        try:
            for _ in self._prepare(turn):
                pass
            for event in self._infer_validated(turn, streamed=False):
                if isinstance(event, TextDelta):
                    turn.answer.append(event.text)
                else:
                    self._take(turn, event)
            self._complete(turn)
            assert turn.usage is not None and turn.finish_reason is not None
            return ChatCompletion(
                id=turn.completion_id,
                created=turn.created,
                model=turn.request.model,
                choices=[
                    CompletionChoice(
                        message=ResponseMessage(content="".join(turn.answer)), finish_reason=turn.finish_reason
                    )
                ],
                usage=turn.usage,
                strata=self._extension(turn),
            )
        except BaseException as error:
            self._failed(turn, error)
            raise
        finally:
            self._settle(turn)

    # The stages.

    def _prepare(self, turn: ChatTurn) -> Iterator[StreamProgress]:
        """Admit, retrieve and assemble, saying where it is once admitted (a rate limit is raised
        before) and once assembled."""
        turn.timings.stage("queue")  # from the request's parse to a worker thread running it
        self._admit(turn)
        yield StreamProgress(stage="retrieving")
        hits = self._retrieve(turn)
        self._assemble(turn, hits)
        assert turn.prompt is not None
        yield StreamProgress(stage="generating", sources=len(turn.prompt.sources))

    def _infer_validated(self, turn: ChatTurn, *, streamed: bool) -> Iterator[ChatEvent]:
        if turn.not_in_documents:
            events: Iterator[ChatEvent] = stream_from_completion(Completion(NOT_IN_DOCUMENTS, "stop"))
        elif turn.json_schema is not None:
            events = self._infer_json(turn, turn.json_schema)
        else:
            events = self._infer(turn, streamed=streamed)
        return validated(events, turn.validators)

    def _admit(self, turn: ChatTurn) -> None:
        """Reserve one request and the estimated tokens: the caller's messages counted with the
        model's tokenizer plus the most the answer may use."""
        if self._limiter is not None:
            request, target = turn.request, turn.target
            messages = [Message(role=_ROLES.get(m.role, m.role), content=m.text()) for m in request.messages]
            estimate = token_counter(target.tokenizer).count_messages(messages) + self._max_tokens(turn)
            principal = turn.principal
            try:
                turn.reservation = self._limiter.admit(
                    tenant=principal.tenant,
                    key_id=principal.key_id,
                    key_limits=principal.key_limits,
                    tenant_limits=principal.tenant_limits,
                    tokens=estimate,
                )
            except RateLimitExceededError:
                turn.status = "rate_limited"
                raise
        turn.timings.stage("admit")

    def _retrieve(self, turn: ChatTurn) -> list[SearchHit]:
        """The tenant's sources for the question — a follow-up searched with the turns before it —
        above the relevance floor. Found documents that are all below it mean the answer is not
        in the documents: the model is not asked to make one up."""
        options = turn.request.strata.retrieval
        query = search_query([(m.role, m.text()) for m in turn.request.messages])
        hits: list[SearchHit] = []
        if options.enabled and query.strip():
            found = self._retriever.search(
                tenant=turn.principal.tenant,
                query=query,
                k=options.k or self._settings.retrieval_k,
                mode=options.mode or SearchMode(self._settings.retrieval_mode),
                document_ids=options.document_ids,
            )
            floor = self._settings.retrieval_min_similarity
            hits = [hit for hit in found if hit.similarity is None or hit.similarity >= floor]
            turn.below_floor = len(found) - len(hits)
            # A JSON answer must match its schema: the model answers it, without sources.
            wants_json = turn.request.response_format is not None and turn.request.response_format.type != "text"
            turn.not_in_documents = bool(found) and not hits and not wants_json
        turn.timings.stage("retrieve")
        return hits

    def _assemble(self, turn: ChatTurn, hits: list[SearchHit]) -> None:
        """The prompt's instructions (the tenant's prompt version, or the built-in one), the
        sources and the conversation, fitted into the window less the answer's max_tokens."""
        request, target = turn.request, turn.target
        instructions = self._instructions(turn)
        schema = request.response_format.required_schema() if request.response_format else None
        if schema is not None:
            instructions += "\n\n" + json_instructions(schema)
            turn.json_schema = schema
        counter = token_counter(target.tokenizer)
        max_tokens = self._max_tokens(turn)
        prompt = assemble_prompt(
            instructions=instructions,
            conversation=[Message(role=_ROLES.get(m.role, m.role), content=m.text()) for m in request.messages],
            hits=hits,
            counter=counter,
            budget=target.context_window - max_tokens,
        )
        turn.prompt = prompt
        turn.prompt_tokens = prompt.context.prompt_tokens
        turn.model_request = ChatRequest(
            messages=prompt.messages,
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=(request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ()),
            seed=request.seed,
        )
        cacheable = self._cache is not None and request.strata.cache and not turn.not_in_documents
        if cacheable and is_cacheable(turn.model_request):
            sources = [f"{h.document_id}:{h.chunk_index}:{_digest(h.text)}" for h in prompt.sources]
            turn.cache_key = cache_key(
                tenant=turn.principal.tenant, alias=request.model, request=turn.model_request, sources=sources
            )
        turn.validators = self._validators(turn, prompt.sources)
        turn.timings.stage("assemble")

    def _instructions(self, turn: ChatTurn) -> str:
        """The selected prompt rendered with the request's variables; the tenant's ``default``
        prompt at ``production`` when none is named, else the built-in one."""
        selector = turn.request.strata.prompt
        tenant = turn.principal.tenant
        prompt = None
        if self._prompts is not None:
            if selector is not None and (selector.name != "default" or selector.version or selector.label):
                prompt = self._prompts.resolve(tenant, selector.name, version=selector.version, label=selector.label)
            else:
                prompt = self._prompts.resolve_default(tenant)
        prompt = prompt or BUILTIN_PROMPT
        turn.prompt_used = PromptUsed(name=prompt.name, version=prompt.version)
        return render_prompt(prompt, selector.variables if selector is not None else {})

    def _validators(self, turn: ChatTurn, sources: list[SearchHit]) -> list[StreamValidator]:
        """Loops cut, then invalid citation markers removed, then personal data redacted — last,
        so that nothing an earlier stage lets through leaves unredacted. A JSON answer is checked
        whole before it streams, and its arrays are not citation markers."""
        validators: list[StreamValidator] = []
        if turn.json_schema is None:
            validators += [LoopGuard(), CitationCheck(sources)]
        if turn.principal.redact_pii:
            validators.append(PiiRedactor())
        return validators

    def _infer(self, turn: ChatTurn, *, streamed: bool) -> Iterator[ChatEvent]:
        assert turn.model_request is not None
        cached = self._cached(turn)
        if cached is not None:
            return stream_from_completion(cached)
        if streamed:
            return self.router.stream(turn.request.model, turn.model_request, turn.outcome)
        return stream_from_completion(self.router.complete(turn.request.model, turn.model_request, turn.outcome))

    def _infer_json(self, turn: ChatTurn, schema: dict) -> Iterator[ChatEvent]:
        """The whole answer, checked against ``schema`` before any of it is sent; when it does not
        match, one repair round (the answer and its errors sent back to the model), then a
        ``JsonAnswerError``. A stream asking for JSON therefore starts when the JSON is whole."""
        assert turn.model_request is not None
        first = self._cached(turn) or self.router.complete(turn.request.model, turn.model_request, turn.outcome)
        verdict = check_json(first.text, schema)
        answer, usage = first, first.usage
        if not verdict.valid:
            messages = (
                *turn.model_request.messages,
                Message(role="assistant", content=first.text),
                Message(role="user", content=repair_instructions(verdict.errors)),
            )
            counter = token_counter(turn.target.tokenizer)
            room = turn.target.context_window - counter.count_messages(messages)
            if room < 1:
                raise JsonAnswerError([*verdict.errors, "no room left in the context window for a repair round"])
            repair = replace(turn.model_request, messages=messages, max_tokens=min(turn.model_request.max_tokens, room))
            answer = self.router.complete(turn.request.model, repair, turn.outcome)
            usage = Usage(
                usage.prompt_tokens + answer.usage.prompt_tokens,
                usage.completion_tokens + answer.usage.completion_tokens,
            )
            verdict = check_json(answer.text, schema)
            if not verdict.valid:
                turn.status = "invalid_output"
                raise JsonAnswerError(verdict.errors)
            turn.json_outcome = "repaired"
        else:
            turn.json_outcome = "valid"
        yield TextDelta(verdict.text)
        yield usage
        yield Finish(answer.finish_reason)

    def _settle(self, turn: ChatTurn) -> None:
        """Charge what was used — the reported usage of a complete answer; the prompt and the
        tokens sent so far of a broken or abandoned one; nothing when no answer began — and
        write the request record."""
        turn.timings.elapsed("total")
        charged = self._charged(turn)
        if turn.reservation is not None:
            turn.reservation.settle(charged.total_tokens)
        if self._log is not None:
            self._log.write(self._record(turn, charged))
        if self._interactions is not None:  # queued for a background write; never raises
            record_turn(self._interactions, turn, charged)

    # Helpers.

    def _charged(self, turn: ChatTurn) -> UsageInfo:
        """What a turn costs: a complete answer's usage; for one that broke or was abandoned, the
        prompt and the tokens produced so far; nothing when no answer began."""
        if turn.usage is not None:
            return turn.usage
        if not turn.answer:
            return UsageInfo(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        completion = token_counter(turn.target.tokenizer).count("".join(turn.answer))
        return UsageInfo(
            prompt_tokens=turn.prompt_tokens, completion_tokens=completion, total_tokens=turn.prompt_tokens + completion
        )

    def _max_tokens(self, turn: ChatTurn) -> int:
        request = turn.request
        return min(
            request.max_completion_tokens or request.max_tokens or turn.target.max_output_tokens,
            turn.target.context_window,
        )

    def _take(self, turn: ChatTurn, event: ChatEvent) -> None:
        if isinstance(event, Usage):
            turn.reported_usage = event
        elif isinstance(event, Finish):
            turn.finish_reason = event.reason

    def _complete(self, turn: ChatTurn) -> None:
        """The answer ended normally: usage, confidence, the cache, the status."""
        turn.finish_reason = turn.finish_reason or "stop"
        turn.usage = self._usage(turn)
        text = "".join(turn.answer)
        if turn.prompt is not None and turn.json_schema is None and not turn.not_in_documents:
            sources = [hit.text for hit in turn.prompt.sources]
            turn.confidence = answer_confidence(text, sources, question=turn.request.question())
        cacheable = not turn.cache_hit and self._cache is not None and turn.cache_key is not None
        if cacheable and turn.finish_reason in ("stop", "length"):
            target = turn.outcome.target or turn.request.model
            usage = Usage(turn.usage.prompt_tokens, turn.usage.completion_tokens)
            self._cache.put(turn.cache_key, Completion(text, turn.finish_reason, usage, target))
        turn.status = "ok"

    def _failed(self, turn: ChatTurn, error: BaseException) -> None:
        if turn.status == "started":
            turn.status = "error"
        turn.error = type(error).__name__

    def _cached(self, turn: ChatTurn) -> Completion | None:
        if self._cache is None or turn.cache_key is None:
            return None
        completion = self._cache.get(turn.cache_key)
        if completion is not None:
            turn.cache_hit = True
            turn.outcome.target = completion.target
        return completion

    def _usage(self, turn: ChatTurn) -> UsageInfo:
        """The upstream's counts where they cover the whole answer; ours (the same tokenizer) where
        the upstream reported none, or where a continuation means no one upstream saw it all."""
        if turn.not_in_documents:  # answered without the model
            return UsageInfo(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        reported = turn.reported_usage if not turn.outcome.continued else Usage()
        prompt = reported.prompt_tokens or turn.prompt_tokens
        completion = reported.completion_tokens
        text = "".join(turn.answer)
        if not completion and text:
            completion = token_counter(turn.target.tokenizer).count(text)
        return UsageInfo(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    def _chunk(self, turn: ChatTurn, delta: ChunkDelta | None, *, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=turn.completion_id,
            created=turn.created,
            model=turn.request.model,
            choices=[] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)],
        )

    def _extension(self, turn: ChatTurn) -> StrataResponseExtension:
        check = next((v for v in turn.validators if isinstance(v, CitationCheck)), None)
        redactor = next((v for v in turn.validators if isinstance(v, PiiRedactor)), None)
        assert turn.prompt is not None
        citations = check.citations if check is not None else []
        if redactor is not None:  # the passages are shown with the answer: redacted as it is
            citations = [c.model_copy(update={"text": redact(c.text)[0]}) for c in citations]
        return StrataResponseExtension(
            request_id=turn.request_id,
            citations=citations,
            cache_hit=turn.cache_hit,
            target=turn.outcome.target,
            failovers=turn.outcome.failovers,
            prompt=turn.prompt_used,
            context=ContextInfo(**asdict(turn.prompt.context), sources_below_floor=turn.below_floor),
            confidence=turn.confidence,
            validation=ValidationReport(
                citations_removed=check.removed if check is not None else 0,
                citations_added=check.added if check is not None else 0,
                redacted=dict(redactor.redactions) if redactor is not None else {},
                response_format=turn.json_outcome,
                loop_stopped=any(v.stopped for v in turn.validators),
            ),
        )

    def _record(self, turn: ChatTurn, charged: UsageInfo) -> RequestRecord:
        status = {"ok": 200, "client_disconnected": 200, "rate_limited": 429, "invalid_output": 502}.get(
            turn.status, 500
        )
        outcome = turn.status
        if turn.status == "error" and turn.answer:
            outcome, status = "stream_broken", 200
        return RequestRecord(
            route=ROUTE,
            status=status,
            outcome=outcome,
            request_id=turn.request_id,
            correlation_id=turn.context.correlation_id,
            tenant=turn.principal.tenant,
            key_id=turn.principal.key_id,
            model=turn.request.model,
            target=turn.outcome.target,
            stream=turn.request.stream,
            cache_hit=turn.cache_hit,
            failovers=turn.outcome.failovers,
            validation=outcome_of(turn.validators) if turn.usage is not None else None,
            finish_reason=turn.finish_reason,
            prompt_tokens=charged.prompt_tokens,
            completion_tokens=charged.completion_tokens,
            error=turn.error,
            timings_ms=({"auth": turn.context.auth_ms} if turn.context.auth_ms is not None else {})
            | turn.timings.marks,
            prompt=turn.request.question() if turn.request else None,
            answer="".join(turn.answer) or None,
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
