"""Prompt assembly: number the retrieved sources and put them in the system message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strata.prompts.templates import NO_SOURCES, SOURCE_TEMPLATE, SYSTEM_PROMPT
from strata.retrieval import SearchHit


@dataclass(frozen=True, slots=True)
class AssembledPrompt:
    messages: list[dict[str, Any]]
    sources: list[SearchHit]  # sources[i] is cited as [i + 1]


def assemble_prompt(
    messages: Sequence[dict[str, Any]], hits: Sequence[SearchHit], *, max_context_chars: int
) -> AssembledPrompt:
    """Sources in rank order until the context budget is spent; the caller's own system
    messages follow ours so a client can still steer tone and format."""
    sources: list[SearchHit] = []
    blocks: list[str] = []
    used = 0
    for hit in hits:
        block = SOURCE_TEMPLATE.format(number=len(sources) + 1, title=hit.title, text=hit.text.strip())
        if sources and used + len(block) > max_context_chars:
            break
        sources.append(hit)
        blocks.append(block[:max_context_chars])
        used += len(block)
    system = SYSTEM_PROMPT.format(sources="\n\n".join(blocks) if blocks else NO_SOURCES)
    return AssembledPrompt(messages=[{"role": "system", "content": system}, *messages], sources=sources)
