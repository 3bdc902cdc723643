from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, WithJsonSchema

from functions.api.routes.errors import checked, error_responses
from strata.feedback import (
    Feedback,
    FeedbackStore,
    validate_comment,
    validate_rating,
    validate_request_id,
)
from strata.feedback.types import MAX_COMMENT_CHARS, REQUEST_ID_PATTERN
from strata.web import CurrentPrincipal, feedback_store

router = APIRouter(tags=["feedback"])

PAGE_LIMIT = 500  # the store reads one more than a page, to tell whether there is another
RequestId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN.pattern, description="The answer's strata.request_id")]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # The library checks each field (its messages name the rule); the schema states the same rule.
    request_id: Annotated[
        str, checked(validate_request_id), WithJsonSchema({"type": "string", "pattern": REQUEST_ID_PATTERN.pattern})
    ]
    # 1: thumbs up, -1: thumbs down. Strict: 1.0 is refused (the unit tests hold it), though JSON
    # Schema cannot tell 1.0 from 1, so the schema's enum is as close as it can say.
    rating: Annotated[int, checked(validate_rating), WithJsonSchema({"type": "integer", "enum": [1, -1]})]
    comment: (
        Annotated[str, checked(validate_comment), WithJsonSchema({"type": "string", "maxLength": MAX_COMMENT_CHARS})]
        | None
    ) = None


class FeedbackList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Feedback]
    has_more: bool  # page on with ?after=<the last request_id>


@router.post("/v1/feedback", responses=error_responses(400, 401, 403))
def put_feedback(
    request: FeedbackRequest, principal: CurrentPrincipal, store: Annotated[FeedbackStore, Depends(feedback_store)]
) -> Feedback:
    """Rate an answer by its request id; rating it again replaces the earlier feedback."""
    return store.put(
        principal.tenant, request.request_id, rating=request.rating, comment=request.comment, key_id=principal.key_id
    )


@router.get("/v1/feedback", responses=error_responses(400, 401))
def list_feedback(
    principal: CurrentPrincipal,
    store: Annotated[FeedbackStore, Depends(feedback_store)],
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 100,
    after: Annotated[str | None, Query(pattern=REQUEST_ID_PATTERN.pattern)] = None,
) -> FeedbackList:
    """The tenant's feedback, in request-id order."""
    found = store.list(principal.tenant, limit + 1, after=after)  # one more tells whether there are more
    return FeedbackList(data=found[:limit], has_more=len(found) > limit)


@router.get("/v1/feedback/{request_id}", responses=error_responses(400, 401, 404))
def get_feedback(
    request_id: RequestId, principal: CurrentPrincipal, store: Annotated[FeedbackStore, Depends(feedback_store)]
) -> Feedback:
    return store.get(principal.tenant, request_id)
