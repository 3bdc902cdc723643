"""Prompt assembly, token-exact: instructions, sources, history and the question, fitted into the
model's context window as counted by that model's own tokenizer.

What goes where:

* one system message: the prompt's instructions, then the caller's own system messages, so a
  client can still steer tone and format;
* the conversation as the caller sent it, except that the last user message (the question)
  starts with the sources, each in its own ``<source id="n" title="…">`` block in rank order
  (cited as ``[n]``), and ends with ``Question: …``. Next to the question is where a small
  model reads them best (bench/RESULTS.md, "Answer quality"); a larger one does not mind.

Sources are untrusted data. A document (or a title taken from a file name) must not be able to
close its block, forge another one, or pose as the prompt: inside a block ``<`` and ``>`` are
written as ``&lt;`` and ``&gt;`` and a title is one line of at most 200 characters with no
quotes, so the only tags in the system message are the ones assembly wrote.

When it does not fit in ``budget`` tokens (the window minus the answer's ``max_tokens``), the
lowest-ranked sources are dropped first, then the oldest turns; the question never is. What was
dropped is reported in ``ContextReport``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from strata.inference import Message, TokenCounter
from strata.prompts.templates import NO_SOURCES, SOURCES_PREAMBLE
from strata.retrieval import SearchHit

MAX_TITLE_CHARS = 200
_TITLE_UNSAFE = re.compile(r'[\x00-\x1f\x7f"<>\u2028\u2029]+')


class ContextWindowExceededError(ValueError):
    """The question (with the instructions) leaves no room for an answer in the model's window."""


@dataclass(frozen=True, slots=True)
class ContextReport:
    """What assembly kept and dropped (sent as ``strata.context``)."""

    sources_used: int
    sources_dropped: int
    turns_dropped: int
    prompt_tokens: int  # the assembled messages, counted with the model's tokenizer
    budget: int  # the tokens the prompt could use: the window minus max_tokens


@dataclass(frozen=True, slots=True)
class AssembledPrompt:
    messages: tuple[Message, ...]
    sources: list[SearchHit]  # sources[i] is cited as [i + 1]
    context: ContextReport


def source_block(number: int, hit: SearchHit) -> str:
    # The heading path tells the model where in its document a passage sits: "Guide › Install".
    where = " › ".join([hit.title, *hit.heading_path]) if hit.heading_path else hit.title
    return f'<source id="{number}" title="{_title(where)}">\n{_escape(hit.text.strip())}\n</source>'


def assemble_prompt(
    *,
    instructions: str,
    conversation: Sequence[Message],
    hits: Sequence[SearchHit],
    counter: TokenCounter,
    budget: int,
) -> AssembledPrompt:
    """Fit ``instructions``, ``hits`` (best first) and ``conversation`` into ``budget`` tokens,
    dropping as few pieces as it takes: the lowest-ranked sources, then the oldest turns.

    Raises ``ContextWindowExceededError`` when the instructions and the question alone do not fit.
    """
    caller_system = [m.content for m in conversation if m.role == "system"]
    turns = [m for m in conversation if m.role != "system"]
    # Everything before the last user message may go, oldest first; the question never does.
    droppable = max((i for i, m in enumerate(turns) if m.role == "user"), default=0)
    blocks = [source_block(n, hit) for n, hit in enumerate(hits, start=1)]

    def kept(drops: int) -> tuple[int, int]:
        """(sources kept, turns dropped) after the first ``drops`` pieces of the drop order."""
        return len(blocks) - min(drops, len(blocks)), max(0, drops - len(blocks))

    def build(drops: int) -> tuple[Message, ...]:
        n_sources, n_turns = kept(drops)
        notes = [] if n_sources else [NO_SOURCES]
        parts = (instructions.strip(), *notes, *caller_system)
        system = Message(role="system", content="\n\n".join(part for part in parts if part))
        kept_turns = list(turns[n_turns:])
        at = droppable - n_turns  # the question's place among the kept turns
        if n_sources and at < len(kept_turns) and kept_turns[at].role == "user":
            kept_turns[at] = Message("user", _with_sources(blocks[:n_sources], kept_turns[at].content))
        return (system, *kept_turns)

    def count(drops: int) -> int:
        return counter.count_messages(build(drops))

    most = len(blocks) + droppable
    drops, tokens = 0, count(0)
    if tokens > budget:
        # Guess from the pieces' own counts (one tokenizer pass each), then let the exact count of
        # the whole decide: joining pieces can move a token boundary either way.
        sizes = [counter.count(b) for b in reversed(blocks)] + [counter.count(t.content) for t in turns[:droppable]]
        excess = tokens - budget
        while drops < most and excess > 0:
            excess -= sizes[drops]
            drops += 1
        tokens = count(drops)
        while tokens > budget and drops < most:
            drops += 1
            tokens = count(drops)
        while drops > 0 and (fewer := count(drops - 1)) <= budget:
            drops, tokens = drops - 1, fewer
        if tokens > budget:
            raise ContextWindowExceededError(
                f"The instructions and the question use {tokens} tokens, more than the {budget} that this "
                "model's context window leaves beside the answer's max_tokens. Shorten the question or "
                "lower max_tokens."
            )
    n_sources, n_turns = kept(drops)
    return AssembledPrompt(
        messages=build(drops),
        sources=list(hits[:n_sources]),
        context=ContextReport(
            sources_used=n_sources,
            sources_dropped=len(blocks) - n_sources,
            turns_dropped=n_turns,
            prompt_tokens=tokens,
            budget=budget,
        ),
    )


def _with_sources(blocks: Sequence[str], question: str) -> str:
    return f"{SOURCES_PREAMBLE}\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _title(title: str) -> str:
    one_line = " ".join(_TITLE_UNSAFE.sub(" ", title).split())
    return one_line[:MAX_TITLE_CHARS]
