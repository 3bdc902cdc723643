"""BM25 over one large tenant's chunks, in memory, for the embedded store.

SQLite's FTS5 computes ``bm25()`` for every row that matches any query term before it can
sort: at 100,000 chunks a question matching a quarter of them takes ~400 ms. This index keeps
the tenant's postings (term → chunk positions and term frequencies) in numpy arrays and scores
only what the query's terms reach, in milliseconds.

It scores as FTS5 does: the same terms (each word goes through an in-memory FTS5 table with the
store's tokenizer, ``porter unicode61 remove_diacritics 2``, so stems and folding are SQLite's
own), and FTS5's formula (k1 = 1.2, b = 0.75, ``idf = ln((N - n + 0.5) / (n + 0.5))`` floored at
1e-6); N, n and the average length are the tenant's, where FTS5's are the whole file's (so one
tenant's documents never move another's scores).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

K1 = 1.2
B = 0.75
MIN_IDF = 1e-6
TOKENIZER = "porter unicode61 remove_diacritics 2"
_WORD = re.compile(r"[^\W_]+")
_MAX_CACHED_WORDS = 1_000_000


class Stemmer:
    """Words → the terms the store's FTS5 tokenizer makes of them (usually one stem each)."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(f"CREATE VIRTUAL TABLE words USING fts5(word, tokenize = '{TOKENIZER}')")
        self._conn.execute("CREATE VIRTUAL TABLE word_terms USING fts5vocab(words, 'instance')")
        self._cache: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def terms(self, words: Iterable[str]) -> dict[str, tuple[str, ...]]:
        wanted = set(words)
        with self._lock:
            missing = [word for word in wanted if word not in self._cache]
            if missing:
                if len(self._cache) + len(missing) > _MAX_CACHED_WORDS:
                    self._cache.clear()
                self._conn.executemany("INSERT INTO words (rowid, word) VALUES (?, ?)", enumerate(missing, 1))
                found: dict[int, list[str]] = {}
                for term, row in self._conn.execute("SELECT term, doc FROM word_terms ORDER BY doc, offset"):
                    found.setdefault(int(row), []).append(term)
                self._conn.execute("DELETE FROM words")
                for row, word in enumerate(missing, 1):
                    self._cache[word] = tuple(found.get(row, ()))
            return {word: self._cache[word] for word in wanted}


def words(text: str) -> list[str]:
    """The words of ``text``, split as FTS5's unicode61 splits them (letters and digits)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


class KeywordIndex:
    """Postings of one tenant's chunks; positions are the caller's (see ``add``). Not thread-safe:
    callers hold a lock around it."""

    def __init__(self, stemmer: Stemmer) -> None:
        self._stemmer = stemmer
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lengths = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._live_length = 0.0
        self.live = 0

    def add(self, first_position: int, texts: Sequence[str]) -> None:
        """Index ``texts`` at positions ``first_position, first_position + 1, …`` (in order)."""
        tokenized = [words(text) for text in texts]
        stems = self._stemmer.terms(word for document in tokenized for word in document)
        end = first_position + len(texts)
        if end > self._lengths.size:
            capacity = max(end, 2 * self._lengths.size, 1024)
            self._lengths = np.concatenate([self._lengths, np.zeros(capacity - self._lengths.size, np.float64)])
            self._alive = np.concatenate([self._alive, np.zeros(capacity - self._alive.size, bool)])
        added: dict[str, tuple[list[int], list[int]]] = {}
        for offset, document in enumerate(tokenized):
            position = first_position + offset
            counts = Counter(term for word in document for term in stems[word])
            for term, count in counts.items():
                positions, frequencies = added.setdefault(term, ([], []))
                positions.append(position)
                frequencies.append(count)
            length = sum(counts.values())
            self._lengths[position] = length
            self._alive[position] = True
            self._live_length += length
            self.live += 1
        # Postings stay numpy arrays, grown once per batch: a query converts nothing.
        for term, (positions, frequencies) in added.items():
            new = (np.asarray(positions, dtype=np.int64), np.asarray(frequencies, dtype=np.float64))
            old = self._postings.get(term)
            if old is not None:
                new = (np.concatenate([old[0], new[0]]), np.concatenate([old[1], new[1]]))
            self._postings[term] = new

    def remove(self, positions: np.ndarray) -> None:
        positions = positions[self._alive[positions]]
        self._alive[positions] = False
        self._live_length -= float(self._lengths[positions].sum())
        self.live -= int(positions.size)

    def query_terms(self, text: str) -> list[str]:
        stems = self._stemmer.terms(words(text))
        return list(dict.fromkeys(term for word in words(text) for term in stems[word]))

    def search(self, terms: Sequence[str], depth: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` best positions by BM25 with their scores (higher is better), best first;
        ``allowed``: positions the search is limited to, None for all."""
        if self.live == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        average = self._live_length / self.live
        scores = np.zeros(self._lengths.size, dtype=np.float64)
        for term in terms:
            if term not in self._postings:
                continue
            positions, frequencies = self._postings[term]
            matched = int(np.count_nonzero(self._alive[positions]))
            idf = max(math.log((self.live - matched + 0.5) / (matched + 0.5)), MIN_IDF)
            norm = K1 * (1 - B + B * self._lengths[positions] / average)
            scores[positions] += idf * frequencies * (K1 + 1) / (frequencies + norm)
        scores[~self._alive] = 0
        if allowed is not None:
            mask = np.zeros(scores.size, dtype=bool)
            mask[allowed] = True
            scores[~mask] = 0
        candidates = np.flatnonzero(scores > 0)  # in position order
        if candidates.size > depth:
            # The depth best; among equal scores at the cut, the first positions (FTS5's order).
            cutoff = -np.partition(-scores[candidates], depth - 1)[depth - 1]
            above = candidates[scores[candidates] > cutoff]
            tied = candidates[scores[candidates] == cutoff][: depth - above.size]
            candidates = np.concatenate([above, tied])
        # Best first; equal scores by position (chunk id order), as the FTS5 query sorts them.
        order = np.lexsort((candidates, -scores[candidates]))
        best = candidates[order]
        return best.astype(np.int64), scores[best]
