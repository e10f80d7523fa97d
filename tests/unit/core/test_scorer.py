"""The scorer's aggregation, pinned on hand-computed values (issue 20, point 6).

With fewer candidates than index rows, a route's "mean" is over the hits it *needs*
(``min(top_k, its utterances)``), the missing ones counted at the query's lowest candidate
score: dividing by the hits seen instead would score a route with one hit among the
candidates as if its missing hits had added to its best one (a mean above its best hit).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from semrouter import Route
from semrouter._options import RouterOptions
from semrouter._routeset import RouteSet, Snapshot, build_route_set
from semrouter._scorer import Candidates, route_similarities

ROUTES = [
    Route("a", ["a0", "a1", "a2"]),
    Route("b", ["b0", "b1"]),
    Route("c", ["c0"]),
]


def _state(**options: Any) -> RouteSet:
    utterances = tuple(u for route in ROUTES for u in route.utterances)
    ids = tuple(f"id-{u}" for u in utterances)
    snapshot = Snapshot(
        ids=ids,
        row_route=np.array([0, 0, 0, 1, 1, 2], dtype=np.int64),
        route_sizes=np.array([3, 2, 1], dtype=np.int64),
        utterances=utterances,
        id_to_row={id_: row for row, id_ in enumerate(ids)},
        vectors=None,
    )
    return build_route_set(
        ROUTES,
        snapshot,
        RouterOptions(**options),
        default_threshold=0.5,
        calibration=None,
    )


def _candidates(rows: list[list[int]], scores: list[list[float]], exhaustive: bool) -> Candidates:
    return Candidates(
        np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float32), exhaustive
    )


def test_mean_divides_by_the_hits_a_route_needs_not_the_hits_seen() -> None:
    # 3 candidates of 6 rows. Query 0: a0 0.9, b0 0.8, b1 0.7. Query 1: a1 0.5, then padding.
    found = _candidates([[0, 3, 4], [1, -1, -1]], [[0.9, 0.8, 0.7], [0.5, 0.0, 0.0]], False)
    sims, nearest = route_similarities(_state(aggregation="mean", top_k=2), found)
    # a: one hit of the two it needs, the other counted at the lowest candidate (0.7).
    assert sims[0, 0] == pytest.approx((0.9 + 0.7) / 2)
    # b: both hits seen.
    assert sims[0, 1] == pytest.approx((0.8 + 0.7) / 2)
    # Query 1: one valid candidate, so the lowest candidate score is 0.5.
    assert sims[1, 0] == pytest.approx((0.5 + 0.5) / 2)
    # c: no hit, no similarity; b has none in query 1 either.
    assert np.isnan(sims[0, 2]) and np.isnan(sims[1, 1]) and np.isnan(sims[1, 2])
    # A mean never exceeds the route's best hit.
    assert sims[0, 0] <= 0.9 and sims[1, 0] <= 0.5
    assert nearest.tolist() == [[0, 3, -1], [1, -1, -1]]


def test_a_route_with_fewer_utterances_than_top_k_needs_only_those() -> None:
    # c has one utterance: its mean of the "best 3" is that one hit, nothing counted missing.
    found = _candidates([[5, 0, 3]], [[0.6, 0.4, 0.2]], False)
    sims, _ = route_similarities(_state(aggregation="mean", top_k=3), found)
    assert sims[0, 2] == pytest.approx(0.6)
    assert sims[0, 0] == pytest.approx((0.4 + 0.2 + 0.2) / 3)  # 1 seen, 2 missing at 0.2
    assert sims[0, 1] == pytest.approx((0.2 + 0.2) / 2)  # b needs 2: 1 seen, 1 missing


def test_an_exhaustive_search_counts_nothing_as_missing() -> None:
    found = _candidates([[0, 1, 3, 4, 5, 2]], [[0.9, 0.8, 0.7, 0.6, 0.3, 0.1]], True)
    sims, _ = route_similarities(_state(aggregation="mean", top_k=2), found)
    assert sims[0].tolist() == pytest.approx([(0.9 + 0.8) / 2, (0.7 + 0.6) / 2, 0.3])
