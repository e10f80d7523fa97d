"""The scorer: where every routing decision is made, in one pass over one representation.

Input: the nearest utterances of each query (:class:`Candidates`, from the index) and the
:class:`~semrouter._routeset.RouteSet` the query runs against. Output: a dense ``(n, R)`` matrix
of route scores, then the decisions (:class:`~semrouter.RouteMatch` lists).

1. **Aggregate** (:func:`route_similarities`): a route's similarity is its best hit (``"max"``)
   or the mean of its best ``top_k`` hits (``"mean"``; hits of the route that fell outside the
   candidates count at the lowest candidate score, an upper bound, unless the search saw every
   utterance), by :func:`~semrouter._aggregation.aggregate`, the rule self-training measures
   its thresholds with. Routes with no hit among the candidates have no similarity (NaN).
2. **Calibrate** (:func:`route_scores`): after ``fit()``, ``(p + w * s) / (1 + w)`` with the
   head's probability ``p`` and the similarity ``s`` (0 where missing); otherwise ``s``. Both lie
   in [-1, 1]: one scale for fitted and unfitted routers and for hand-set thresholds.
   With hybrid routing on, :func:`hybrid_rank` fuses that ranking with the routes' lexical
   (BM25) scores (``_lexical.py``); the fused value ranks, the score still has to pass.
3. **Decide** (:func:`decide`): the routes whose score reaches their threshold, best first, up
   to ``limit`` (``apply_threshold=False``: the best ``limit`` routes whatever their score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._aggregation import aggregate, hits_counted
from ._lexical import fuse
from ._routes import RouteMatch
from ._routeset import RouteSet
from ._search import Candidates

__all__ = [
    "Candidates",
    "blank_match",
    "candidates_wanted",
    "decide",
    "hybrid_rank",
    "route_scores",
    "route_similarities",
    "score_and_decide",
    "with_blanks",
]

FloatArray = npt.NDArray[np.float64]
RankArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]


def route_similarities(state: RouteSet, found: Candidates) -> tuple[FloatArray, IntArray]:
    """Per-route similarities (n, R), NaN where a route had no hit, and each route's nearest
    row (n, R), -1 where none."""
    n, width = found.rows.shape
    n_routes = len(state.names)
    sims = np.full(n * n_routes, np.nan)
    nearest = np.full(n * n_routes, -1, dtype=np.int64)
    valid = found.rows >= 0
    if width == 0 or n_routes == 0 or not valid.any():
        return sims.reshape(n, n_routes), nearest.reshape(n, n_routes)
    rows = found.rows[valid]
    scores = found.scores[valid].astype(np.float64)
    query = np.repeat(np.arange(n), valid.sum(axis=1))
    keys = query * n_routes + state.snapshot.row_route[rows]
    # Hits are best first within each query: written in reverse, the best hit of a key wins.
    nearest[keys[::-1]] = rows[::-1]
    options = state.options
    k = hits_counted(options.aggregation, options.top_k)
    if k == 1:  # one hit counted: the best one (hits are best first)
        sims[keys[::-1]] = scores[::-1]
        return sims.reshape(n, n_routes), nearest.reshape(n, n_routes)
    order = np.argsort(keys, kind="stable")  # stable: each key's hits stay best first
    by_key, by_score = keys[order], scores[order]
    first = np.empty(len(by_key), dtype=bool)  # (np.r_ and np.diff cost more than the work)
    first[0] = True
    np.not_equal(by_key[1:], by_key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.empty_like(starts)
    counts[:-1] = starts[1:] - starts[:-1]
    counts[-1] = len(by_key) - starts[-1]
    group_keys = by_key[starts]
    # Each (query, route) group's best k hits, one column each; the route's hits beyond the
    # candidates count at the floor: 0 after an exhaustive search, else the lowest candidate
    # score of the group's query (an upper bound of what is missing).
    needed = np.minimum(state.snapshot.route_sizes[group_keys % n_routes], k)
    if found.exhaustive:
        floor = np.zeros(len(starts))
    else:
        lowest_at = np.maximum(valid.sum(axis=1) - 1, 0)
        lowest = found.scores[np.arange(n), lowest_at].astype(np.float64)
        floor = lowest[group_keys // n_routes]
    hits = np.empty((k, len(starts)))
    hits[0] = by_score[starts]  # every group has its best hit
    last = len(by_score) - 1
    for j in range(1, k):  # the j-th best hit of every group that has one, else the floor
        hits[j] = np.where(counts > j, by_score[np.minimum(starts + j, last)], floor)
    short = needed < k  # routes with fewer utterances than k
    sims[group_keys] = aggregate(hits, options.aggregation, needed if short.any() else None)
    return sims.reshape(n, n_routes), nearest.reshape(n, n_routes)


def route_scores(
    state: RouteSet, vectors: npt.NDArray[np.float32], similarities: FloatArray
) -> tuple[FloatArray, RankArray | None]:
    """The routing score of every route (n, R), and the order to rank routes in when it is not
    the score: calibrated after ``fit()``; else the similarity, ranked by the head learnt from
    the utterances (``_selftrain.py``) when there is one."""
    if state.head is not None and state.head_columns is not None:
        probabilities = state.head.predict_proba(vectors)[:, state.head_columns]
        weight = state.similarity_weight
        blended = probabilities + weight * np.where(np.isnan(similarities), 0.0, similarities)
        return np.asarray(blended / (1.0 + weight), dtype=np.float64), None
    if state.rank_head is not None and state.rank_columns is not None:
        rank = state.rank_head.predict_proba(vectors)[:, state.rank_columns]
        return _fill_first_choice(state, vectors, similarities, rank), rank
    return similarities, None


def hybrid_rank(
    fusion: tuple[str, float], scores: FloatArray, rank: RankArray | None, lexical: FloatArray
) -> FloatArray:
    """The order to rank routes in under hybrid routing (``fusion``: the route set's method
    and lexical weight): the router's own ranking (``rank``, else ``scores``) fused with the
    routes' lexical scores ``lexical`` (n, R)."""
    method, weight = fusion
    return fuse(rank if rank is not None else scores, lexical, method=method, weight=weight)


def _fill_first_choice(
    state: RouteSet, vectors: npt.NDArray[np.float32], similarities: FloatArray, rank: RankArray
) -> FloatArray:
    """The head's first choice is judged by its similarity: where the nearest candidates held
    none of its utterances, compute it exactly (in-process search only; else it counts -1)."""
    matrix = state.snapshot.vectors
    first = rank.argmax(axis=1)
    missing = np.flatnonzero(np.isnan(similarities[np.arange(len(first)), first]))
    if matrix is None or not len(missing):
        return similarities
    filled: FloatArray = np.array(similarities, dtype=np.float64)
    aggregation = state.options.aggregation
    k = hits_counted(aggregation, state.options.top_k)
    for row in missing.tolist():
        route = int(first[row])
        sims = matrix[state.snapshot.row_route == route] @ vectors[row]
        if len(sims):
            best = np.sort(sims)[::-1][:k, None]
            filled[row, route] = float(aggregate(best, aggregation)[0])
    return filled


def decide(
    state: RouteSet,
    scores: FloatArray,
    nearest: IntArray,
    *,
    limit: int,
    apply_threshold: bool,
    keep_empty: bool,
    rank: RankArray | None = None,
) -> list[list[RouteMatch]]:
    """Ranked matches per query (see the module docstring).

    Routes are ranked by score, or by ``rank`` (the learnt head's probabilities) when given;
    then the head picks and the similarity vetoes: a route matches only while every route
    ranked above it matched too, so ``route()`` abstains when the head's choice is not close
    enough to its utterances (a route with no similarity counts -1). With ``keep_empty`` a
    query with no passing route gets one ``name=None`` match carrying the best score, so
    ``route()`` always answers. The ``scores`` mapping of every match of one query is the same
    object (every scored route, best first): no per-match copies.
    """
    names = state.names
    utterances = state.snapshot.utterances
    thresholds = state.thresholds
    out: list[list[RouteMatch]] = []
    for row in range(scores.shape[0]):
        values = scores[row]
        scored = np.flatnonzero(~np.isnan(values))
        if rank is None:
            ranked = scored[np.argsort(-values[scored], kind="stable")]
            table = dict(zip([names[i] for i in ranked], values[ranked].tolist()))
            picked = ranked[values[ranked] >= thresholds[ranked]] if apply_threshold else ranked
        else:
            ranked = np.argsort(-rank[row], kind="stable")
            shown = ranked[~np.isnan(values[ranked])]
            table = dict(zip([names[i] for i in shown], values[shown].tolist()))
            values = np.where(np.isnan(values), -1.0, values)  # (nan_to_num: 10 x slower)
            picked = ranked
            if apply_threshold:
                failed = np.flatnonzero(values[ranked] < thresholds[ranked])
                picked = ranked[: failed[0]] if len(failed) else ranked
        matches = [
            RouteMatch.model_construct(
                name=names[i],
                score=float(values[i]),
                scores=table,
                utterance=_utterance(utterances, nearest[row, i]),
                threshold=float(thresholds[i]),
            )
            for i in picked[: max(limit, 0)]
        ]
        if not matches and keep_empty:
            best = int(ranked[0]) if len(ranked) else -1
            matches.append(
                RouteMatch.model_construct(
                    name=None,
                    score=float(values[best]) if best >= 0 else 0.0,
                    scores=table,
                    utterance=_utterance(utterances, nearest[row, best]) if best >= 0 else None,
                    threshold=float(thresholds[best]) if best >= 0 else None,
                    reason="below_threshold" if best >= 0 else "no_routes",
                )
            )
        out.append(matches)
    return out


def blank_match() -> RouteMatch:
    """The answer to an empty or white-space request in a batch: no route, ``reason="blank"``."""
    return RouteMatch.model_construct(
        name=None, score=0.0, scores={}, utterance=None, threshold=None, reason="blank"
    )


def with_blanks(blank: Sequence[bool], answers: Sequence[RouteMatch]) -> list[RouteMatch]:
    """``answers`` (one per non-blank request, in order) with a :func:`blank_match` put at
    each position ``blank`` marks."""
    found = iter(answers)
    return [blank_match() if empty else next(found) for empty in blank]


def _utterance(utterances: tuple[str, ...], row: np.int64 | int) -> str | None:
    return utterances[row] if row >= 0 else None


def candidates_wanted(state: RouteSet, limit: int) -> int:
    """Nearest utterances to fetch for a query: enough for ``limit`` routes of ``top_k`` hits
    each, never more than the index holds (+1 for Qdrant's metadata point)."""
    options = state.options
    wanted = max(options.candidates, min(limit, len(state.names)) * options.top_k * 2)
    return max(1, min(wanted, state.snapshot.size + 1))


def score_and_decide(
    state: RouteSet,
    vectors: npt.NDArray[np.float32],
    found: Candidates,
    lexical: FloatArray | None,
    *,
    limit: int,
    apply_threshold: bool,
    keep_empty: bool,
) -> list[list[RouteMatch]]:
    """The whole decision for a batch of queries: aggregate, calibrate, fuse (hybrid), decide."""
    similarities, nearest = route_similarities(state, found)
    scores, rank = route_scores(state, vectors, similarities)
    if lexical is not None and state.fusion is not None:
        rank = hybrid_rank(state.fusion, scores, rank, lexical)
    return decide(
        state,
        scores,
        nearest,
        limit=limit,
        apply_threshold=apply_threshold,
        keep_empty=keep_empty,
        rank=rank,
    )
