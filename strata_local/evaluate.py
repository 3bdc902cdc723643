"""``strata eval``: how well does search find the article a question was written from?

Indexes a question-answering dataset (wiki-qa's layout: ``documents/*.txt`` and ``qa.jsonl`` rows
with ``question`` and ``document``) with the production parts (parse, token-aware chunking,
embedding, the embedded vector store) in a temporary folder, asks each distinct question in
each search mode, and reports hit@1/5/10 and MRR@10 of the first chunk from the question's own
article. Byte-identical copies of an article count as the same article.

The metric and split code here is shared with ``bench/retrieval_quality.py``.

    strata eval [--dataset PATH] [--questions N] [--split all|tuning|held-out] [--json]

With ``--json`` stdout carries exactly one JSON object,
``{"keyword": {"hit@1": …, "hit@5": …, "hit@10": …, "mrr": …}, "vector": {…}, "hybrid": {…}}``;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from strata.retrieval import QueryEmbedder, SearchMode

if TYPE_CHECKING:
    from strata.ingest import Chunker
    from strata.retrieval import HybridConfig, VectorStore

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "wiki-qa"
TENANT = "eval"
CUTOFFS = (1, 5, 10)
# The order modes are reported in (the JSON contract lists keyword, vector, hybrid).
MODES = (SearchMode.KEYWORD, SearchMode.VECTOR, SearchMode.HYBRID)
SEED = 7

Split = Literal["all", "tuning", "held-out"]
SPLITS: tuple[Split, ...] = ("all", "tuning", "held-out")

# wiki-qa names articles "s08_set3_a4_abraham_lincoln.txt": year, set, article, then the topic.
_ARTICLE_PREFIX = re.compile(r"^s\d+_set\d+_a\d+_")


class DatasetError(ValueError):
    """The dataset folder is missing a part or holds rows that do not fit."""


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    """A distinct question and the file name of the article it was written from."""

    text: str
    document: str


def load_questions(dataset: Path) -> list[EvalQuestion]:
    """Distinct questions of ``dataset/qa.jsonl``, sorted (one row per question; the first
    article named wins when a question repeats)."""
    qa = dataset / "qa.jsonl"
    if not qa.is_file() or not (dataset / "documents").is_dir():
        raise DatasetError(f"{dataset} must hold qa.jsonl and documents/ (wiki-qa's layout)")
    by_question: dict[str, str] = {}
    for number, line in enumerate(qa.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            by_question.setdefault(row["question"], row["document"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(f"{qa}:{number}: not a row with 'question' and 'document' ({error})") from error
    return [EvalQuestion(text, document) for text, document in sorted(by_question.items())]


def article_topic(document: str) -> str:
    """The article's topic, the same for every revision of it (``abraham_lincoln``)."""
    return _ARTICLE_PREFIX.sub("", Path(document).stem)


def split_of(document: str) -> Split:
    """``tuning`` or ``held-out``, by a hash of the article's topic.

    By topic, not by question: wiki-qa asks many near-identical questions about each article
    and holds several revisions of some (2008 and 2009 "otter"), so a split by question would
    tune on paraphrases of held-out questions. A hash, not a list, so that a new article falls
    in a fixed half without re-splitting the others.
    """
    digest = hashlib.sha256(article_topic(document).encode()).digest()
    return "tuning" if digest[0] % 2 == 0 else "held-out"


def select_questions(
    questions: Sequence[EvalQuestion], split: Split = "all", limit: int | None = None, seed: int = SEED
) -> list[EvalQuestion]:
    """The questions of ``split``, shuffled with ``seed``, the first ``limit`` of them."""
    chosen = [q for q in questions if split == "all" or split_of(q.document) == split]
    random.Random(seed).shuffle(chosen)
    return chosen if limit is None else chosen[:limit]


def rank_of(expected: str, found: Sequence[str]) -> int | None:
    """The 1-based rank of the first ``expected`` in ``found``, None when it is not there."""
    return found.index(expected) + 1 if expected in found else None


def retrieval_metrics(ranks: Sequence[int | None], cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    """``hit@c`` for each cutoff (the share of questions answered by the first ``c`` hits) and
    ``mrr`` (mean reciprocal rank, 0 for a rank past the largest cutoff)."""
    if not ranks:
        raise ValueError("no questions to score")
    deepest = max(cutoffs)
    metrics = {f"hit@{c}": sum(r is not None and r <= c for r in ranks) / len(ranks) for c in cutoffs}
    metrics["mrr"] = sum(1 / r for r in ranks if r is not None and r <= deepest) / len(ranks)
    return metrics


def index_documents(
    store: VectorStore,
    embedder: QueryEmbedder,
    chunker: Chunker,
    documents: Iterable[Path],
    *,
    tenant: str = TENANT,
    progress: bool = False,
) -> dict[str, str]:
    """Parse, chunk, embed and store each document; returns document id → content hash, so
    that byte-identical copies of an article count as one."""
    from tqdm import tqdm

    from strata.documents import parse_source_key
    from strata.ingest import parse_document
    from strata.ingest.pipeline import chunk_records

    paths = sorted(documents)
    same_content: dict[str, str] = {}
    for path in tqdm(paths, desc="indexing", unit="doc", file=sys.stderr, disable=not progress):
        data = path.read_bytes()
        source = parse_source_key(f"tenants/{tenant}/{path.name}")
        same_content[source.document_id] = hashlib.sha256(data).hexdigest()
        parsed = parse_document(data, key=source.key)
        chunks = chunker.chunk(parsed)
        if chunks:
            store.upsert(chunk_records(source, parsed.title, chunks, embedder.embed([c.text for c in chunks])))
    return same_content


def question_ranks(
    store: VectorStore,
    embedder: QueryEmbedder,
    questions: Sequence[EvalQuestion],
    same_content: dict[str, str],
    *,
    tenant: str = TENANT,
    modes: Sequence[SearchMode] = MODES,
    progress: bool = False,
) -> dict[SearchMode, list[int | None]]:
    """Each mode's rank of each question's article among its first ``max(CUTOFFS)`` hits."""
    from tqdm import tqdm

    vectors = embedder.embed([q.text for q in questions])
    with tqdm(
        total=len(questions) * len(modes), desc="searching", unit="q", file=sys.stderr, disable=not progress
    ) as bar:
        return {
            mode: mode_ranks(store, questions, vectors, same_content, mode, tenant=tenant, advance=bar.update)
            for mode in modes
        }


def mode_ranks(
    store: VectorStore,
    questions: Sequence[EvalQuestion],
    vectors: Sequence[Sequence[float]],
    same_content: dict[str, str],
    mode: SearchMode,
    *,
    tenant: str = TENANT,
    advance: Callable[[int], object] | None = None,
) -> list[int | None]:
    """One mode's rank of each question's article (``vectors``: the questions' embeddings)."""
    from strata.documents import parse_source_key

    ranks: list[int | None] = []
    for question, vector in zip(questions, vectors, strict=True):
        expected = same_content[parse_source_key(f"tenants/{tenant}/{question.document}").document_id]
        hits = store.search(tenant=tenant, query_text=question.text, query_vector=vector, k=max(CUTOFFS), mode=mode)
        ranks.append(rank_of(expected, [same_content[h.document_id] for h in hits]))
        if advance is not None:
            advance(1)
    return ranks


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Per-mode metrics and what they were measured on."""

    metrics: dict[str, dict[str, float]]
    articles: int
    chunks: int
    questions: int
    split: Split

    def table(self) -> str:
        header = "| mode | " + " | ".join(f"hit@{c}" for c in CUTOFFS) + " | MRR@10 |"
        rows = [header, "|---" * (len(CUTOFFS) + 2) + "|"]
        for mode, values in self.metrics.items():
            cells = " | ".join(f"{values[f'hit@{c}']:.3f}" for c in CUTOFFS)
            rows.append(f"| {mode} | {cells} | {values['mrr']:.3f} |")
        return "\n".join(rows)


def evaluate(
    dataset: Path,
    *,
    embedder: QueryEmbedder,
    chunker: Chunker,
    split: Split = "all",
    limit: int | None = None,
    hybrid: HybridConfig | None = None,
    progress: bool = False,
) -> EvalReport:
    """Index ``dataset`` in a temporary embedded store and score every mode on its questions."""
    from strata.retrieval import LocalVectorStore
    from strata.retrieval.factory import LOCAL_HYBRID

    questions = select_questions(load_questions(dataset), split, limit)
    if not questions:
        raise DatasetError(f"{dataset} has no questions in the {split!r} split")
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalVectorStore(Path(workdir) / "vectors.db", hybrid=hybrid or LOCAL_HYBRID) as store,
    ):
        same_content = index_documents(
            store, embedder, chunker, (dataset / "documents").glob("*.txt"), progress=progress
        )
        ranks = question_ranks(store, embedder, questions, same_content, progress=progress)
        chunks = store.count(TENANT)
    return EvalReport(
        metrics={mode.value: retrieval_metrics(mode_ranks) for mode, mode_ranks in ranks.items()},
        articles=len(same_content),
        chunks=chunks,
        questions=len(questions),
        split=split,
    )


class SentenceTransformersEmbedder:
    """The local embedding model (all-MiniLM-L6-v2), normalized and truncated as ingestion does."""

    def __init__(self) -> None:
        from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend

        self._backend = SentenceTransformersEmbeddingBackend()
        self._backend.load()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self._backend.embed(texts, normalize=True, truncate=True)


def add_eval_command(commands: Any) -> None:
    """Add ``strata eval`` to the ``strata`` command's subparsers."""
    parser = commands.add_parser("eval", help="measure retrieval quality (hit@k, MRR) on a QA dataset")
    parser.add_argument(
        "--dataset", type=Path, default=DEFAULT_DATASET, help="folder with qa.jsonl and documents/ (wiki-qa)"
    )
    parser.add_argument("--questions", type=_positive, default=None, help="at most N distinct questions (fixed seed)")
    parser.add_argument("--split", choices=SPLITS, default="all", help="the article half to ask about")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--answers", action="store_true", help="also score answers end to end (not built yet)")
    parser.set_defaults(run=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    if args.answers:
        print(
            "error: --answers needs a running stack (an --api-url and an API key) and is not built into "
            "`strata eval` yet; score answers with `python -m bench.answer_quality`",
            file=sys.stderr,
        )
        return 2
    from strata.config import Settings
    from strata.ingest import Chunker

    settings = Settings()
    try:
        report = evaluate(
            args.dataset,
            embedder=SentenceTransformersEmbedder(),
            chunker=Chunker.for_embedding_model(settings.chunk_tokens, settings.chunk_overlap_tokens),
            split=args.split,
            limit=args.questions,
            progress=True,
        )
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.metrics))
        return 0
    print(
        f"{report.articles} articles, {report.chunks} chunks; {report.questions} distinct questions "
        f"({report.split} split, seed {SEED})"
    )
    print(report.table())
    return 0


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)
