"""Time and CPU per request of the prompt and validation stages, in process, on wiki-qa text.

Assembly: the built-in prompt, the top ``--sources`` hybrid hits of a wiki-qa question (real
chunks, as indexed), a conversation of ``--turns`` earlier turns and the question, fitted with the
local model's tokenizer (SmolLM2's chat template, as the model server counts it) into a 2048-token
window less 256 for the answer; a second case with a window so small that sources are dropped.
Validation: an answer of about 150 tokens (the chunks' own sentences with citation markers, an
e-mail address and a card number in it) fed token by token — SmolLM2's own token boundaries —
through the loop guard, the citation check and the personal-data redactor, then the confidence
score. Each figure is the median and 99th percentile over ``--runs`` requests, wall clock and
process CPU; the baseline in the same run is the tokenizer pass alone (one ``count_messages``
of the same messages), what any token-exact assembly has to pay.

    .venv/bin/python -m bench.answer_stages [--runs 500]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

from bench.common import DATASET, machine
from strata.inference import Message, TextDelta, token_counter
from strata.prompts import assemble_prompt
from strata.prompts.templates import BUILTIN_INSTRUCTIONS
from strata.retrieval import SearchHit
from strata.validation import CitationCheck, LoopGuard, PiiRedactor, answer_confidence, validated

WINDOW, MAX_TOKENS = 2048, 256


def chunks_of(text: str, size: int = 900) -> list[str]:
    words, out, current = text.split(), [], []
    for word in words:
        current.append(word)
        if sum(len(w) + 1 for w in current) > size:
            out.append(" ".join(current))
            current = []
    return out


def hits_from_wiki_qa(count: int) -> tuple[str, list[SearchHit]]:
    row = json.loads((DATASET / "qa.jsonl").read_text().splitlines()[0])
    text = (DATASET / "documents" / row["document"]).read_text()
    hits = [
        SearchHit(
            tenant="bench",
            document_id=f"d{i}",
            chunk_index=i,
            text=chunk,
            source_key=f"tenants/bench/{row['document']}",
            title=row["document"],
            char_start=0,
            char_end=len(chunk),
            score=1 - i / 10,
            similarity=0.6,
        )
        for i, chunk in enumerate(chunks_of(text)[:count])
    ]
    return row["question"], hits


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(runs: int, work: Callable[[], object]) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        work()
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    (wall50, wall99), (cpu50, cpu99) = percentiles(wall), percentiles(cpu)
    return {"wall_p50_ms": wall50, "wall_p99_ms": wall99, "cpu_p50_ms": cpu50, "cpu_p99_ms": cpu99}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    counter = token_counter("smollm2")
    question, hits = hits_from_wiki_qa(args.sources)
    rng = random.Random(1)
    history = [
        Message("user" if i % 2 == 0 else "assistant", " ".join(rng.choice(hits).text.split()[:40]))
        for i in range(args.turns)
    ]
    conversation = [*history, Message("user", question)]

    def assemble(budget: int) -> Callable[[], object]:
        return lambda: assemble_prompt(
            instructions=BUILTIN_INSTRUCTIONS, conversation=conversation, hits=hits, counter=counter, budget=budget
        )

    fitted = assemble(WINDOW - MAX_TOKENS)()
    tight_budget = fitted.context.prompt_tokens - 250  # a source and more too many
    tight = assemble(tight_budget)()

    sentences = [s.strip() + "." for h in hits for s in h.text.split(".")[:2] if s.strip()]
    answer = " ".join(f"{s[:-1]} [{i % len(hits) + 1}]." for i, s in enumerate(sentences))
    answer += " Write to jane.doe@example.com or pay with 4111 1111 1111 1111."
    tokenizer = counter._load()  # noqa: SLF001 - the model's own token boundaries, for a realistic stream
    ids = tokenizer.encode(answer, add_special_tokens=False).ids
    pieces = [tokenizer.decode(ids[: i + 1]) for i in range(len(ids))]
    tokens = [b[len(a) :] for a, b in zip(["", *pieces], pieces, strict=False)]
    sources = [h.text for h in hits]

    def validate() -> object:
        validators = [LoopGuard(), CitationCheck(hits), PiiRedactor()]
        text = "".join(e.text for e in validated(iter([TextDelta(t) for t in tokens]), validators))
        return answer_confidence(text, sources, question=question)

    results = {
        "tokenizer pass alone (baseline)": measure(args.runs, lambda: counter.count_messages(fitted.messages)),
        f"assembly, all {args.sources} sources fit ({fitted.context.prompt_tokens} tokens)": measure(
            args.runs, assemble(WINDOW - MAX_TOKENS)
        ),
        f"assembly, {tight.context.sources_dropped} sources dropped ({tight.context.prompt_tokens} tokens)": measure(
            args.runs, assemble(tight_budget)
        ),
        f"validation of a {len(tokens)}-token answer + confidence": measure(args.runs, validate),
    }
    print(f"machine: {machine()}; {args.runs} requests each")
    print(f"{'stage':<58} {'wall p50':>9} {'p99':>7} {'cpu p50':>8} {'p99':>7}  (ms)")
    for name, r in results.items():
        print(
            f"{name:<58} {r['wall_p50_ms']:9.3f} {r['wall_p99_ms']:7.3f} {r['cpu_p50_ms']:8.3f} {r['cpu_p99_ms']:7.3f}"
        )


if __name__ == "__main__":
    main()
