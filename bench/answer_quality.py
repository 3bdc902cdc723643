"""Answer quality on wiki-qa: does the local chat model answer from the sources it is given?

Starts the real local stack (``strata dev`` through the harness) in a temporary folder, copies
every wiki-qa article into its watched ``documents/`` folder, waits until all are ``indexed``,
then asks distinct questions (fixed seed) through the OpenAI-compatible API, buffered, with the
default model and the request's defaults (the production prompt, retrieval and decoding).

    .venv/bin/python -m bench.answer_quality [--questions 200] [--seed 7] [--off-topic] [--out FILE]

Against another tree (a worktree of an older commit), that tree first on the path; the JSON's
``imports`` and ``stack_processes`` show which tree the stack really ran:

    cd /tmp/before && PYTHONPATH=/tmp/before:/tmp/before/layers /work/main/.venv/bin/python \
        /work/main/bench/answer_quality.py --questions 200 --off-topic --out before.json

The rules, per answer:

- **contains gold**: both sides are normalized (lowercase; punctuation → space; the articles
  a/an/the dropped; whitespace collapsed). A question is often answered by several people, so
  it has several gold answers; the answer is right when it matches any of them. A gold whose
  first word is ``yes`` or ``no`` is a yes/no gold: it matches when the answer's first yes/no
  word (anywhere in the answer) is the same. Any other gold matches when the normalized gold
  occurs in the normalized answer at word boundaries. Questions whose yes/no golds disagree
  are not sampled. Full-sentence golds rarely occur verbatim, so the share is a lower bound.
- **looped**: the generation stopped at the token cap (``finish_reason == "length"``) *and* the
  text repeats itself: some 6-word sequence (normalized words) occurs at least 3 times, or the
  same sentence of at least 3 words occurs twice.
- **has marker**: the answer contains a citation marker ``[n]`` (also ``[1, 2]``).
- **honest refusal** (the ``--off-topic`` set; on wiki-qa questions it is a false refusal): see
  ``is_honest_refusal``. For the off-topic set, also whether the response returned citations.
- **AUROC** (when responses carry ``strata.confidence``): the probability that a right answer's
  confidence is above a wrong one's, Mann-Whitney U with ties counted half; over the answers
  that have a confidence, and again with a missing one (a refusal) counted as 0.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import DATASET, command_line, machine, percentile, process_tree

ARTICLES = frozenset({"a", "an", "the"})
LOOP_NGRAM_WORDS = 6
LOOP_NGRAM_REPEATS = 3
LOOP_SENTENCE_MIN_WORDS = 3
_NON_WORD = re.compile(r"[\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKER = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
_YES_NO = ("yes", "no")

# Questions that none of wiki-qa's 129 articles answers (checked with grep: tungsten appears in one
# article on Nikola Tesla, never its boiling point; the other subjects appear in none).
OFF_TOPIC_QUESTIONS = (
    "What is the boiling point of tungsten?",
    "Who won the 2018 FIFA World Cup?",
    "How do I reset my router's admin password?",
    "What is the half-life of carbon-14?",
    "How many moons does Neptune have?",
    "Who wrote the novel Pride and Prejudice?",
    "What is the recommended dose of ibuprofen for adults?",
    "How does a blockchain reach consensus?",
    "How do I configure a Kubernetes ingress?",
    "How does photosynthesis produce oxygen?",
)


# --- scoring: pure functions -------------------------------------------------------------------


def normalize(text: str) -> str:
    """Lowercase words without punctuation or articles, one space apart (SQuAD's normalization)."""
    words = _NON_WORD.sub(" ", text.lower()).split()
    return " ".join(word for word in words if word not in ARTICLES)


def yes_no_polarity(text: str) -> str | None:
    """``"yes"`` or ``"no"``: the first yes/no word of ``text``; ``None`` when it has neither."""
    return next((word for word in normalize(text).split() if word in _YES_NO), None)


def gold_polarity(gold: str) -> str | None:
    """A gold answer is a yes/no answer when its first word is yes or no ("Yes, in 1863.")."""
    words = normalize(gold).split()
    return words[0] if words and words[0] in _YES_NO else None


def matches_gold(answer: str, gold: str) -> bool:
    polarity = gold_polarity(gold)
    if polarity is not None:
        return yes_no_polarity(answer) == polarity
    needle = normalize(gold)
    return bool(needle) and f" {needle} " in f" {normalize(answer)} "


def contains_gold(answer: str, golds: Iterable[str]) -> bool:
    return any(matches_gold(answer, gold) for gold in golds)


def consistent_golds(golds: Sequence[str]) -> bool:
    """False when one answerer said yes and another no: such a question has no gold to score."""
    return len({p for gold in golds if (p := gold_polarity(gold)) is not None}) <= 1


def repeats_itself(text: str) -> bool:
    """Some ``LOOP_NGRAM_WORDS``-word sequence occurs ``LOOP_NGRAM_REPEATS`` times, or a sentence
    of at least ``LOOP_SENTENCE_MIN_WORDS`` words occurs twice."""
    words = normalize(text).split()
    ngrams = Counter(tuple(words[i : i + LOOP_NGRAM_WORDS]) for i in range(len(words) - LOOP_NGRAM_WORDS + 1))
    if ngrams and max(ngrams.values()) >= LOOP_NGRAM_REPEATS:
        return True
    sentences = Counter(
        sentence
        for part in _SENTENCE_END.split(text)
        if len((sentence := normalize(part)).split()) >= LOOP_SENTENCE_MIN_WORDS
    )
    return bool(sentences) and max(sentences.values()) >= 2


def looped(text: str, finish_reason: str | None) -> bool:
    """A loop ran into the token cap: a repetitive answer that ended on its own is only verbose."""
    return finish_reason == "length" and repeats_itself(text)


def has_marker(text: str) -> bool:
    return _MARKER.search(text) is not None


_NEGATION = re.compile(r"\b(?:not|no|cannot|can't|couldn't|don't|doesn't|unable)\b|n't\b")
_ABOUT_SOURCES = re.compile(r"\b(?:documents?|sources?|context|provided (?:text|information))\b")
_DONT_KNOW = re.compile(r"\b(?:do not|don't|does not|doesn't) (?:know|have (?:that|this|the|any) information)\b")


def is_honest_refusal(text: str) -> bool:
    """The answer says the documents do not answer: within its first two sentences, a negation
    ("not", "no", "n't", "cannot", "unable") together with a word for the sources ("document",
    "source", "context", "provided text/information"), or a plain "I do not know". Matches the
    backend's refusal ("I could not find that in your documents.") and the usual paraphrases;
    an invented answer that never says so does not match."""
    head = " ".join(_SENTENCE_END.split(text.strip().lower())[:2]).replace("\u2019", "'")
    return bool(_NEGATION.search(head) and _ABOUT_SOURCES.search(head)) or bool(_DONT_KNOW.search(head))


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U / (n·m))."""
    if not positives or not negatives:
        raise ValueError("AUROC needs at least one positive and one negative score")
    ordered = sorted([(score, True) for score in positives] + [(score, False) for score in negatives])
    rank_sum = 0.0  # of the positives, with tied scores sharing their mean rank (1-based)
    start = 0
    while start < len(ordered):
        end = start
        while end < len(ordered) and ordered[end][0] == ordered[start][0]:
            end += 1
        mean_rank = (start + 1 + end) / 2
        rank_sum += mean_rank * sum(1 for _, positive in ordered[start:end] if positive)
        start = end
    n, m = len(positives), len(negatives)
    return (rank_sum - n * (n + 1) / 2) / (n * m)


def histogram(scores: Sequence[float], bins: int = 10) -> list[int]:
    """Counts in ``bins`` equal bins over [0, 1]; 1.0 falls in the last bin."""
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(score * bins)))] += 1
    return counts


def quantiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {f"p{int(q * 100)}": round(percentile(list(values), q), 4) for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)}


# --- the questions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    golds: tuple[str, ...]  # every answer given for it; any one is enough
    documents: tuple[str, ...]  # the articles it was written from (file names)


def load_questions(count: int, seed: int) -> list[Question]:
    """``count`` distinct questions with consistent golds, shuffled with ``seed``."""
    rows = [json.loads(line) for line in (DATASET / "qa.jsonl").read_text().splitlines() if line.strip()]
    golds: dict[str, list[str]] = defaultdict(list)
    documents: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        golds[row["question"]].append(row["answer"])
        documents[row["question"]].add(row["document"])
    questions = sorted(q for q, answers in golds.items() if consistent_golds(answers))
    random.Random(seed).shuffle(questions)
    return [Question(q, tuple(golds[q]), tuple(sorted(documents[q]))) for q in questions[:count]]


# --- one answer ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    question: str
    answer: str
    finish_reason: str | None
    completion_tokens: int
    latency_s: float
    citations: list[str]  # source keys, in the order cited
    confidence: float | None
    contains_gold: bool | None = None  # None for the off-topic questions
    looped: bool = False
    has_marker: bool = False
    honest_refusal: bool = False
    cited_own_document_first: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AnswerRequestError(RuntimeError):
    """The gateway did not answer a question with a 200."""


def ask(client: Any, question: str) -> Answer:
    """One buffered chat completion with the request's defaults (model ``default``)."""
    body = {"model": "default", "messages": [{"role": "user", "content": question}]}
    began = time.perf_counter()
    response = client.post("/v1/chat/completions", json=body)
    latency = time.perf_counter() - began
    if response.status_code != 200:
        raise AnswerRequestError(f"{response.status_code} for {question!r}: {response.text[:500]}")
    payload = response.json()
    choice = payload["choices"][0]
    text = choice["message"].get("content") or ""
    strata = payload.get("strata") or {}
    return Answer(
        question=question,
        answer=text,
        finish_reason=choice.get("finish_reason"),
        completion_tokens=payload.get("usage", {}).get("completion_tokens", 0),
        latency_s=latency,
        citations=[c.get("source_key", "") for c in strata.get("citations", [])],
        confidence=strata.get("confidence"),
        looped=looped(text, choice.get("finish_reason")),
        has_marker=has_marker(text),
        honest_refusal=is_honest_refusal(text),
    )


# --- the stack ----------------------------------------------------------------------------------


def copy_articles(documents_dir: Path, questions: Sequence[Question], limit: int | None = None) -> list[str]:
    """Every article into the watched folder; with ``limit``, the questions' own articles first and
    then others up to ``limit`` (a quick run for checking the benchmark itself, not for figures)."""
    documents_dir.mkdir(parents=True, exist_ok=True)
    every = [path.name for path in sorted((DATASET / "documents").glob("*.txt"))]
    own = list(dict.fromkeys(name for question in questions for name in question.documents))
    names = every if limit is None else list(dict.fromkeys([*own, *every]))[: max(limit, len(own))]
    for name in names:
        shutil.copy(DATASET / "documents" / name, documents_dir / name)
    return names


def wait_until_indexed(stack: Any, tenant: str, names: Sequence[str], timeout_s: float) -> float:
    """Seconds until every article is ``indexed``; a ``failed`` one is an error."""
    from strata.documents import document_id_for

    began = time.perf_counter()
    pending = {document_id_for(f"tenants/{tenant}/{name}"): name for name in names}
    last_report = 0.0
    while pending:
        for document_id in list(pending):
            document = stack.document(document_id)
            if document and document["status"] == "failed":
                raise RuntimeError(f"{pending[document_id]} failed to index: {document.get('reason')}")
            if document and document["status"] == "indexed":
                del pending[document_id]
        elapsed = time.perf_counter() - began
        if elapsed > timeout_s:
            raise TimeoutError(f"{len(pending)} articles not indexed after {timeout_s:.0f} s")
        if pending and elapsed - last_report >= 30:
            print(f"indexing: {len(names) - len(pending)}/{len(names)} after {elapsed:.0f} s", file=sys.stderr)
            last_report = elapsed
        if pending:
            time.sleep(2)
    return time.perf_counter() - began


def import_origins(workdir: Path) -> dict[str, str]:
    """Where the stack's interpreter, started as the harness starts it (same executable,
    environment and working folder), imports the packages from: a check that a run against
    another tree (``PYTHONPATH``) really runs that tree, not the editable install."""
    import os
    import subprocess

    code = (
        "import json, strata, strata.prompts.templates, strata_local, model_endpoint, functions;"
        "print(json.dumps({m.__name__: m.__file__ for m in "
        "(strata, strata.prompts.templates, strata_local, model_endpoint, functions)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=dict(os.environ), capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def stack_processes(pid: int) -> list[dict[str, str]]:
    """The stack's processes with their working folder and ``PYTHONPATH``, read from /proc: the
    running stack's side of ``import_origins``."""
    processes = []
    for member in process_tree(pid):
        try:
            environ = Path(f"/proc/{member}/environ").read_bytes().split(b"\0")
            cwd = str(Path(f"/proc/{member}/cwd").readlink())
        except OSError:
            continue
        pythonpath = next((e.decode().split("=", 1)[1] for e in environ if e.startswith(b"PYTHONPATH=")), "")
        processes.append({"command": command_line(member)[:160], "cwd": cwd, "PYTHONPATH": pythonpath})
    return processes


# --- the report ---------------------------------------------------------------------------------


def share(flags: Iterable[bool | None]) -> float | None:
    values = [bool(flag) for flag in flags if flag is not None]
    return round(sum(values) / len(values), 4) if values else None


def summarize(answers: Sequence[Answer], off_topic: Sequence[Answer]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "questions": len(answers),
        "contains_gold": share(a.contains_gold for a in answers),
        "looped": share(a.looped for a in answers),
        "finish_length": share(a.finish_reason == "length" for a in answers),
        "has_marker": share(a.has_marker for a in answers),
        "cited_own_document_first": share(a.cited_own_document_first for a in answers),
        "false_refusal": share(a.honest_refusal for a in answers),
        "mean_completion_tokens": round(sum(a.completion_tokens for a in answers) / max(1, len(answers)), 1),
        "seconds_per_answer": round(sum(a.latency_s for a in answers) / max(1, len(answers)), 3),
        "latency_p50_s": round(percentile([a.latency_s for a in answers], 0.5), 3) if answers else None,
        "latency_p90_s": round(percentile([a.latency_s for a in answers], 0.9), 3) if answers else None,
        "finish_reasons": dict(Counter(a.finish_reason or "none" for a in answers)),
    }
    scored = [a for a in answers if a.confidence is not None]
    summary["with_confidence"] = len(scored)
    if scored:
        right = [a.confidence for a in scored if a.contains_gold and a.confidence is not None]
        wrong = [a.confidence for a in scored if not a.contains_gold and a.confidence is not None]
        summary["confidence_auroc"] = round(auroc(right, wrong), 4) if right and wrong else None
        # Answers without a confidence (a refusal) ranked lowest, as a client using it as a filter would.
        everything = [(a.confidence or 0.0, bool(a.contains_gold)) for a in answers]
        right_all = [score for score, ok in everything if ok]
        wrong_all = [score for score, ok in everything if not ok]
        summary["confidence_auroc_missing_as_0"] = (
            round(auroc(right_all, wrong_all), 4) if right_all and wrong_all else None
        )
        summary["confidence_right"] = {"quantiles": quantiles(right), "histogram_10": histogram(right)}
        summary["confidence_wrong"] = {"quantiles": quantiles(wrong), "histogram_10": histogram(wrong)}
    if off_topic:
        refused_confidence = [a.confidence for a in off_topic if a.confidence is not None]
        summary["off_topic"] = {
            "questions": len(off_topic),
            "honest_refusal": share(a.honest_refusal for a in off_topic),
            "with_citations": share(bool(a.citations) for a in off_topic),
            "looped": share(a.looped for a in off_topic),
            "mean_confidence": (
                round(sum(refused_confidence) / len(refused_confidence), 4) if refused_confidence else None
            ),
        }
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print("| metric | value |")
    print("|---|---|")
    for name, value in summary.items():
        if not isinstance(value, dict):
            print(f"| {name} | {value} |")
    for name in ("confidence_right", "confidence_wrong", "off_topic", "finish_reasons"):
        if name in summary:
            print(f"| {name} | {json.dumps(summary[name])} |")


def ask_all(client: Any, questions: Sequence[Question], own_keys: dict[str, str]) -> list[Answer]:
    """Each question in turn (one generation at a time, as the local model server runs them)."""
    answers: list[Answer] = []
    began = time.perf_counter()
    for number, question in enumerate(questions, 1):
        answer = ask(client, question.question)
        answer.contains_gold = contains_gold(answer.answer, question.golds)
        own = {own_keys[document] for document in question.documents}
        answer.cited_own_document_first = bool(answer.citations) and answer.citations[0] in own
        answer.extra["golds"] = list(question.golds)
        answers.append(answer)
        if number % 20 == 0 or number == len(questions):
            right = sum(bool(a.contains_gold) for a in answers)
            print(
                f"{number}/{len(questions)} asked in {time.perf_counter() - began:.0f} s; "
                f"contains gold {right}/{number}",
                file=sys.stderr,
            )
    return answers


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start a stack, index the articles, ask, stop; the report with every answer."""
    import httpx

    from strata_local.harness import start_stack

    questions = load_questions(args.questions, args.seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="answer-quality-") as tmp:
        workdir = Path(tmp)
        origins = import_origins(workdir)
        print(f"stack imports: {json.dumps(origins)}", file=sys.stderr)
        names = copy_articles(workdir / "documents", questions, args.max_articles)
        stack = start_stack(workdir)
        try:
            processes = stack_processes(stack.process.pid)
            tenant = stack.env["STRATA_TENANT"]
            indexed_s = wait_until_indexed(stack, tenant, names, args.index_timeout)
            print(f"indexed {len(names)} articles in {indexed_s:.0f} s", file=sys.stderr)
            own_keys = {name: f"tenants/{tenant}/{name}" for name in names}
            headers = {"Authorization": f"Bearer {stack.env['STRATA_API_KEY']}"}
            asked = time.perf_counter()
            client = httpx.Client(base_url=stack.base_url, headers=headers, timeout=args.timeout, trust_env=False)
            with client:
                answers = ask_all(client, questions, own_keys)
                off_topic = [ask(client, q) for q in OFF_TOPIC_QUESTIONS] if args.off_topic else []
            asking_s = time.perf_counter() - asked
        finally:
            stack.stop()
    return {
        "machine": machine(),
        "seed": args.seed,
        "imports": origins,
        "stack_processes": processes,
        "articles": len(names),
        "indexed_s": round(indexed_s, 1),
        "asking_s": round(asking_s, 1),
        "wall_s": round(time.perf_counter() - began, 1),
        "summary": summarize(answers, off_topic),
        "answers": [asdict(a) for a in answers],
        "off_topic_answers": [asdict(a) for a in off_topic],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="distinct questions, sampled with --seed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--off-topic", action="store_true", help=f"also ask {len(OFF_TOPIC_QUESTIONS)} off-corpus ones")
    parser.add_argument("--out", type=Path, help="write the summary and every answer as JSON here")
    parser.add_argument(
        "--max-articles", type=int, help="index only the questions' articles and others up to this many (a smoke run)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds for one answer")
    parser.add_argument("--index-timeout", type=float, default=3600, help="seconds for the articles to index")
    args = parser.parse_args()
    report = run(args)
    print(f"machine: {report['machine']}")
    print(
        f"{report['articles']} articles indexed in {report['indexed_s']:.0f} s; {report['summary']['questions']} "
        f"questions (seed {args.seed}) asked in {report['asking_s']:.0f} s; wall {report['wall_s']:.0f} s"
    )
    print_summary(report["summary"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
