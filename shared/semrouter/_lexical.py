"""Lexical (BM25) route scores and their fusion with the dense ranking: hybrid routing.

Dense embeddings know that "refund" and "money back" mean the same; they hardly tell product
``XR-200`` from ``XR-300`` or error ``E1045`` from ``E1046``. Hybrid routing adds a sparse,
word-level signal and fuses the two rankings.

**Sparse vectors.** Qdrant's own BM25 model (``qdrant_edge.Bm25``, Rust, no model weights; the
same tokenizer, English stop words and stemmer as the Qdrant server's ``qdrant/bm25``): a
document vector holds each token's saturated term frequency, a query vector a 1 per unique
token, and the collection's IDF modifier supplies ``idf = ln((N - n + 0.5) / (n + 0.5) + 1)``.
Stores that keep a sparse vector per utterance (:data:`SPARSE_NAME`, with the IDF modifier)
retrieve with it; :class:`LexicalIndex` computes the very same scores in-process over a
snapshot's utterances (exact search, Edge readers, collections made before hybrid routing).
One difference: Qdrant's IDF counts every utterance in the collection, so in a collection
shared by several tenants a word's rarity is judged over all of them.

**Fusion happens per route**, after aggregation: a route's lexical score is its best
utterance's BM25 score, and it is fused with the router's own ranking (the learnt head, the
fitted score or the similarity) by Qdrant's formulas, DBSF (each list rescaled by its mean ± 3
standard deviations, then added) or RRF (``1 / (k + rank)``, ``k = 2``), the lexical side
weighted by ``hybrid_weight``. Fusing utterances instead (Qdrant's prefetch + fusion, the best
fused point's route) loses 4 to 6 points to the plain dense nearest neighbour on CLINC150 and
BANKING77 and stays 10 to 15 points below the fused learnt head on every corpus
(benchmarks/results/hybrid.txt): a route is many utterances, and the fused list rewards a
route's single luckiest keyword hit. The fused value only ranks; the route's similarity (or
fitted score) still has to reach its threshold, so thresholds keep their meaning.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SPARSE_NAME", "LexicalIndex", "fuse", "sparse_document", "sparse_query"]

#: The name of the sparse vector stored beside each utterance's dense vector.
SPARSE_NAME = "lexical"
RRF_K = 2  # Qdrant's default

FloatArray = npt.NDArray[np.float64]
Sparse = tuple[list[int], list[float]]

_model: Any = None
_model_lock = threading.Lock()


def _bm25() -> Any:
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                import qdrant_edge

                _model = qdrant_edge.Bm25(qdrant_edge.Bm25Config())
    return _model


def sparse_document(text: str) -> Sparse:
    """The stored sparse vector of an utterance: token ids and BM25 term weights."""
    vector = _bm25().embed_document(text)
    return list(vector.indices), list(vector.values)


def sparse_query(text: str) -> Sparse:
    """The sparse vector of a query: each unique token, weight 1 (IDF is the store's)."""
    vector = _bm25().embed_query(text)
    return list(vector.indices), list(vector.values)


class LexicalIndex:
    """BM25 scores of queries against a fixed list of utterances, in-process.

    An inverted index (token -> rows and weights) with Qdrant's IDF over these utterances, so
    scores equal what a collection holding only them would return.

    Example:
        >>> index = LexicalIndex(["error E1045 on boot", "error E2001 when printing"])
        >>> index.scores(["what does E2001 mean"]).argmax(axis=1).tolist()
        [1]
    """

    def __init__(self, utterances: Sequence[str]) -> None:
        self.size = len(utterances)
        postings: dict[int, tuple[list[int], list[float]]] = {}
        for row, text in enumerate(utterances):
            for token, weight in zip(*sparse_document(text)):
                rows, weights = postings.setdefault(token, ([], []))
                rows.append(row)
                weights.append(weight)
        n = max(self.size, 1)
        self._postings = {
            token: (
                np.asarray(rows, np.int64),
                np.asarray(weights, np.float64)
                * math.log((n - len(rows) + 0.5) / (len(rows) + 0.5) + 1.0),
            )
            for token, (rows, weights) in postings.items()
        }

    def scores(self, texts: Sequence[str]) -> FloatArray:
        """BM25 score of every utterance for each text, ``(len(texts), size)``; 0 without a
        shared token."""
        out = np.zeros((len(texts), self.size))
        for i, text in enumerate(texts):
            rows, values = self._matches(text)
            out[i, rows] = values
        return out

    def route_scores(
        self, texts: Sequence[str], row_route: npt.NDArray[np.int64], routes: int
    ) -> FloatArray:
        """Each route's best utterance score for each text, ``(len(texts), routes)``; only
        the utterances sharing a token are touched (a few hundred of 15k, not all)."""
        out = np.zeros((len(texts), routes))
        for i, text in enumerate(texts):
            rows, values = self._matches(text)
            if len(rows):
                np.maximum.at(out[i], row_route[rows], values)
        return out

    def _matches(self, text: str) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """The rows sharing a token with ``text`` and their BM25 scores."""
        found = [self._postings[t] for t in set(sparse_query(text)[0]) if t in self._postings]
        if not found:
            return np.zeros(0, np.int64), np.zeros(0)
        if len(found) == 1:
            return found[0]
        rows = np.concatenate([rows for rows, _ in found])
        unique, inverse = np.unique(rows, return_inverse=True)
        sums = np.bincount(inverse, np.concatenate([w for _, w in found]))
        return unique.astype(np.int64, copy=False), np.asarray(sums, dtype=np.float64)


def fuse(
    base: npt.NDArray[np.floating[Any]],
    lexical: FloatArray,
    *,
    method: str,
    weight: float,
) -> FloatArray:
    """The fused ranking value of every route (n, R): ``base`` (higher is better; NaN for
    routes it did not score) and ``lexical`` (BM25, 0 without a shared token) combined by
    ``"dbsf"`` or ``"rrf"``. The dense side proposes, the lexical side reorders: a route the
    base did not score ranks last, one the lexical side did not find gets nothing from it, and
    a query sharing no word with any utterance keeps the base ranking."""
    values: FloatArray = np.asarray(base, dtype=np.float64)
    absent = np.isnan(values)
    if method == "rrf":
        found = (lexical > 0) & ~absent
        fused = _rrf(values, absent) + weight * np.where(found, _rrf(lexical, ~found), 0.0)
        return np.where(absent, -np.inf, fused)
    found_scores = np.where((lexical > 0) & ~absent, lexical, np.nan)
    return _dbsf(values) + weight * _dbsf(found_scores, missing=0.0)


def _rrf(values: FloatArray, absent: npt.NDArray[np.bool_]) -> FloatArray:
    order = np.argsort(-np.where(absent, -np.inf, values), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None, :], axis=1)
    return np.where(absent, 0.0, 1.0 / (RRF_K + ranks + 1))


def _dbsf(values: FloatArray, missing: float = -np.inf) -> FloatArray:
    """Each row rescaled as Qdrant's DBSF does: (x - (mean - 3 sd)) / (6 sd) over the row's
    scored entries; a row with one distinct value maps to 0.5; unscored entries get
    ``missing`` (-inf: they rank last)."""
    present = ~np.isnan(values)
    count = present.sum(axis=1, keepdims=True)
    filled = np.where(present, values, 0.0)
    mean = filled.sum(axis=1, keepdims=True) / np.maximum(count, 1)
    spread = np.sqrt(
        np.where(present, (filled - mean) ** 2, 0.0).sum(axis=1, keepdims=True)
        / np.maximum(count, 1)
    )
    scaled = np.where(spread > 0, (filled - mean + 3 * spread) / np.maximum(6 * spread, 1e-12), 0.5)
    return np.where(present, scaled, missing)
