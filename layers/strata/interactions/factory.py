from __future__ import annotations

import atexit

from strata import aws
from strata.config import Settings
from strata.interactions.reader import InteractionReader
from strata.interactions.writer import InteractionWriter

_WRITERS: list[InteractionWriter] = []


def build_interaction_writer(settings: Settings) -> InteractionWriter | None:
    """The writer to the interaction log's bucket, closed (flushed) at exit; None when the log is off."""
    if not settings.interaction_log:
        return None
    writer = InteractionWriter(
        aws.client("s3", settings), settings.interactions_bucket, prefix=settings.interactions_prefix
    )
    atexit.register(writer.close)
    _WRITERS.append(writer)
    return writer


def close_interaction_writers() -> None:
    """Flush every writer this process built: the local stack does so before it saves its state."""
    while _WRITERS:
        _WRITERS.pop().close()


def build_interaction_reader(settings: Settings) -> InteractionReader:
    return InteractionReader(
        aws.client("s3", settings), settings.interactions_bucket, prefix=settings.interactions_prefix
    )
