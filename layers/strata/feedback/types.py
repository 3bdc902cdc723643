"""Feedback on an answer: a thumbs up or down and an optional comment, by the answer's request id."""

from __future__ import annotations

import re
from datetime import datetime
from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from strata.feedback.exceptions import InvalidFeedbackError

# What every chat answer carries in ``strata.request_id`` (strata.chat.new_request_id: uuid4 hex).
REQUEST_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
MAX_COMMENT_CHARS = 2000


class Rating(IntEnum):
    """The two thumbs a chat UI shows. No neutral value: taking a thumb back is not a rating."""

    UP = 1
    DOWN = -1


def validate_request_id(request_id: str) -> str:
    if not REQUEST_ID_PATTERN.fullmatch(request_id):
        raise InvalidFeedbackError(
            f"{request_id[:80]!r} is not a request id: "
            "use the 32 lowercase hex digits of the answer's strata.request_id",
            param="request_id",
        )
    return request_id


def validate_rating(rating: int) -> Rating:
    # bool is an int in Python; True must not pass as a thumbs up.
    if isinstance(rating, bool) or rating not in (Rating.UP, Rating.DOWN):
        raise InvalidFeedbackError(f"{rating!r} is not a rating: use 1 (thumbs up) or -1 (thumbs down)", param="rating")
    return Rating(rating)


def validate_comment(comment: str | None) -> str | None:
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise InvalidFeedbackError(
            f"is {len(comment)} characters; at most {MAX_COMMENT_CHARS} are allowed", param="comment"
        )
    return comment


class Feedback(BaseModel):
    """A tenant's rating of one answer; a later rating of the same answer replaces it."""

    model_config = ConfigDict(frozen=True)

    object: Literal["feedback"] = "feedback"
    tenant: str
    request_id: str
    rating: Literal[1, -1]
    comment: str | None = None
    key_id: str  # the key that left it
    created_at: datetime
