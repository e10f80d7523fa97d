"""Fitting a router on labelled texts: a learned route head and thresholds, kept with the router.

``SemanticRouter.fit`` embeds every text once, trains a :class:`LogisticHead` on the route
utterances plus the training share of the labelled texts (``None`` labels train a "none"
class), and picks the threshold on a held-out share (``validation=``, or a split), scoring
each route as the head's probability plus its nearest-neighbour similarity
(:func:`blend_scores`). The held-out texts are scored out of fold (cross-fitting, see
:func:`._crossfit.train_head`) and then train the head kept as well: labelled queries teach the head
more than their number suggests, since they resemble later queries more than route
utterances do. The result is a
:class:`Calibration`, saved in the router's config file and reloaded without refitting. It
belongs to one route set: any change to the routes makes it stale, and the router falls back
to plain thresholds until it is fitted again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError
from .._head import LogisticHead
from .._lexical import fuse
from .._routes import RouteMatch
from .._routeset import Calibration, RouteSet
from ..encoders import Encoder, Vectors
from ._crossfit import learnt_head, train_head
from ._evaluation import (
    EvaluationReport,
    significantly_better,
    stratified_split,
)
from ._thresholds import (
    ThresholdFit,
    apply_thresholds,
    blend_scores,
    fit_thresholds,
)

__all__ = [
    "Calibration",
    "FitSettings",
    "FitSource",
    "Progress",
    "check_labels",
    "evaluate_router",
    "fit_router",
]

#: Weights of the nearest-neighbour similarity beside the head's probability tried by fit(),
#: in order of preference on ties.
SIMILARITY_WEIGHTS = (1.0, 0.5, 2.0, 0.25, 0.0)  # 1 first: the default
#: Hybrid routings fit() tries on the held-out texts (``_lexical.py``); one is kept only when it
#: routes them significantly better than dense alone.
Fusion = tuple[Literal["off", "dbsf", "rrf"], float]
FUSIONS: tuple[Fusion, ...] = (
    ("off", 0.5),  # first: the default, kept unless another is significantly better
    ("dbsf", 0.25),
    ("dbsf", 0.5),
    ("dbsf", 1.0),
    ("rrf", 1.0),
)
#: Called as ``progress(done, total)`` while texts are encoded.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FitSettings:
    """How :meth:`SemanticRouter.fit` learns (its keyword arguments, documented there)."""

    holdout: float = 0.2
    head: bool = True
    per_route_thresholds: bool = False
    metric: Literal["accuracy", "f1"] = "accuracy"
    none_weight: float = 5.0
    none_share: float | None = 0.5
    l2: float = 1e-5
    seed: int = 0
    #: Cross-fitting: the held-out texts choose the thresholds through out-of-fold scores and
    #: then train the final head too (:func:`._crossfit.train_head`); below 2 they never train it.
    folds: int = 5


@dataclass(frozen=True)
class FitSource:
    """What fitting needs from a router, and nothing else.

    Attributes:
        state: the route set being fitted.
        encoder: embeds the labelled texts.
        similarities: unfitted per-route similarities (n, R) of query vectors, in
            ``state.names`` order, NaN for routes not retrieved.
        utterance_vectors: every index row's vector, in row order.
        check: validates query texts (the router's own rules).
        lexical: each route's lexical (BM25) score (n, R) of query texts, for hybrid routing.
    """

    state: RouteSet
    encoder: Encoder
    similarities: Callable[[Vectors], npt.NDArray[np.float64]]
    utterance_vectors: Callable[[], Vectors]
    check: Callable[[Sequence[str]], list[str]]
    lexical: Callable[[list[str]], npt.NDArray[np.float64]] | None = None


def check_labels(
    texts: Sequence[str], labels: Sequence[str | None], names: Sequence[str]
) -> list[str | None]:
    """Labels as route names or ``None``; unknown names and length mismatches are refused."""
    if isinstance(texts, str) or isinstance(labels, str):
        raise ConfigurationError("texts and labels must be lists, not single strings")
    labels = list(labels)
    if len(labels) != len(texts):
        raise ConfigurationError(f"{len(texts)} texts but {len(labels)} labels")
    known = set(names)
    unknown = sorted({str(x) for x in labels if x is not None and x not in known})
    if unknown:
        raise ConfigurationError(f"labels name routes the router does not hold: {unknown[:5]}")
    return labels


def fit_calibration(
    *,
    names: Sequence[str],
    digest: str,
    fingerprint: str,
    utterance_vectors: npt.NDArray[np.float32],
    utterance_labels: npt.NDArray[np.int64],
    train_vectors: npt.NDArray[np.float32],
    train_labels: npt.NDArray[np.int64],
    heldout_vectors: npt.NDArray[np.float32],
    heldout_labels: npt.NDArray[np.int64],
    heldout_similarities: npt.NDArray[np.float64],
    settings: FitSettings,
    heldout_lexical: npt.NDArray[np.float64] | None = None,
    fusions: Sequence[Fusion] = FUSIONS,
    start: LogisticHead | None = None,
) -> tuple[Calibration, npt.NDArray[np.float32] | None]:
    """Train the head (optional) and choose thresholds on the held-out rows.

    Scores and thresholds are on the router's one scale, [-1, 1]: the similarity itself, or
    ``(p + w * s) / (1 + w)`` with a head (see :class:`Calibration`). With
    ``settings.folds`` the held-out rows are scored out of fold and then train the final head
    too (:func:`._crossfit.train_head`).

    With ``heldout_lexical`` (each route's BM25 score of the held-out texts), the hybrid
    routings in ``fusions`` are tried too: the first is kept unless another routes the held-out
    rows significantly better (one candidate: the thresholds are fitted for it). ``start``:
    a head to start the training from (routes matched by name; the optimum is the same).

    Returns:
        The calibration, and the head's probabilities of the held-out rows that chose it
        (out of fold when cross-fitted), ``None`` without a head.
    """
    weights = _share_weights(heldout_labels, settings.none_share)
    per_route_thresholds, metric = settings.per_route_thresholds, settings.metric
    fitted_head = None
    probabilities = None
    if settings.head:
        fitted_head, probabilities = train_head(
            names,
            fingerprint,
            np.concatenate([utterance_vectors, train_vectors]).astype(np.float32),
            np.concatenate([utterance_labels, train_labels]).astype(np.int64),
            heldout_vectors,
            heldout_labels,
            l2=settings.l2,
            none_weight=settings.none_weight,
            folds=settings.folds,
            seed=settings.seed,
            start=start,
        )

    # With a head, how much the nearest-neighbour similarity counts is chosen on the held-out
    # rows too (cheap: no refit). A weight other than 1 must be significantly better row by
    # row (McNemar's test, z > 2): on a few hundred rows most gains are noise.
    def judge(scores: npt.NDArray[np.float64]) -> tuple[ThresholdFit, npt.NDArray[np.bool_]]:
        """The thresholds fitted on ``scores`` and which held-out rows they route right."""
        fit = fit_thresholds(
            scores, heldout_labels, names, metric=metric, bounds=(-1.0, 1.0), sample_weight=weights
        )
        cuts = np.array([_cut(fit, per_route_thresholds, name) for name in names])
        return fit, apply_thresholds(scores, cuts)[0] == heldout_labels

    results = []
    for candidate in SIMILARITY_WEIGHTS if probabilities is not None else (1.0,):
        results.append((candidate, *judge(_scale(probabilities, heldout_similarities, candidate))))
    weight, fit, right = _significant(results)
    fusion: Fusion = ("off", 0.5)
    if heldout_lexical is not None:
        scores = _scale(probabilities, heldout_similarities, weight)
        tried: list[tuple[Fusion, ThresholdFit, npt.NDArray[np.bool_]]] = []
        for method, lexical_weight in fusions:
            if method == "off":
                tried.append(((method, lexical_weight), fit, right))
            else:
                fused = fused_choice(scores, heldout_lexical, method, lexical_weight)
                tried.append(((method, lexical_weight), *judge(fused)))
        fusion, fit, right = _significant(tried)
    thresholds = {name: _cut(fit, per_route_thresholds, name) for name in names}
    calibration = Calibration(
        routes_digest=digest,
        fingerprint=fingerprint,
        head=fitted_head.to_dict() if fitted_head is not None else None,
        thresholds=thresholds,
        similarity_weight=weight,
        metric=metric,
        heldout={
            "rows": float(len(heldout_labels)),
            "score": fit.score if per_route_thresholds else fit.global_score,
        },
        hybrid=fusion[0],
        hybrid_weight=fusion[1],
    )
    return calibration, probabilities


def _significant(results: list[tuple[Any, Any, npt.NDArray[np.bool_]]]) -> tuple[Any, Any, Any]:
    """The first candidate (the default), unless the best of the others is significantly
    better row by row (McNemar's test, z > 2): on a few hundred rows most gains are noise."""
    choice, fit, right = results[0]
    best = max(results[1:], key=lambda r: int(r[2].sum()), default=None)
    if best is not None:
        wins = int((best[2] & ~right).sum())
        losses = int((right & ~best[2]).sum())
        if significantly_better(wins, losses):
            choice, fit, right = best
    return choice, fit, right


def fused_choice(
    scores: npt.NDArray[np.float64],
    lexical: npt.NDArray[np.float64],
    method: str,
    weight: float,
) -> npt.NDArray[np.float64]:
    """``scores`` as hybrid routing decides: each row keeps only the score of the route the
    fused ranking puts first (the others -inf), so :func:`apply_thresholds` and
    :func:`fit_thresholds` follow the rule "fusion picks, the score must pass"."""
    first = fuse(scores, lexical, method=method, weight=weight).argmax(axis=1)
    rows = np.arange(len(scores))
    out = np.full_like(scores, -np.inf)
    out[rows, first] = scores[rows, first]
    return out


def _scale(
    probabilities: npt.NDArray[np.floating[Any]] | None,
    similarities: npt.NDArray[np.float64],
    weight: float,
) -> npt.NDArray[np.float64]:
    """Routing scores as the scorer computes them (``_scorer.route_scores``)."""
    if probabilities is None:
        return np.nan_to_num(similarities, nan=-1.0)
    return blend_scores(probabilities, similarities, weight=weight) / (1.0 + weight)


def _cut(fit: ThresholdFit, per_route: bool, name: str) -> float:
    return float(fit.thresholds[name] if per_route else fit.global_threshold)


def _share_weights(
    labels: npt.NDArray[np.int64], none_share: float | None
) -> npt.NDArray[np.float64] | None:
    """Row weights that make the ``None`` rows count as ``none_share`` of the metric."""
    none = labels < 0
    if none_share is None or not none.any() or none.all():
        return None
    weights = np.where(none, none_share / none.sum(), (1.0 - none_share) / (~none).sum())
    return np.asarray(weights * len(labels), dtype=np.float64)


def _encode(encoder: Encoder, texts: list[str], progress: Progress | None) -> Vectors:
    """Embed ``texts`` in chunks, reporting progress; the same vectors as one call."""
    if progress is None:
        return encoder.encode(texts)
    chunk = max(encoder.batch_size, 256)
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start : start + chunk]))
        progress(min(start + chunk, len(texts)), len(texts))
    if not parts:
        return np.zeros((0, encoder.dimension), np.float32)
    return np.concatenate(parts)


def _indices(labels: Sequence[str | None], names: Sequence[str]) -> npt.NDArray[np.int64]:
    position = {name: i for i, name in enumerate(names)}
    return np.array([-1 if x is None else position[x] for x in labels], dtype=np.int64)


def _warn_if_stored(state: RouteSet, texts: Sequence[str], what: str) -> None:
    stored = set(state.snapshot.utterances)
    overlap = sum(1 for text in texts if text in stored)
    if overlap:
        warnings.warn(
            f"{overlap} of the {len(texts)} {what} texts are stored route utterances: "
            "scores on them are inflated (each matches itself)",
            UserWarning,
            stacklevel=4,
        )


def fit_router(
    source: FitSource,
    texts: Sequence[str],
    labels: Sequence[str | None],
    *,
    validation: tuple[Sequence[str], Sequence[str | None]] | None,
    settings: FitSettings,
    progress: Progress | None,
) -> tuple[EvaluationReport, Calibration]:
    """The work behind :meth:`SemanticRouter.fit`."""
    state = source.state
    names = list(state.names)
    if not names:
        raise ConfigurationError("fit() needs at least one route")
    labels = check_labels(texts, labels, names)
    extra_texts: list[str] = []
    extra_labels: list[str | None] = []
    if validation is not None:
        extra_texts = list(validation[0])
        extra_labels = check_labels(extra_texts, validation[1], names)
    texts = source.check(texts)
    extra_texts = source.check(extra_texts)
    if not texts and not extra_texts:
        raise ConfigurationError(
            "fit() needs labelled example queries (texts and labels, or validation=)"
        )
    vectors = _encode(source.encoder, [*texts, *extra_texts], progress)
    y = _indices(labels, names)
    if validation is not None:
        train = np.arange(len(texts))
        held_vectors, held_labels = vectors[len(texts) :], _indices(extra_labels, names)
        held_gold = extra_labels
        held_texts = extra_texts
    else:
        keys = ["\x00none" if x is None else x for x in labels]
        train, held = stratified_split(keys, test_size=settings.holdout, seed=settings.seed)
        held_vectors, held_labels = vectors[held], y[held]
        held_gold = [labels[i] for i in held]
        held_texts = [texts[i] for i in held]
    if not len(held_labels):
        raise ConfigurationError("nothing was held out to choose thresholds on: give more texts")
    _warn_if_stored(state, held_texts, "held-out")
    similarities = source.similarities(held_vectors)
    fusions = _fusions(state)
    lexical = None
    if source.lexical is not None and any(method != "off" for method, _ in fusions):
        lexical = source.lexical(held_texts)
    calibration, probabilities = fit_calibration(
        names=names,
        digest=state.digest,
        fingerprint=source.encoder.fingerprint,
        utterance_vectors=source.utterance_vectors(),
        utterance_labels=state.snapshot.row_route,
        train_vectors=vectors[train],
        train_labels=y[train],
        heldout_vectors=held_vectors,
        heldout_labels=held_labels,
        heldout_similarities=similarities,
        settings=settings,
        heldout_lexical=lexical,
        fusions=fusions,
        start=learnt_head(state, held_vectors.shape[1]),
    )
    scores = _scale(probabilities, similarities, calibration.similarity_weight)
    if calibration.hybrid != "off" and lexical is not None:
        scores = fused_choice(scores, lexical, calibration.hybrid, calibration.hybrid_weight)
    cuts = np.array([calibration.thresholds[name] for name in names])
    predicted, top = apply_thresholds(scores, cuts)
    report = EvaluationReport.from_predictions(
        held_gold,
        [None if p < 0 else names[p] for p in predicted],
        top,
        top_routes=[names[i] for i in scores.argmax(axis=1)],
    )
    return report, calibration


def _fusions(state: RouteSet) -> Sequence[Fusion]:
    """The hybrid routings fit() considers: its choice when the router's ``hybrid`` option is
    ``None``; else the option's own, so the thresholds are fitted for what the router does."""
    options = state.options
    if options.hybrid is None:
        return FUSIONS
    return [(options.hybrid, options.hybrid_weight)]


def evaluate_router(
    state: RouteSet,
    route_many: Callable[[list[str]], list[RouteMatch]],
    check: Callable[[Sequence[str]], list[str]],
    texts: Sequence[str],
    labels: Sequence[str | None],
    *,
    progress: Progress | None,
) -> EvaluationReport:
    """The work behind :meth:`SemanticRouter.evaluate`."""
    labels = check_labels(texts, labels, state.names)
    texts = check(texts)
    _warn_if_stored(state, texts, "evaluation")
    matches: list[RouteMatch] = []
    chunk = 512
    for start in range(0, len(texts), chunk):
        matches += route_many(texts[start : start + chunk])
        if progress is not None:
            progress(min(start + chunk, len(texts)), len(texts))
    best = [max(m.scores, key=m.scores.__getitem__) if m.scores else None for m in matches]
    return EvaluationReport.from_predictions(
        labels, [m.name for m in matches], [m.score for m in matches], top_routes=best
    )
