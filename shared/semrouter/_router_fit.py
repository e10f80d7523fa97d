"""Fitting and evaluating the router on labelled texts (``training/_fitting.py`` does the work,
imported on the first call: a router that only serves never loads ``semrouter.training``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._exceptions import (
    ConfigurationError,
    GateRefusedError,
    IndexMismatchError,
    RouteNotFoundError,
)
from ._gate import GateReport, check_gold, compare
from ._router_base import RouterBase
from ._router_query import _query_matrix
from ._routes import Route, RouteMatch
from ._routeset import (
    Calibration,
    RouteSet,
    adopt_calibration,
)
from ._routestore import (
    StoredRouteSet,
)
from ._scorer import candidates_wanted, route_similarities, score_and_decide
from .encoders import Encoder, Vectors

if TYPE_CHECKING:
    from .training._evaluation import EvaluationReport
    from .training._fitting import Progress

__all__ = ["Fitting"]


class Fitting(RouterBase):
    """The fitting methods of :class:`~semrouter.SemanticRouter`."""

    # -- fitting --------------------------------------------------------------------------------
    @property
    def calibration(self) -> Calibration | None:
        """What :meth:`fit` learnt, or ``None``."""
        return self._state.calibration

    @property
    def calibration_stale(self) -> bool:
        """Whether the routes changed since :meth:`fit` (the calibration is then ignored)."""
        return self._state.stale

    def threshold_for(self, name: str) -> float:
        """The score a query needs to match route ``name`` (see docs: threshold precedence)."""
        state = self._state
        if name not in state.position:
            raise RouteNotFoundError(f"no route named {name!r}")
        return state.threshold_for(name)

    def similarities(self, vectors: Vectors) -> np.ndarray:
        """Unfitted per-route similarities (n, R) of query vectors, in :attr:`route_names`
        order; NaN for routes with no utterance among the nearest ``candidates``."""
        state = self._state
        matrix = _query_matrix(vectors, self.encoder)
        found = self._open_index().search(state.snapshot, matrix, state.options.candidates)
        return route_similarities(state, found)[0]

    def fit(
        self,
        texts: Sequence[str] = (),
        labels: Sequence[str | None] = (),
        *,
        validation: tuple[Sequence[str], Sequence[str | None]] | None = None,
        holdout: float = 0.2,
        head: bool = True,
        per_route_thresholds: bool = False,
        metric: Literal["accuracy", "f1"] = "accuracy",
        none_weight: float = 5.0,
        none_share: float | None = 0.5,
        l2: float = 1e-5,
        seed: int = 0,
        folds: int = 5,
        gate: tuple[Sequence[str], Sequence[str | None]] | None = None,
        gate_z: float = 2.0,
        progress: Progress | None = None,
    ) -> EvaluationReport:
        """Learn routing from labelled texts; returns the report on the held-out texts.

        Every text is embedded once. A logistic head is trained on the route utterances and
        the training share of ``texts`` (a ``None`` label means "should match no route"), and
        the threshold is chosen on ``validation`` or, by default, a stratified ``holdout``
        share of ``texts``, so the report is not measured on training data. With ``folds``
        (cross-fitting, the default) the held-out texts are dealt into folds, each scored by a
        head that never saw it; the thresholds are chosen on those out-of-fold scores, and the
        head finally kept trains on the held-out texts too, so no labelled text is wasted
        (5 per route on CLINC150: 87.0 % -> 92.3 %, benchmarks/results/quality.txt). The result is
        deterministic, saved by :meth:`save`, and goes stale when the routes change. A
        router-wide ``threshold`` option, when set, still wins over the fitted thresholds
        (``router.configure(threshold=None)`` to use them; ``-1`` never abstains).

        Args:
            texts: example queries (may be empty when ``validation`` is given). The
                negatives stored by :meth:`feedback` (requests that belonged to no route) are
                added with a ``None`` label.
            labels: the route each should reach, or ``None``.
            validation: explicit held-out ``(texts, labels)`` instead of a split.
            holdout: share of ``texts`` held out when ``validation`` is not given.
            head: train the logistic head; ``False`` fits thresholds on similarities only.
            per_route_thresholds: one threshold per route instead of one for all (needs many
                labelled texts per route; on CLINC150 a single one generalised better).
            metric: what the thresholds maximise.
            none_weight: weight of ``None``-labelled rows in the head's loss.
            none_share: how much the held-out ``None`` rows count when the threshold is
                chosen, as a share of the metric (``None``: as many as there are).
            l2: the head's L2 penalty.
            seed: seeds the held-out split.
            folds: cross-fitting folds; ``0`` or ``1``: the held-out texts only choose the
                thresholds and never train the head (needs 10 held-out texts per fold, else
                that is what happens).
            gate: gold ``(texts, labels)`` the fitted router must not route significantly
                worse than the one in service (McNemar's z below ``-gate_z``, as
                :func:`~semrouter.gate`); if it does, :class:`~semrouter.GateRefusedError`
                is raised with the :class:`~semrouter.GateReport` and nothing is stored.
            gate_z: how significant a loss on ``gate`` must be to refuse the fit.
            progress: called as ``progress(done, total)`` while texts are encoded.
        """
        from .training._fitting import FitSettings, FitSource, fit_router

        if isinstance(folds, bool) or not isinstance(folds, int) or not 0 <= folds <= 20:
            raise ConfigurationError(f"folds must be an int from 0 to 20; got {folds!r}")
        texts, labels = self._with_negatives(texts, labels)
        with self._lock:
            state = self._state
            index = self._writable().index
            source = FitSource(
                state=state,
                encoder=self.encoder,
                similarities=self.similarities,
                utterance_vectors=lambda: index.vectors_of(state.snapshot),
                check=self._check,
                lexical=lambda texts: index.lexical(state.snapshot, texts, len(state.names)),
            )
            report, calibration = fit_router(
                source,
                texts,
                labels,
                validation=validation,
                settings=FitSettings(
                    holdout,
                    head,
                    per_route_thresholds,
                    metric,
                    none_weight,
                    none_share,
                    l2,
                    seed,
                    folds,
                ),
                progress=progress,
            )
            if gate is not None:
                verdict = self._gate(calibration, gate, gate_z)
                if not verdict.passed:
                    raise GateRefusedError(
                        "fit() refused by its gate: the fitted router routes the gold texts "
                        f"worse ({verdict.candidate_accuracy:.1%} against "
                        f"{verdict.baseline_accuracy:.1%}, McNemar z = {verdict.z:+.2f}); "
                        "nothing was stored. See the error's .report",
                        verdict,
                    )
            self._store_calibration(calibration)
        return report

    def _with_negatives(
        self, texts: Sequence[str], labels: Sequence[str | None]
    ) -> tuple[Sequence[str], Sequence[str | None]]:
        """``texts`` and ``labels`` plus the stored negatives (requests fed back as belonging
        to no route, :meth:`feedback`) not among them, labelled ``None``: what the application
        said belongs nowhere raises the thresholds ``fit()`` chooses. (Confirmed examples are
        route utterances already.)"""
        if isinstance(texts, str) or isinstance(labels, str) or len(texts) != len(labels):
            return texts, labels  # fit_router says what is wrong with them
        given = set(texts)
        negatives = [text for text in self._stored_now().negatives if text not in given]
        if not negatives:
            return texts, labels
        return [*texts, *negatives], [*labels, *([None] * len(negatives))]

    def _gate(
        self,
        calibration: Calibration | None,
        gold: tuple[Sequence[str], Sequence[str | None]],
        z: float,
    ) -> GateReport:
        """Route the gold texts with the route set served now and with the same routes under
        ``calibration`` (one encoding), and compare them as :func:`~semrouter.gate` does."""
        texts, labels = list(gold[0]), list(gold[1])
        state = self._state
        check_gold(texts, labels, set(state.names))
        vectors = _query_matrix(self.encoder.encode(self._check(texts)), self.encoder)
        candidate = self._build(list(state.routes), state.snapshot, calibration=calibration)
        old, new = (self._decide(s, vectors, texts) for s in (state, candidate))
        return compare(texts, labels, old, new, z=z)

    def _decide(self, state: RouteSet, vectors: Vectors, texts: list[str]) -> list[RouteMatch]:
        """One match per query under ``state`` (published or not)."""
        index = self._open_index()
        found = index.search(state.snapshot, vectors, candidates_wanted(state, 1))
        lexical = None
        if state.fusion is not None:
            lexical = index.lexical(state.snapshot, texts, len(state.names))
        decided = score_and_decide(
            state, vectors, found, lexical, limit=1, apply_threshold=True, keep_empty=True
        )
        return [matches[0] for matches in decided]

    def evaluate(
        self,
        texts: Sequence[str],
        labels: Sequence[str | None],
        *,
        progress: Progress | None = None,
    ) -> EvaluationReport:
        """Route ``texts`` and compare with ``labels`` (``None``: should match nothing).

        Warns when some texts are stored utterances: accuracy on them is inflated.
        """
        from .training._fitting import evaluate_router

        return evaluate_router(
            self._state, self.route_many, self._check, texts, labels, progress=progress
        )

    def set_calibration(self, calibration: Calibration | dict[str, Any] | None) -> None:
        """Install a calibration (from :meth:`fit` or a file), or drop it with ``None``."""
        with self._lock:
            self._store_calibration(_calibration(calibration, self.encoder, self.routes))

    def _store_calibration(self, calibration: Calibration | None) -> None:
        """Store a calibration with the route set (it is part of it) and publish it."""
        collection = self._writable()

        def apply(stored: StoredRouteSet | None) -> tuple[list[Route], Calibration | None] | None:
            routes = list(stored.routes) if stored is not None else []
            if stored is not None and stored.revision and calibration == stored.calibration:
                return None
            return routes, calibration

        version = collection.commit(apply, self._options, learn=self._learner())
        self._warned_stale = False
        if version is not None:
            self._publish_version(version)


def _calibration(
    calibration: Calibration | dict[str, Any] | None, encoder: Encoder, routes: list[Route]
) -> Calibration | None:
    if calibration is None:
        return None
    if isinstance(calibration, dict):
        try:
            calibration = Calibration.model_validate(calibration)
        except ValueError as exc:
            raise ConfigurationError(f"invalid calibration: {exc}") from None
    if not isinstance(calibration, Calibration):
        raise ConfigurationError("calibration must be a semrouter.Calibration or a mapping")
    if calibration.fingerprint != encoder.fingerprint:
        raise IndexMismatchError(
            f"the calibration was fitted with {calibration.fingerprint!r}, "
            f"not {encoder.fingerprint!r}: fit again"
        )
    return adopt_calibration(calibration, routes)
