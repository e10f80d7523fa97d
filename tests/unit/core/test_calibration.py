"""The pure calibration code: logistic head, threshold fitting, evaluation report, splits."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semrouter._exceptions import ConfigurationError, MissingDependencyError
from semrouter._head import LogisticHead
from semrouter.training._evaluation import EvaluationReport, stratified_folds, stratified_split
from semrouter.training._thresholds import (
    ThresholdFit,
    apply_thresholds,
    blend_scores,
    fit_thresholds,
)

Floats = npt.NDArray[np.float32]


def _unit(x: npt.NDArray[np.float64]) -> Floats:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=np.float32)


def _clusters(
    seed: int, *, classes: int = 5, per_class: int = 40, dim: int = 16, spread: float = 0.15
) -> tuple[Floats, npt.NDArray[np.int64], Floats]:
    """Gaussian clusters on the unit sphere: (points, labels, centres)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((classes, dim)))
    labels = np.repeat(np.arange(classes), per_class)
    points = _unit(centres[labels] + spread * rng.standard_normal((labels.size, dim)))
    return points, labels, centres


# --- logistic head -----------------------------------------------------------------------


def test_head_separates_clusters() -> None:
    X, y, _ = _clusters(0)
    head = LogisticHead.fit(X, y, route_names=list("abcde"))
    X_test, y_test, _ = _clusters(0, per_class=60)  # same centres, fresh noise
    assert np.mean(head.predict_proba(X).argmax(axis=1) == y) == 1.0
    assert np.mean(head.predict_proba(X_test).argmax(axis=1) == y_test) >= 0.99
    proba = head.predict_proba(X_test)
    assert proba.shape == (X_test.shape[0], 5) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert head.dimension == 16 and not head.has_none


def test_head_fit_is_bitwise_deterministic() -> None:
    X, y, _ = _clusters(1, spread=0.4)
    first = LogisticHead.fit(X, y, n_classes=5)
    second = LogisticHead.fit(X, y, n_classes=5)
    assert first.weights.tobytes() == second.weights.tobytes()
    assert first.bias.tobytes() == second.bias.tobytes()
    assert first.route_names == ("0", "1", "2", "3", "4")


def test_head_started_from_a_head_reaches_the_same_optimum() -> None:
    X, y, _ = _clusters(4, spread=0.4)
    cold = LogisticHead.fit(X, y, route_names=list("abcde"), l2=1e-3)
    # a start whose columns come in another order (matched by name) and lack one route
    other = LogisticHead.fit(
        X[y != 2],
        np.array([3 - v if v > 2 else v for v in y[y != 2]]),
        route_names=list("abed"),
        l2=1e-3,
    )
    warm = LogisticHead.fit(X, y, route_names=list("abcde"), l2=1e-3, start=other)
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=2e-3)
    np.testing.assert_allclose(warm.weights, cold.weights, atol=0.05)
    # started at its own optimum it stays there
    again = LogisticHead.fit(X, y, route_names=list("abcde"), l2=1e-3, start=cold)
    np.testing.assert_allclose(again.weights, cold.weights, atol=1e-3)
    with pytest.raises(ConfigurationError, match="8-d"):
        LogisticHead.fit(X[:, :8], y, route_names=list("abcde"), start=cold)


def test_head_start_seeds_a_none_class_it_lacks() -> None:
    X, y, _ = _clusters(5, classes=3)
    plain = LogisticHead.fit(X, y, n_classes=3)
    labels = y.copy()
    labels[::7] = -1
    with_none = LogisticHead.fit(X, labels, n_classes=3, start=plain)
    assert with_none.has_none and with_none.weights.shape == (16, 4)
    cold = LogisticHead.fit(X, labels, n_classes=3)
    np.testing.assert_allclose(
        with_none.predict_proba(X, with_none=True),
        cold.predict_proba(X, with_none=True),
        atol=1e-2,
    )


def test_head_learns_a_none_class_from_minus_one_labels() -> None:
    X, y, _ = _clusters(2, classes=4)
    rng = np.random.default_rng(3)
    far = _unit(-X[:30] + 0.05 * rng.standard_normal((30, 16)))  # away from the routes
    head = LogisticHead.fit(
        np.vstack([X, far]), np.concatenate([y, np.full(30, -1)]), n_classes=4, none_weight=2.0
    )
    assert head.has_none
    routes, full = head.predict_proba(far), head.predict_proba(far, with_none=True)
    assert routes.shape == (30, 4) and full.shape == (30, 5)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(routes.sum(axis=1) < 1.0)
    assert np.mean(full.argmax(axis=1) == 4) >= 0.9  # the none class wins on its own data
    assert np.mean(head.predict_proba(X).argmax(axis=1) == y) >= 0.99


def test_head_weighting_options() -> None:
    X, y, _ = _clusters(4, classes=3, spread=0.5)
    balanced = LogisticHead.fit(X[10:], y[10:], n_classes=3, class_weight="balanced")
    mapped = LogisticHead.fit(X, y, n_classes=3, class_weight={0: 2.0, 1: 1.0})
    assert balanced.weights.shape == mapped.weights.shape == (16, 3)
    with pytest.raises(ConfigurationError):
        LogisticHead.fit(X, y, n_classes=3, class_weight={0: -1.0})


@pytest.mark.parametrize("encoding", ["base64", "list"])
def test_head_round_trips_through_json(encoding: str) -> None:
    X, y, _ = _clusters(5)
    head = LogisticHead.fit(
        np.vstack([X, -X[:5]]),
        np.concatenate([y, np.full(5, -1)]),
        route_names=list("vwxyz"),
        fingerprint="fake|dim=16|l2",
    ).with_temperature(2.0)
    data = json.loads(json.dumps(head.to_dict(encoding=encoding)))  # type: ignore[arg-type]
    again = LogisticHead.from_dict(data)
    assert again.route_names == head.route_names and again.has_none
    assert again.temperature == 2.0 and again.fingerprint == "fake|dim=16|l2"
    assert again.weights.tobytes() == head.weights.tobytes()
    np.testing.assert_array_equal(again.predict_proba(X), head.predict_proba(X))


def test_temperature_flattens_but_keeps_the_ranking() -> None:
    X, y, _ = _clusters(6, spread=0.4)
    head = LogisticHead.fit(X, y, n_classes=5)
    hot = head.with_temperature(3.0)
    assert np.array_equal(hot.predict_proba(X).argmax(1), head.predict_proba(X).argmax(1))
    assert hot.predict_proba(X).max(axis=1).mean() < head.predict_proba(X).max(axis=1).mean()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "other"}, "not a logistic head"),
        (
            {
                "format": "semrouter.logistic_head/1",
                "route_names": ["a"],
                "has_none": False,
                "dimension": 3,
                "weights": "AAAA",
                "bias": [0.0],
            },
            "invalid logistic head",
        ),
    ],
)
def test_head_from_dict_refuses_bad_data(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LogisticHead.from_dict(data)


def test_head_refuses_bad_inputs() -> None:
    X, y, _ = _clusters(7, classes=2)
    with pytest.raises(ConfigurationError):
        LogisticHead.fit(X, y)  # neither n_classes nor route_names
    with pytest.raises(ConfigurationError):
        LogisticHead.fit(X, y + 5, n_classes=2)
    with pytest.raises(ConfigurationError):
        LogisticHead.fit(X[:-1], y, n_classes=2)
    with pytest.raises(ConfigurationError):
        LogisticHead.fit(X, y, n_classes=3, route_names=["a", "b"])
    head = LogisticHead.fit(X, y, n_classes=2)
    with pytest.raises(ConfigurationError):
        head.predict_proba(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ConfigurationError):
        head.with_temperature(0.0)


# --- thresholds --------------------------------------------------------------------------


def _metric(
    pred: npt.NDArray[np.int64],
    gold: npt.NDArray[np.int64],
    w: npt.NDArray[np.float64],
    metric: str,
    n_routes: int,
) -> float:
    if metric == "accuracy":
        return float((w * (pred == gold)).sum() / w.sum())
    classes = [c for c in range(n_routes) if (gold == c).any()] + (
        [-1] if (gold == -1).any() else []
    )
    f1 = []
    for c in classes:
        tp, predicted, support = (
            (w * ((pred == c) & (gold == c))).sum(),
            (w * (pred == c)).sum(),
            (w * (gold == c)).sum(),
        )
        f1.append(2 * tp / (predicted + support) if predicted + support else 0.0)
    return float(np.mean(f1)) if f1 else 0.0


@st.composite
def _scored(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], bool]:
    n = draw(st.integers(1, 25))
    routes = draw(st.integers(1, 3))
    cells = st.integers(0, 10).map(lambda v: v / 10)  # coarse grid: plenty of ties
    scores = np.array(
        draw(st.lists(st.lists(cells, min_size=routes, max_size=routes), min_size=n, max_size=n))
    )
    labels = np.array(draw(st.lists(st.integers(-1, routes - 1), min_size=n, max_size=n)))
    return scores, labels, draw(st.booleans())


@settings(max_examples=150, deadline=None)
@given(_scored(), st.sampled_from(["accuracy", "f1"]))
def test_fit_thresholds_reports_its_score_and_beats_every_global_cut(
    case: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], bool], metric: str
) -> None:
    scores, labels, weighted = case
    n_routes = scores.shape[1]
    names = [f"r{i}" for i in range(n_routes)]
    w = np.linspace(0.5, 2.0, labels.size) if weighted else np.ones(labels.size)
    fit = fit_thresholds(
        scores,
        labels,
        names,
        metric=metric,  # type: ignore[arg-type]
        sample_weight=w,
        min_support=1,
    )
    cuts = np.array([fit.thresholds[name] for name in names])
    pred, _ = apply_thresholds(scores, cuts)
    assert fit.score == pytest.approx(_metric(pred, labels, w, metric, n_routes), abs=1e-9)
    pred_global, _ = apply_thresholds(scores, fit.global_threshold)
    assert fit.global_score == pytest.approx(_metric(pred_global, labels, w, metric, n_routes))
    every_cut = [*np.unique(scores), 2.0]
    best_global = max(
        _metric(apply_thresholds(scores, t)[0], labels, w, metric, n_routes) for t in every_cut
    )
    assert fit.global_score == pytest.approx(best_global, abs=1e-9)
    assert fit.score >= fit.global_score - 1e-12
    if metric == "accuracy" and n_routes <= 2 and labels.size <= 10:  # exact optimum
        best = max(
            _metric(apply_thresholds(scores, np.array(c))[0], labels, w, metric, n_routes)
            for c in itertools.product(every_cut, repeat=n_routes)
        )
        assert fit.score == pytest.approx(best, abs=1e-9)


def _similarity_data(seed: int, per_class: int) -> tuple[Floats, npt.NDArray[np.int64]]:
    """Cosine scores to three route centres of very different spread, plus out-of-scope rows."""
    rng = np.random.default_rng(seed)
    dim = 32
    centres = _unit(np.random.default_rng(100).standard_normal((3, dim)))
    spreads = np.array([0.05, 0.25, 0.5])  # tight, medium, loose: one threshold cannot suit all
    labels = np.repeat(np.arange(3), per_class)
    points = _unit(
        centres[labels] + spreads[labels, None] * rng.standard_normal((labels.size, dim))
    )
    # Out-of-scope: near the tight route but clearly off it, and random directions.
    near = _unit(centres[0] + 0.3 * rng.standard_normal((per_class, dim)))
    anywhere = _unit(rng.standard_normal((per_class, dim)))
    X = np.vstack([points, near, anywhere])
    y = np.concatenate([labels, np.full(2 * per_class, -1)])
    return (X @ centres.T).astype(np.float32), y


def test_per_route_thresholds_beat_a_naive_global_one_on_held_out_data() -> None:
    scores, labels = _similarity_data(0, 200)
    fit = fit_thresholds(scores, labels, ["tight", "medium", "loose"])
    assert fit.score > fit.global_score
    assert fit.thresholds["tight"] > fit.thresholds["loose"]
    test_scores, test_labels = _similarity_data(1, 200)
    naive = np.mean(apply_thresholds(test_scores, 0.5)[0] == test_labels)
    global_fit = np.mean(apply_thresholds(test_scores, fit.global_threshold)[0] == test_labels)
    cuts = np.array(list(fit.thresholds.values()))
    per_route = np.mean(apply_thresholds(test_scores, cuts)[0] == test_labels)
    assert per_route > global_fit > naive
    assert per_route >= 0.9


def test_fit_thresholds_options() -> None:
    scores, labels = _similarity_data(2, 60)
    names = ["a", "b", "c"]
    f1 = fit_thresholds(scores, labels, names, metric="f1")
    assert 0.0 < f1.global_score <= f1.score <= 1.0 and f1.metric == "f1"
    heavy = fit_thresholds(scores, labels, names, sample_weight=np.where(labels == -1, 10.0, 1.0))
    light = fit_thresholds(scores, labels, names, sample_weight=np.where(labels == -1, 0.1, 1.0))
    assert heavy.global_threshold >= light.global_threshold
    # Few rows per route: nobody leaves the global threshold.
    sparse = fit_thresholds(scores, labels, names, min_support=10_000)
    assert set(sparse.thresholds.values()) == {sparse.global_threshold}
    top = np.ones((4, 2))
    clipped = fit_thresholds(top, np.array([-1, -1, -1, -1]), ["a", "b"], bounds=(-1.0, 1.0))
    assert clipped.global_threshold == 1.0 and max(clipped.thresholds.values()) <= 1.0
    assert ThresholdFit.model_validate_json(f1.model_dump_json()) == f1


def test_fit_thresholds_refuses_bad_inputs() -> None:
    with pytest.raises(ConfigurationError):
        fit_thresholds(np.zeros((3, 2)), np.array([0, 1]), ["a", "b"])
    with pytest.raises(ConfigurationError):
        fit_thresholds(np.zeros((2, 2)), np.array([0, 2]), ["a", "b"])
    with pytest.raises(ConfigurationError):
        fit_thresholds(np.zeros((2, 2)), np.array([0, 1]), ["a", "b"], metric="auc")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        fit_thresholds(np.zeros((2, 2)), np.array([0, 1]), ["a", "b"], sample_weight=[0.0, 0.0])


def test_apply_and_blend() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.4], [0.3, 0.35]])
    pred, top = apply_thresholds(scores, np.array([0.5, 0.3]))
    assert pred.tolist() == [0, 1, 1] and top.tolist() == [0.9, 0.4, 0.35]
    assert apply_thresholds(scores, 0.5)[0].tolist() == [0, -1, -1]
    blended = blend_scores(scores, np.array([[0.5, np.nan], [0.1, 0.2], [0.0, 0.0]]), weight=2.0)
    np.testing.assert_allclose(blended, [[1.9, 0.1], [0.4, 0.8], [0.3, 0.35]])
    with pytest.raises(ConfigurationError):
        blend_scores(scores, np.zeros((3, 3)))


# --- evaluation report -------------------------------------------------------------------

GOLD = ["a", "a", "b", None, None, "b"]
PRED = ["a", "b", "b", None, "a", None]
SCORES = [0.9, 0.6, 0.8, 0.2, 0.7, 0.4]
TOPS = ["a", "b", "b", "a", "a", "b"]


def test_report_numbers_on_a_hand_computed_example() -> None:
    report = EvaluationReport.from_predictions(GOLD, PRED, SCORES, top_routes=TOPS)
    assert report.n == 6
    assert report.accuracy == pytest.approx(3 / 6)
    assert report.in_scope_accuracy == pytest.approx(2 / 4)
    assert report.oos_recall == pytest.approx(1 / 2)
    assert report.oos_precision == pytest.approx(1 / 2)
    assert report.oos_auroc == pytest.approx(6 / 8)
    assert report.macro_f1 == pytest.approx(0.5)
    a, b = report.per_route["a"], report.per_route["b"]
    assert (a.precision, a.recall, a.f1, a.support, a.predicted) == (0.5, 0.5, 0.5, 2, 2)
    assert (b.precision, b.recall, b.f1, b.support, b.predicted) == (0.5, 0.5, 0.5, 2, 2)
    assert [(c.gold, c.predicted, c.count) for c in report.confusions] == [
        (None, "a", 1),
        ("a", "b", 1),
        ("b", None, 1),
    ]
    first, last = report.curve[0], report.curve[-1]
    assert len(report.curve) == 101
    assert (first.threshold, first.accuracy, first.oos_recall) == (0.2, 0.5, 0.0)
    assert first.in_scope_accuracy == pytest.approx(3 / 4)
    assert last.threshold == pytest.approx(0.9)
    assert (last.accuracy, last.in_scope_accuracy, last.oos_recall) == (0.5, 0.25, 1.0)
    best = max(report.curve, key=lambda p: p.accuracy)
    assert report.best_threshold == best.threshold and best.accuracy == pytest.approx(4 / 6)


def test_report_without_scores_or_out_of_scope() -> None:
    report = EvaluationReport.from_predictions(["a", "b"], ["a", "a"])
    assert report.accuracy == 0.5 and report.in_scope_accuracy == 0.5
    assert report.oos_recall is None and report.oos_precision is None and report.oos_auroc is None
    assert report.curve == [] and report.best_threshold is None
    with pytest.raises(ConfigurationError):
        EvaluationReport.from_predictions(["a"], ["a", "b"])
    with pytest.raises(ConfigurationError):
        EvaluationReport.from_predictions(["a"], ["a"], [float("nan")])


def test_report_table_and_json() -> None:
    report = EvaluationReport.from_predictions(GOLD, PRED, SCORES, top_routes=TOPS)
    table = report.to_table()
    for field in (
        "accuracy",
        "in-scope accuracy",
        "out-of-scope recall",
        "out-of-scope AUROC",
        "macro F1",
        "precision",
        "support",
        "predicted",
        " 50.00 %",
    ):
        assert field in table
    assert all(len(line) <= 100 for line in table.splitlines())
    data = json.loads(report.to_json())
    assert data["accuracy"] == 0.5 and data["per_route"]["a"]["f1"] == 0.5
    assert len(data["curve"]) == 101 and data["confusions"][0]["gold"] is None
    assert EvaluationReport.model_validate_json(report.to_json()) == report


def test_report_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = EvaluationReport.from_predictions(GOLD, PRED, SCORES, top_routes=TOPS)
    path = report.plot(tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigurationError):
        EvaluationReport.from_predictions(GOLD, PRED).plot(tmp_path / "none.png")


def test_report_plot_names_the_extra_when_matplotlib_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    report = EvaluationReport.from_predictions(GOLD, PRED, SCORES)
    with pytest.raises(MissingDependencyError, match=r"semrouter\[plot\]"):
        report.plot(tmp_path / "curve.png")


# --- held-out splits ---------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=60),
    st.floats(0.1, 0.9),
    st.integers(0, 2**32 - 1),
)
def test_stratified_split_properties(labels: list[str | None], size: float, seed: int) -> None:
    train, test = stratified_split(labels, test_size=size, seed=seed)
    assert sorted([*train.tolist(), *test.tolist()]) == list(range(len(labels)))
    again = stratified_split(labels, test_size=size, seed=seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    for label in set(labels):
        count = labels.count(label)
        in_test = sum(labels[i] == label for i in test)
        if count >= 2:
            assert 1 <= in_test <= count - 1
            assert abs(in_test - count * size) <= 1
        else:
            assert in_test == 0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=60),
    st.integers(2, 6),
    st.integers(0, 2**32 - 1),
)
def test_stratified_folds_properties(labels: list[str | None], folds: int, seed: int) -> None:
    fold = stratified_folds(labels, folds=folds, seed=seed)
    assert fold.shape == (len(labels),) and fold.min() >= 0 and fold.max() < folds
    assert np.array_equal(fold, stratified_folds(labels, folds=folds, seed=seed))
    sizes = np.bincount(fold, minlength=folds)
    assert sizes.max() - sizes.min() <= 1  # folds as even as the rows allow
    for label in set(labels):
        per_fold = np.bincount(fold[[x == label for x in labels]], minlength=folds)
        assert per_fold.max() - per_fold.min() <= 1  # each label spread evenly


def test_stratified_folds_depend_on_the_seed_and_need_two() -> None:
    labels = ["a"] * 30 + ["b"] * 30
    assert not np.array_equal(
        stratified_folds(labels, folds=3, seed=0), stratified_folds(labels, folds=3, seed=1)
    )
    with pytest.raises(ConfigurationError):
        stratified_folds(labels, folds=1)


def test_stratified_split_depends_on_the_seed() -> None:
    labels = ["a"] * 50 + ["b"] * 50
    assert not np.array_equal(
        stratified_split(labels, seed=0)[1], stratified_split(labels, seed=1)[1]
    )
    with pytest.raises(ConfigurationError):
        stratified_split(labels, test_size=1.0)
