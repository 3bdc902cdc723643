"""The interaction log: every chat turn, as JSON Lines in S3 partitioned by date, for the
operations loop (``strata report``, ``strata export finetune``).

Feedback (``strata.feedback``) is joined to it by request id when it is read.
"""

from strata.interactions.exceptions import InteractionsError, InvalidDateRangeError
from strata.interactions.factory import build_interaction_reader, build_interaction_writer, close_interaction_writers
from strata.interactions.reader import InteractionReader
from strata.interactions.turns import interaction_of, record_turn
from strata.interactions.types import SCHEMA_VERSION, Interaction, LoggedMessage, RetrievedChunk
from strata.interactions.writer import DEFAULT_PREFIX, InteractionWriter, object_key, partition_prefix

__all__ = (
    "DEFAULT_PREFIX",
    "SCHEMA_VERSION",
    "Interaction",
    "InteractionReader",
    "InteractionWriter",
    "InteractionsError",
    "InvalidDateRangeError",
    "LoggedMessage",
    "RetrievedChunk",
    "build_interaction_reader",
    "build_interaction_writer",
    "close_interaction_writers",
    "interaction_of",
    "object_key",
    "partition_prefix",
    "record_turn",
)
