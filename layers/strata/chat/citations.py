from __future__ import annotations

import re
from collections.abc import Sequence

from strata.chat.protocol import Citation
from strata.retrieval import SearchHit

_MARKER = re.compile(r"\[(\d{1,3})\]")


def referenced_numbers(answer: str) -> set[int]:
    return {int(number) for number in _MARKER.findall(answer)}


def build_citations(sources: Sequence[SearchHit], answer: str) -> list[Citation]:
    referenced = referenced_numbers(answer)
    return [
        Citation(
            index=number,
            document_id=hit.document_id,
            source_key=hit.source_key,
            title=hit.title,
            chunk=hit.chunk_index,
            page=hit.page,
            score=round(hit.score, 6),
            referenced=number in referenced,
        )
        for number, hit in enumerate(sources, start=1)
    ]
