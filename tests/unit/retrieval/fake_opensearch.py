"""An in-memory OpenSearch behind a real ``opensearchpy.OpenSearch`` client, for the subset of the
API the adapter uses: index create/exists, adding fields to a mapping, search pipelines,
``_bulk``, ``_delete_by_query``, ``_count`` and ``_search`` with ``knn`` (with ``filter``),
``match`` inside ``bool``, ``ids`` and ``hybrid`` through the pipeline's processor.

It answers the way OpenSearch does, per its documentation:

* ``knn`` with ``filter`` (efficient k-NN filtering): the ``k`` nearest among the documents the
  filter matches, scored ``(1 + cos) / 2`` for ``cosinesimil``; exact here.
* ``match``: Lucene BM25 (k1 = 1.2, b = 0.75, ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``) over
  the whole index, with a small analyzer (lowercase, letters and digits, ``_english_`` stop words,
  a plural-stripping stand-in for ``porter_stem``).
* ``hybrid``: each sub-query runs on its own with ``size`` hits; ``normalization-processor``
  normalizes each sub-query with ``min_max`` over the hits it returned (a 0 becomes 0.001, a
  single or all-equal score 1.0) and combines with the weighted ``arithmetic_mean`` (a document
  missing from a sub-query counts 0 there and its weight still counts); ``score-ranker-processor``
  adds ``weight / (rank_constant + rank)`` per sub-query. This is written from the documentation, not
  from ``strata.retrieval.hybrid``, so the contract test compares two readings of it.

``sub_scores`` lets a test dictate the raw scores of a hybrid query's sub-queries
(``{"keyword": {_id: score}, "vector": {_id: score}}``), to feed both adapters the same candidates.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from opensearchpy import Connection, OpenSearch

from strata.retrieval.keywords import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[^\W_]+")
K1, B = 1.2, 0.75

Reply = tuple[int, Any]


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: Any


@dataclass
class FakeCluster:
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    sub_scores: dict[str, dict[str, float]] | None = None

    # -- routing ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        self.requests.append(request)
        parts = [p for p in request.path.split("/") if p]
        if parts[:2] == ["_search", "pipeline"] and request.method == "PUT":
            self.pipelines[parts[2]] = request.body
            return 200, {"acknowledged": True}
        index = parts[0]
        if len(parts) == 1:
            return self._index_admin(request, index)
        if index not in self.indices:
            return 404, {"error": {"type": "index_not_found_exception", "index": index}, "status": 404}
        action = parts[1]
        if action == "_mapping" and request.method == "PUT":
            properties = self.indices[index]["mappings"]["properties"]
            for name, mapping in request.body["properties"].items():
                if name in properties and properties[name] != mapping:
                    error = {"type": "illegal_argument_exception", "reason": f"cannot change the mapping of [{name}]"}
                    return 400, {"error": error, "status": 400}
                properties[name] = mapping
            return 200, {"acknowledged": True}
        if action == "_bulk":
            return self._bulk(index, request.body)
        if action == "_delete_by_query":
            docs = self.documents[index]
            doomed = [i for i, d in docs.items() if matches(d, request.body["query"])]
            for i in doomed:
                del docs[i]
            return 200, {"deleted": len(doomed)}
        if action == "_count":
            return 200, {"count": sum(matches(d, request.body["query"]) for d in self.documents[index].values())}
        if action == "_search":
            return self._search(index, request)
        return 400, {"error": {"type": "unsupported_in_fake", "reason": request.path}, "status": 400}

    def _index_admin(self, request: Request, index: str) -> Reply:
        if request.method == "HEAD":
            return (200, {}) if index in self.indices else (404, {})
        if request.method == "PUT":
            if index in self.indices:
                return 400, {"error": {"type": "resource_already_exists_exception"}, "status": 400}
            body = request.body
            assert body["settings"]["index"]["knn"] is True, "a k-NN index needs index.knn: true"
            vector = body["mappings"]["properties"]["vector"]
            assert vector["type"] == "knn_vector" and vector["method"]["engine"] == "faiss"
            self.indices[index] = body
            self.documents[index] = {}
            return 200, {"acknowledged": True, "index": index}
        return 400, {"error": {"type": "unsupported_in_fake"}, "status": 400}

    def _bulk(self, index: str, actions: list[dict[str, Any]]) -> Reply:
        properties = self.indices[index]["mappings"]["properties"]
        items, errors = [], False
        for action, source in zip(actions[::2], actions[1::2], strict=True):
            meta = action["index"]
            unknown = set(source) - set(properties)
            if unknown:  # "dynamic": "strict"
                errors = True
                error = {"type": "strict_dynamic_mapping_exception", "reason": f"fields {sorted(unknown)}"}
                items.append({"index": {"_id": meta["_id"], "status": 400, "error": error}})
                continue
            self.documents[index][meta["_id"]] = source
            items.append({"index": {"_id": meta["_id"], "status": 201}})
        return 200, {"errors": errors, "items": items}

    # -- search -------------------------------------------------------------------------------

    def _search(self, index: str, request: Request) -> Reply:
        body = request.body
        docs = self.documents[index]
        size = body.get("size", 10)
        query = body["query"]
        if "hybrid" in query:
            pipeline = self.pipelines[request.params["search_pipeline"]]
            scored = self._hybrid(docs, query["hybrid"]["queries"], size, pipeline)
        else:
            assert "search_pipeline" not in request.params
            scored = self._run(docs, query, size)
        excludes = set(body.get("_source", {}).get("excludes", [])) if isinstance(body.get("_source"), dict) else set()
        includes = body.get("_source") if isinstance(body.get("_source"), list) else None
        hits = []
        for doc_id, score in scored[:size]:
            source = docs[doc_id]
            shown = {k: v for k, v in source.items() if k in includes} if includes else source
            hits.append({"_index": index, "_id": doc_id, "_score": score, "_source": {
                k: v for k, v in shown.items() if k not in excludes}})  # fmt: skip
        return 200, {"hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits}}

    def _run(self, docs: dict[str, dict[str, Any]], query: dict[str, Any], size: int) -> list[tuple[str, float]]:
        if "ids" in query:
            return [(i, 1.0) for i in query["ids"]["values"] if i in docs]
        if "knn" in query:
            ((field_name, knn),) = query["knn"].items()
            allowed = [i for i, d in docs.items() if matches(d, knn.get("filter", {"match_all": {}}))]
            scored = [(i, (1.0 + _cosine(docs[i][field_name], knn["vector"])) / 2.0) for i in allowed]
            return _ranked(scored)[: min(knn["k"], size)]
        clauses = query["bool"]
        (match,) = [c["match"] for c in clauses["must"]]
        ((field_name, spec),) = match.items()
        filters = clauses.get("filter", [])
        candidates = [i for i, d in docs.items() if all(matches(d, f) for f in filters)]
        scores = _bm25(docs, field_name, spec["query"], candidates)
        return _ranked(list(scores.items()))[:size]

    def _hybrid(
        self, docs: dict[str, dict[str, Any]], queries: list[dict[str, Any]], size: int, pipeline: dict[str, Any]
    ) -> list[tuple[str, float]]:
        assert len(queries) <= 5, "a hybrid query takes at most 5 sub-queries"
        results = []
        for name, sub in zip(("keyword", "vector"), queries, strict=True):
            if self.sub_scores is not None:
                results.append(_ranked(list(self.sub_scores[name].items()))[:size])
            else:
                results.append(self._run(docs, sub, size))
        ((processor, spec),) = pipeline["phase_results_processors"][0].items()
        combined: dict[str, float] = {}
        if processor == "score-ranker-processor":
            assert spec["combination"].get("technique", "rrf") == "rrf"
            constant = spec["combination"].get("rank_constant", 60)
            # "By default, each subquery is given an equal weight of 1."
            weights = spec["combination"].get("parameters", {}).get("weights", [1.0] * len(results))
            for weight, result in zip(weights, results, strict=True):
                for rank, (doc_id, _) in enumerate(result, start=1):
                    combined[doc_id] = combined.get(doc_id, 0.0) + weight / (constant + rank)
            return _ranked(list(combined.items()))
        assert processor == "normalization-processor"
        assert spec["normalization"]["technique"] == "min_max"
        assert spec["combination"]["technique"] == "arithmetic_mean"
        weights = spec["combination"].get("parameters", {}).get("weights", [1 / len(results)] * len(results))
        normalized = []
        for result in results:
            scores = dict(result)
            low, high = (min(scores.values()), max(scores.values())) if scores else (0.0, 0.0)
            normalized.append(
                {i: 1.0 if high == low else ((s - low) / (high - low) or 0.001) for i, s in scores.items()}
            )
        for doc_id in {i for scores in normalized for i in scores}:
            total = sum(w * scores.get(doc_id, 0.0) for w, scores in zip(weights, normalized, strict=True))
            combined[doc_id] = total / sum(weights)
        return _ranked(list(combined.items()))


def matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """The filter subset: ``match_all``, ``term``, ``terms``, ``bool`` (filter, must, must_not)."""
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return True
    if kind in ("term", "terms"):
        ((field_name, wanted),) = spec.items()
        wanted = wanted if kind == "terms" else [wanted]
        value = doc.get(field_name)
        values = value if isinstance(value, list) else [value]
        return any(v in wanted for v in values)
    if kind == "bool":
        return all(matches(doc, q) for q in spec.get("filter", []) + spec.get("must", [])) and not any(
            matches(doc, q) for q in spec.get("must_not", [])
        )
    raise AssertionError(f"query {kind!r} is not in the fake's subset")


def analyze(text: str) -> list[str]:
    tokens = [t for t in _WORD.findall(text.lower()) if t not in ENGLISH_STOP_WORDS]
    return [t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t for t in tokens]


def _bm25(docs: dict[str, dict[str, Any]], field_name: str, text: str, candidates: list[str]) -> dict[str, float]:
    # Statistics over the whole index (one shard), like OpenSearch's default query_then_fetch.
    analyzed = {i: analyze(d[field_name]) for i, d in docs.items()}
    count = len(analyzed)
    average = sum(map(len, analyzed.values())) / max(count, 1)
    scores: dict[str, float] = {}
    for term in dict.fromkeys(analyze(text)):
        frequency = sum(term in tokens for tokens in analyzed.values())
        if not frequency:
            continue
        idf = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
        for i in candidates:
            tf = analyzed[i].count(term)
            if tf:
                norm = K1 * (1 - B + B * len(analyzed[i]) / average)
                scores[i] = scores.get(i, 0.0) + idf * tf / (tf + norm)
    return scores


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _ranked(scored: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return sorted(scored, key=lambda item: (-item[1], item[0]))


class FakeConnection(Connection):
    """Hands each request, decoded, to the fake cluster and its answer back to the client."""

    def __init__(self, *, cluster: FakeCluster, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster

    def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):  # noqa: ANN001
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query)) | {k: _text(v) for k, v in (params or {}).items()}
        status, payload = self.cluster.handle(Request(method, parts.path, query, _decode(body)))
        raw = json.dumps(payload)
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw


def fake_client(cluster: FakeCluster) -> OpenSearch:
    return OpenSearch(
        hosts=[{"host": "search.test", "port": 443}], connection_class=FakeConnection, cluster=cluster, max_retries=0
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(body: bytes | str | None) -> Any:
    if not body:
        return None
    text = body.decode() if isinstance(body, bytes) else body
    lines = [line for line in text.split("\n") if line]
    if len(lines) > 1 or text.endswith("\n"):  # NDJSON (bulk)
        return [json.loads(line) for line in lines]
    return json.loads(text)
