"""Routing with no labelled data (_selftrain.py), and fit_thresholds without "no route" labels."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest

from semrouter._exceptions import ConfigurationError
from semrouter._head import LogisticHead
from semrouter._learned import SelfTraining
from semrouter.training._abstention import (
    DEFAULT_CONFIDENCE,
    DEFAULT_REJECT_SHARE,
    abstention_threshold,
    own_route_scores,
    route_thresholds,
    tolerance_factor,
)
from semrouter.training._selftrain import decide, self_train, train_route_head
from semrouter.training._thresholds import apply_thresholds, fit_thresholds

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


def _unit(x: npt.NDArray[np.float64]) -> Floats:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=np.float32)


def _routes(
    seed: int, *, routes: int = 4, per_route: int = 12, dim: int = 24, spread: float = 0.2
) -> tuple[Floats, Ints, Floats]:
    """Utterance vectors around route centres on the unit sphere: (vectors, route, centres)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((routes, dim)))
    labels = np.repeat(np.arange(routes), per_route)
    points = _unit(centres[labels] + spread * rng.standard_normal((labels.size, dim)))
    return points, labels, centres


NAMES = ["billing", "greeting", "weather", "support"]


# --- the head ---------------------------------------------------------------------------------


def test_head_trained_on_utterances_routes_new_queries() -> None:
    X, y, centres = _routes(0)
    head = train_route_head(X, y, NAMES)
    assert isinstance(head, LogisticHead)
    assert head.route_names == tuple(NAMES) and not head.has_none
    queries, gold, _ = _routes(1, per_route=30)
    # Queries drawn around the same centres (another seed draws other centres: re-centre).
    rng = np.random.default_rng(2)
    queries = _unit(centres[gold] + 0.2 * rng.standard_normal((gold.size, centres.shape[1])))
    accuracy = float(np.mean(head.predict_proba(queries).argmax(axis=1) == gold))
    assert accuracy >= 0.97


def test_head_training_is_bitwise_deterministic() -> None:
    X, y, _ = _routes(3)
    a = train_route_head(X, y, NAMES)
    b = train_route_head(X.copy(), y.copy(), NAMES)
    assert a.weights.tobytes() == b.weights.tobytes()
    assert a.bias.tobytes() == b.bias.tobytes()


def test_cold_start_is_the_nearest_centroid_classifier() -> None:
    X, y, _ = _routes(15, spread=0.6)
    start = train_route_head(X, y, NAMES, max_iter=0)
    means = np.stack([X[y == r].mean(axis=0) for r in range(4)])
    queries = _unit(np.random.default_rng(16).standard_normal((50, X.shape[1])))
    nearest = ((queries[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert start.predict_proba(queries).argmax(axis=1).tolist() == nearest.tolist()
    np.testing.assert_allclose(start.weights, 20.0 * means.T, rtol=1e-5)


def test_warm_start_takes_known_routes_by_name_and_new_ones_from_zero() -> None:
    X, y, _ = _routes(4)
    previous = train_route_head(X, y, NAMES)
    # max_iter=0: the starting point itself, so the mapping is visible.
    renamed = ["support", "new", "billing"]
    start = train_route_head(X[:3], [0, 1, 2], renamed, previous=previous, max_iter=0)
    np.testing.assert_array_equal(start.weights[:, 0], previous.weights[:, 3])
    np.testing.assert_array_equal(start.weights[:, 2], previous.weights[:, 0])
    np.testing.assert_array_equal(start.weights[:, 1], 0.0)
    assert start.bias[0] == previous.bias[3] and start.bias[2] == previous.bias[0]
    assert start.bias[1] == pytest.approx(float(previous.bias.min()))


def test_warm_start_reaches_the_cold_accuracy_with_fewer_iterations() -> None:
    X, y, centres = _routes(5, routes=6, per_route=20)
    names = [f"r{i}" for i in range(6)]
    before = train_route_head(X[y < 5], y[y < 5], names[:5])
    rng = np.random.default_rng(6)
    gold = np.repeat(np.arange(6), 25)
    queries = _unit(centres[gold] + 0.2 * rng.standard_normal((gold.size, centres.shape[1])))

    def accuracy(head: LogisticHead) -> float:
        return float(np.mean(head.predict_proba(queries).argmax(axis=1) == gold))

    warm = train_route_head(X, y, names, previous=before, max_iter=5)
    cold = train_route_head(X, y, names, max_iter=50)
    assert accuracy(warm) >= accuracy(cold) - 0.02
    assert accuracy(cold) >= 0.95


def test_head_training_refuses_bad_input() -> None:
    X, y, _ = _routes(7)
    with pytest.raises(ConfigurationError, match="route indices"):
        train_route_head(X, y, NAMES[:2])
    with pytest.raises(ConfigurationError, match="one route per row"):
        train_route_head(X, y[:-1], NAMES)
    with pytest.raises(ConfigurationError, match="non-finite"):
        train_route_head(np.full_like(X, np.nan), y, NAMES)
    other = train_route_head(X[:, :8], y, NAMES)
    with pytest.raises(ConfigurationError, match="8-d"):
        train_route_head(X, y, NAMES, previous=other)


# --- leave-one-out scores and the threshold ----------------------------------------------------


def test_own_route_scores_leave_the_utterance_out() -> None:
    X = _unit(np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]]))
    route = np.array([0, 0, 0, 1, 1])
    s01, s02, s12 = 0.8, 0.6, 0.96  # cosines between the three rows of route 0
    mean2 = own_route_scores(X, route, 2, top_k=2)
    expected = [(s01 + s02) / 2, (s01 + s12) / 2, (s02 + s12) / 2, 0.0, 0.0]
    np.testing.assert_allclose(mean2, expected, atol=1e-6)
    best = own_route_scores(X, route, 2, aggregation="max")
    np.testing.assert_allclose(best, [s01, s12, s12, 0.0, 0.0], atol=1e-6)
    # top_k beyond the other utterances: the mean over what there is.
    np.testing.assert_allclose(own_route_scores(X, route, 2, top_k=5), expected, atol=1e-6)
    lonely = own_route_scores(X[:4], np.array([0, 0, 0, 1]), 2)
    assert np.isnan(lonely[3]) and not np.isnan(lonely[:3]).any()


def test_abstention_threshold_is_the_lower_of_two_quantile_estimates() -> None:
    scores = np.array([0.9, np.nan, 0.1, 0.5, 0.3, 0.7])
    assert abstention_threshold(scores, reject_share=0.0) == 0.1
    # Few scores: the normal fit (mean 0.5, std 0.316) extrapolates below the empirical 0.3.
    std = float(np.std([0.9, 0.1, 0.5, 0.3, 0.7], ddof=1))
    normal = 0.5 - NormalDist().inv_cdf(0.75) * std
    assert abstention_threshold(scores, reject_share=0.25, confidence=0.5) == pytest.approx(normal)
    # By default the normal fit is a tolerance bound: five scores say little, the cut is lower.
    bound = 0.5 - tolerance_factor(5, 0.25, DEFAULT_CONFIDENCE) * std
    assert abstention_threshold(scores, reject_share=0.25) == pytest.approx(bound)
    assert bound < normal
    # Many scores with a long low tail: the empirical quantile (an actual score) is lower.
    tail = np.concatenate([np.full(95, 0.6), np.linspace(-0.5, 0.0, 5)])
    assert abstention_threshold(tail, reject_share=0.02) == pytest.approx(-0.375)
    assert abstention_threshold(np.array([0.4]), reject_share=0.1, confidence=0.5) is None
    # a route of two utterances: two equal scores, too few to bound: nothing is learnt
    assert abstention_threshold(np.array([0.5, 0.5])) is None
    # two routes of two: four scores, but two independent ones
    twins = np.array([0.9, 0.9, 0.88, 0.88])
    assert abstention_threshold(twins) is not None
    assert abstention_threshold(twins, route_of_row=[0, 0, 1, 1]) is None
    with pytest.raises(ConfigurationError, match="one route per"):
        abstention_threshold(twins, route_of_row=[0, 0, 1])
    assert abstention_threshold(np.array([0.4]), reject_share=0.0) == 0.4
    assert abstention_threshold(np.array([np.nan, np.nan])) is None
    assert abstention_threshold(np.array([-3.0, -3.0, -3.0])) == -1.0  # clipped to the scale
    with pytest.raises(ConfigurationError, match="reject_share"):
        abstention_threshold(scores, reject_share=1.0)
    with pytest.raises(ConfigurationError, match="confidence"):
        abstention_threshold(scores, confidence=1.0)


def test_tolerance_factor_matches_the_normal_quantile_and_published_factors() -> None:
    z = NormalDist().inv_cdf(0.975)
    assert tolerance_factor(10, 0.025, 0.5) == pytest.approx(z)  # confidence 0.5: k = z
    # one-sided normal tolerance factors (exact, from tables): n=10 p=0.95 gamma=0.95: 2.911;
    # n=50: 2.065; Natrella's approximation lies within 1.5 %
    assert tolerance_factor(10, 0.05, 0.95) == pytest.approx(2.911, rel=0.015)
    assert tolerance_factor(50, 0.05, 0.95) == pytest.approx(2.065, rel=0.005)
    factors = [tolerance_factor(n, 0.025, 0.95) for n in (3, 5, 10, 50, 1000, 100_000)]
    assert factors == sorted(factors, reverse=True) and factors[-1] == pytest.approx(z, abs=0.01)
    assert tolerance_factor(2, 0.025, 0.95) == math.inf  # two scores: nothing to bound
    assert tolerance_factor(1, 0.025, 0.95) == math.inf


def test_the_threshold_adapts_to_the_route_set() -> None:
    """Tight routes get a high cut, loose ones a low one; each rejects about its share."""
    cuts = []
    for spread in (0.1, 0.4):
        X, y, centres = _routes(8, routes=5, per_route=60, dim=32, spread=spread)
        cut = abstention_threshold(own_route_scores(X, y, 5))
        assert cut is not None
        cuts.append(cut)
        rng = np.random.default_rng(9)
        gold = np.repeat(np.arange(5), 200)
        queries = _unit(centres[gold] + spread * rng.standard_normal((gold.size, 32)))
        similarity = (queries @ X.T).reshape(gold.size, 5, 60)
        own = np.sort(similarity[np.arange(gold.size), gold], axis=1)[:, -2:].mean(axis=1)
        assert float(np.mean(own < cut)) <= 4 * DEFAULT_REJECT_SHARE
    assert cuts[0] > cuts[1] + 0.2


# --- the decision ------------------------------------------------------------------------------


def test_decide_lets_the_head_pick_and_the_similarity_veto() -> None:
    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    sim = np.array([[0.3, 0.9], [0.5, 0.6], [0.2, 0.1], [0.4, np.nan]])
    routes, score = decide(p, sim, 0.25)
    # Row 0: the head wins over the higher similarity; row 2 is vetoed; row 3 not retrieved.
    assert routes.tolist() == [0, 1, -1, -1]
    np.testing.assert_allclose(score, [0.3, 0.6, 0.2, -1.0])
    assert decide(p, sim, -1.0)[0].tolist() == [0, 1, 0, 1]  # -1 never abstains
    assert decide(p, sim, np.array([0.1, 0.7]))[0].tolist() == [0, -1, 0, -1]
    with pytest.raises(ConfigurationError, match="shapes"):
        decide(p, sim[:, :1], 0.0)


def test_self_training_routes_in_scope_and_abstains_far_away() -> None:
    X, y, centres = _routes(10, routes=4, per_route=30, dim=32, spread=0.15)
    trained = self_train(X, y, NAMES)
    assert trained.threshold is not None and 0.0 < trained.threshold < 1.0
    rng = np.random.default_rng(11)
    gold = np.repeat(np.arange(4), 50)
    inside = _unit(centres[gold] + 0.15 * rng.standard_normal((gold.size, 32)))
    outside = _unit(rng.standard_normal((200, 32)))
    for queries, want in ((inside, gold), (outside, np.full(200, -1))):
        sims = (queries @ X.T).reshape(len(queries), 4, 30)
        route_sim = np.sort(sims, axis=2)[:, :, -2:].mean(axis=2)
        routes, _ = decide(trained.head.predict_proba(queries), route_sim, trained.threshold)
        assert float(np.mean(routes == want)) >= 0.95


def test_self_training_round_trips_through_json_and_refuses_bad_payloads() -> None:
    X, y, _ = _routes(12)
    trained = self_train(X, y, NAMES, top_k=3, aggregation="max", reject_share=0.05)
    payload = json.loads(json.dumps(trained.to_dict()))
    back = SelfTraining.from_dict(payload)
    assert (back.threshold, back.reject_share, back.top_k, back.aggregation) == (
        trained.threshold,
        0.05,
        3,
        "max",
    )
    np.testing.assert_array_equal(back.head.predict_proba(X), trained.head.predict_proba(X))
    with pytest.raises(ConfigurationError, match="expected"):
        SelfTraining.from_dict({"format": "other"})
    with pytest.raises(ConfigurationError, match="aggregation"):
        SelfTraining.from_dict({**payload, "aggregation": "median"})
    with pytest.raises(ConfigurationError, match="invalid"):
        SelfTraining.from_dict({k: v for k, v in payload.items() if k != "top_k"})


def test_route_thresholds_follow_each_routes_own_scores() -> None:
    own = np.array([0.8, 0.8, 0.8, 0.4, 0.4, 0.4, np.nan, 0.6, 0.6])
    rows = np.array([0, 0, 0, 1, 1, 1, 2, 3, 3])
    # mean of the known scores 0.6: route 0 lies 0.2 above it, route 1 0.2 below; route 2 has
    # no score and route 3 two (< ROUTE_SHIFT_FROM): they keep the threshold
    cuts = route_thresholds(own, rows, 4, 0.3, shift=0.5, prior=0.0)
    np.testing.assert_allclose(cuts, [0.4, 0.2, 0.3, 0.3])
    # with a prior of 3 scores, a route of 3 follows half the shift
    half = route_thresholds(own, rows, 4, 0.3, shift=0.5, prior=3.0)
    np.testing.assert_allclose(half, [0.35, 0.25, 0.3, 0.3])
    with pytest.raises(ConfigurationError, match="prior"):
        route_thresholds(own, rows, 4, 0.3, prior=-1.0)
    np.testing.assert_allclose(route_thresholds(own, rows, 4, 0.3, shift=0.0), [0.3] * 4)
    assert route_thresholds(own, rows, 4, 0.95, shift=1.0, prior=0.0)[0] == 1.0  # clipped
    np.testing.assert_allclose(route_thresholds(np.full(9, np.nan), rows, 4, 0.3), [0.3] * 4)
    with pytest.raises(ConfigurationError, match="one leave-one-out score"):
        route_thresholds(own[:-1], rows, 4, 0.3)


def test_self_training_gives_a_tight_route_a_higher_cut_and_persists_it() -> None:
    X, y, _ = _routes(15, routes=4, per_route=30, dim=32, spread=0.15)
    loose = y == 3
    X[loose] = _unit(X[loose] + 0.3 * np.random.default_rng(16).standard_normal((30, 32)))
    trained = self_train(X, y, NAMES, reject_share=0.02, route_shift=0.75)
    cuts = trained.thresholds_by_route()
    assert trained.threshold is not None and set(cuts) == set(NAMES)
    assert cuts[NAMES[3]] < trained.threshold < min(cuts[n] for n in NAMES[:3])
    back = SelfTraining.from_dict(json.loads(json.dumps(trained.to_dict())))
    assert back.thresholds_by_route() == cuts
    # a payload written before per-route cuts: the one threshold for every route
    old = {k: v for k, v in trained.to_dict().items() if k != "route_thresholds"}
    assert set(SelfTraining.from_dict(old).thresholds_by_route().values()) == {trained.threshold}
    with pytest.raises(ConfigurationError, match="route thresholds"):
        SelfTraining.from_dict({**trained.to_dict(), "route_thresholds": [0.1]})
    flat = self_train(X, y, NAMES, reject_share=0.02, route_shift=0.0).thresholds_by_route()
    assert set(flat.values()) == {trained.threshold}


def test_self_training_with_single_utterance_routes_keeps_the_default_threshold() -> None:
    X, _, _ = _routes(13, per_route=1)
    trained = self_train(X, np.arange(4), NAMES)
    assert trained.threshold is None and trained.thresholds_by_route() == {}


# --- fit_thresholds without "no route" rows (issue 13, point 3) ---------------------------------


def _in_scope_only() -> tuple[npt.NDArray[np.float64], Ints]:
    """Held-out in-scope rows whose lowest scores are wrong: accuracy ties for low cuts."""
    rng = np.random.default_rng(14)
    gold = np.repeat(np.arange(3), 40)
    scores = rng.uniform(0.0, 0.4, (gold.size, 3))
    scores[np.arange(gold.size), gold] += 0.5
    wrong = np.arange(0, gold.size, 10)  # 12 rows whose best route is another one
    scores[wrong, (gold[wrong] + 1) % 3] = scores[wrong].max(axis=1) + 0.01
    scores[wrong] -= 0.3  # and they score low, where the old rule's tie sat
    return scores, gold


def test_without_none_rows_thresholds_never_abstain_on_held_out_rows() -> None:
    scores, gold = _in_scope_only()
    names = ["a", "b", "c"]
    fit = fit_thresholds(scores, gold, names, bounds=(-1.0, 1.0))
    assert fit.global_threshold == -1.0  # accepting everything: so is anything lower
    assert set(fit.thresholds.values()) == {-1.0}
    routes, _ = apply_thresholds(scores, fit.global_threshold)
    assert (routes >= 0).all()
    assert fit.score == pytest.approx(float(np.mean(scores.argmax(axis=1) == gold)))
    unbounded = fit_thresholds(scores, gold, names)
    assert unbounded.global_threshold < scores.max(axis=1).min()


def test_with_none_rows_the_tie_still_takes_the_middle() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.2], [0.2, 0.1]])
    labels = np.array([0, 0, -1, -1])
    fit = fit_thresholds(scores, labels, ["a", "b"], bounds=(-1.0, 1.0))
    # Any cut in (0.2, 0.8] is perfect; the middle of those cuts keeps a margin both ways.
    assert 0.3 < fit.global_threshold < 0.7
    assert fit.global_score == 1.0
