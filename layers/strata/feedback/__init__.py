"""Feedback on answers: a thumbs up or down and a comment, per tenant, by the answer's request id."""

from strata.feedback.exceptions import FeedbackError, FeedbackNotFoundError, InvalidFeedbackError
from strata.feedback.store import MAX_LIST_LIMIT, FeedbackStore, build_feedback_store
from strata.feedback.types import (
    MAX_COMMENT_CHARS,
    Feedback,
    Rating,
    validate_comment,
    validate_rating,
    validate_request_id,
)

__all__ = (
    "MAX_COMMENT_CHARS",
    "MAX_LIST_LIMIT",
    "Feedback",
    "FeedbackError",
    "FeedbackNotFoundError",
    "FeedbackStore",
    "InvalidFeedbackError",
    "Rating",
    "build_feedback_store",
    "validate_comment",
    "validate_rating",
    "validate_request_id",
)
