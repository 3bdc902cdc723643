"""A settled chat turn as an ``Interaction``, recorded without ever failing the turn."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from strata.interactions.types import Interaction, LoggedMessage, RetrievedChunk
from strata.observability.redact import redact
from strata.validation import outcome_of

if TYPE_CHECKING:
    from strata.chat.protocol import UsageInfo
    from strata.chat.turn import ChatTurn
    from strata.interactions.writer import InteractionWriter

logger = logging.getLogger(__name__)

# The timing marks the log keeps (strata.observability.Timings' names in the chat pipeline).
LATENCY_MARKS = ("queue", "admit", "retrieve", "assemble", "first_token", "total")


def interaction_of(turn: ChatTurn, charged: UsageInfo, *, now: datetime | None = None) -> Interaction:
    """What the operations loop keeps of one turn."""
    prompt = turn.prompt
    sources = prompt.sources if prompt is not None else []
    # The answer is redacted already (by the stream's validator) for a tenant that redacts.
    scrub = redact if turn.principal.redact_pii else str
    messages = [LoggedMessage(role=m.role, content=scrub(m.content)) for m in (prompt.messages if prompt else ())]
    status = turn.status
    if status == "error" and turn.answer:
        status = "stream_broken"
    return Interaction(
        request_id=turn.request_id,
        tenant=turn.principal.tenant,
        key_id=turn.principal.key_id,
        at=now or datetime.now(UTC),
        model=turn.request.model,
        target=turn.outcome.target,
        status=status,
        prompt_name=turn.prompt_used.name if turn.prompt_used is not None else None,
        prompt_version=turn.prompt_used.version if turn.prompt_used is not None else None,
        question=scrub(turn.request.question()),
        messages=messages,
        answer="".join(turn.answer) or None,
        retrieved=[
            RetrievedChunk(
                document_id=hit.document_id,
                chunk_index=hit.chunk_index,
                source_key=hit.source_key,
                score=hit.score,
                similarity=hit.similarity,
            )
            for hit in sources
        ],
        sources_below_floor=turn.below_floor,
        not_in_documents=turn.not_in_documents,
        validation=outcome_of(turn.validators) if turn.usage is not None else None,
        confidence=turn.confidence,
        cache_hit=turn.cache_hit,
        finish_reason=turn.finish_reason,
        prompt_tokens=charged.prompt_tokens,
        completion_tokens=charged.completion_tokens,
        latency_ms={name: turn.timings.marks[name] for name in LATENCY_MARKS if name in turn.timings.marks},
    )


def record_turn(writer: InteractionWriter, turn: ChatTurn, charged: UsageInfo) -> None:
    """Queue the turn's interaction; an error is logged and the record dropped, never raised."""
    try:
        writer.record(interaction_of(turn, charged))
    except Exception:
        logger.exception("could not record interaction %s", getattr(turn, "request_id", "?"))
