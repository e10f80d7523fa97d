"""SemanticRouter: route texts to routes by meaning, on a Qdrant-backed route index."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._evaluation import EvaluationReport
from ._exceptions import (
    ConfigurationError,
    IndexMismatchError,
    InvalidQueryError,
    QueryTypeError,
    RouteNotFoundError,
    backend_errors,
    redact_url,
)
from ._fitting import CalibratedScorer, Calibration, Progress, routes_digest, score_matrix
from ._index import Aggregation, RouteIndex, RouteScores, SearchMode, SyncReport
from ._routes import Route, RouteMatch, check_text, validate_routes
from ._stores import ClientStore, EdgeStore, Store
from .encoders import Encoder, Vectors

__all__ = ["SemanticRouter", "StaleCalibrationWarning"]


class StaleCalibrationWarning(UserWarning):
    """The routes changed after :meth:`SemanticRouter.fit`; the fit is ignored until redone."""


_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class SemanticRouter:
    """Routes a text to the route whose example utterances it is closest to.

    The route vectors live in a Qdrant collection: embedded in the process by default (in a
    temporary folder, or persistent with ``path=``), or on a Qdrant server with ``url=``. On
    every start the declared routes are diffed against the collection, so only new utterances
    are encoded.

    Args:
        routes: the routes to serve.
        encoder: embeds utterances and queries; default :class:`~semrouter.LocalEncoder`.
        path: a folder for a persistent embedded collection.
        url: a Qdrant server, e.g. ``"http://localhost:6333"``.
        api_key: the server's API key (never saved or shown).
        prefer_grpc: talk gRPC to the server.
        timeout: seconds to wait for the server.
        client: a ready ``QdrantClient`` to use instead of ``path``/``url``.
        aclient: a ready ``AsyncQdrantClient`` for the async methods, beside ``client``.
        collection: the collection name.
        threshold: the minimum score for a match when a route sets none (default: the
            encoder's ``default_threshold``).
        aggregation: how a route's hits become its score: ``"mean"`` of its best ``top_k``
            hits, or its ``"max"`` hit. The default, the mean of the best two, was the most
            accurate across CLINC150 and BANKING77 with 5 or 100 utterances per route
            (benchmarks/results/aggregation.txt).
        top_k: hits per route averaged by ``"mean"``.
        candidates: nearest utterances fetched per query before aggregation.
        rebuild: replace a collection made by another encoder instead of raising
            :class:`~semrouter.IndexMismatchError`.
        search: ``"auto"`` (exact in-process search up to ``exact_limit`` utterances, Qdrant's
            HNSW index above), ``"exact"`` or ``"qdrant"``.
        exact_limit: see ``search``.
        calibration: a :class:`Calibration` from :meth:`fit` (as saved in a config file).

    Example:
        >>> from semrouter import Route, SemanticRouter
        >>> from semrouter.encoders import FakeEncoder
        >>> router = SemanticRouter(
        ...     [Route("greet", ["hello there", "hi how are you"]),
        ...      Route("bye", ["goodbye now", "see you later"])],
        ...     encoder=FakeEncoder(),
        ... )
        >>> router.route("hello, how are you?").name
        'greet'
    """

    def __init__(
        self,
        routes: Sequence[Route] = (),
        *,
        encoder: Encoder | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        timeout: float = 5.0,
        client: Any = None,
        aclient: Any = None,
        collection: str = "semrouter",
        threshold: float | None = None,
        aggregation: Aggregation = "mean",
        top_k: int = 2,
        candidates: int = 32,
        rebuild: bool = False,
        search: SearchMode = "auto",
        exact_limit: int = 20_000,
        calibration: Calibration | dict[str, Any] | None = None,
    ) -> None:
        declared = validate_routes(routes)
        _check_options(
            collection,
            threshold,
            aggregation,
            top_k,
            candidates,
            search,
            path,
            url,
            client,
            api_key,
        )
        if encoder is None:
            from .encoders._local import LocalEncoder

            encoder = LocalEncoder()
        if not isinstance(encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter.encoders.Encoder")
        self.encoder = encoder
        self.threshold = threshold
        self.aggregation: Aggregation = aggregation
        self.top_k = top_k
        self.candidates = candidates
        self.collection = collection
        self._location: dict[str, Any] = {
            "path": str(path) if path is not None else None,
            "url": redact_url(url, mark=False) if url is not None else None,
            "prefer_grpc": prefer_grpc,
            "timeout": timeout,
        }
        self._owned_clients: list[Any] = []
        store = self._make_store(path, url, api_key, prefer_grpc, timeout, client, aclient)
        self._lock = threading.RLock()
        self._routes: dict[str, Route] = {}
        self._digest = ""
        self._scorer: CalibratedScorer | None = None
        self._warned_stale = False
        try:
            self._index = RouteIndex(
                store, encoder, rebuild=rebuild, exact_limit=exact_limit, search=search
            )
            self.last_sync = self._set(declared)
            self._set_calibration(calibration)
        except BaseException:
            store.close()
            self._close_clients()
            raise

    # -- construction helpers ----------------------------------------------------------------
    def _make_store(
        self,
        path: str | Path | None,
        url: str | None,
        api_key: str | None,
        prefer_grpc: bool,
        timeout: float,
        client: Any,
        aclient: Any,
    ) -> Store:
        if client is not None:
            return ClientStore(client, self.collection, aclient=aclient, timeout=timeout)
        if url is not None:
            from qdrant_client import AsyncQdrantClient, QdrantClient

            seconds = max(1, round(timeout))
            target = redact_url(url) + (" (gRPC)" if prefer_grpc else "")
            options: dict[str, Any] = {
                "url": url,
                "api_key": api_key,
                "prefer_grpc": prefer_grpc,
                "timeout": seconds,
                "check_compatibility": False,  # no version probe: it would call the server
            }
            with backend_errors(target):
                sync_client = QdrantClient(**options)
                async_client = AsyncQdrantClient(**options)
            self._owned_clients += [sync_client, async_client]
            return ClientStore(
                sync_client, self.collection, aclient=async_client, target=target, timeout=timeout
            )
        return EdgeStore(path, self.collection)

    def _close_clients(self) -> None:
        for owned in self._owned_clients:
            close = getattr(owned, "close", None)
            if close is not None and not _is_async(close):
                close()
        self._owned_clients.clear()

    # -- the route set --------------------------------------------------------------------------
    @property
    def routes(self) -> list[Route]:
        """The routes served, in declaration order."""
        return list(self._routes.values())

    @property
    def route_names(self) -> list[str]:
        """The names of the routes served."""
        return list(self._routes)

    def get(self, name: str) -> Route:
        """The route called ``name``."""
        try:
            return self._routes[name]
        except KeyError:
            raise RouteNotFoundError(f"no route named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._routes

    def __len__(self) -> int:
        return len(self._routes)

    def _set(self, routes: list[Route]) -> SyncReport:
        with self._lock:
            report = self._index.sync(routes)
            self._routes = {route.name: route for route in routes}
            self._digest = routes_digest(routes)
            return report

    def set_routes(self, routes: Sequence[Route]) -> SyncReport:
        """Replace the whole route set, encoding only utterances that are new.

        A no-op (nothing encoded, nothing written) when the routes are unchanged.
        """
        declared = validate_routes(routes)
        with self._lock:
            if declared == list(self._routes.values()):
                return SyncReport(kept=self._index.size)
            self.last_sync = self._set(declared)
            return self.last_sync

    def add(self, route: Route) -> SyncReport:
        """Add a route; its name must be new."""
        route = _one_route(route)
        with self._lock:
            if route.name in self._routes:
                raise ConfigurationError(f"duplicate route name: {route.name!r}; use update()")
            return self._set([*self._routes.values(), route])

    def update(self, route: Route) -> SyncReport:
        """Replace the route of the same name (only changed utterances are re-encoded)."""
        route = _one_route(route)
        with self._lock:
            self.get(route.name)
            return self._set([route if r.name == route.name else r for r in self._routes.values()])

    def remove(self, name: str) -> SyncReport:
        """Remove a route; once this returns, routing never answers ``name``."""
        with self._lock:
            self.get(name)
            return self._set([r for r in self._routes.values() if r.name != name])

    # -- routing -------------------------------------------------------------------------------
    def route(self, text: str) -> RouteMatch:
        """The best route for ``text``, or a match with ``name=None`` when none passes."""
        return self.route_many([text])[0]

    async def aroute(self, text: str) -> RouteMatch:
        """Asynchronous :meth:`route`; never blocks the event loop on encoding or I/O."""
        return (await self.aroute_many([text]))[0]

    def route_many(self, texts: Sequence[str]) -> list[RouteMatch]:
        """Route many texts with one encoder batch and one batched index query."""
        return [m[0] for m in self._decide_all(self._score(texts), limit=1, apply_threshold=True)]

    async def aroute_many(self, texts: Sequence[str]) -> list[RouteMatch]:
        """Asynchronous :meth:`route_many`."""
        scored = await self._ascore(texts)
        return [m[0] for m in self._decide_all(scored, limit=1, apply_threshold=True)]

    def route_vectors(self, vectors: Vectors) -> list[RouteMatch]:
        """Route already-encoded queries (rows of ``encoder.encode(...)``); nothing is encoded.

        The seam for callers that keep query vectors (conversations, benchmarks, fitting).
        """
        return [m[0] for m in self._decide_all(self._score_vectors(vectors), 1, True)]

    def top_routes_vectors(
        self, vectors: Vectors, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """:meth:`top_routes_many` for already-encoded queries."""
        scored = self._score_vectors(vectors, limit)
        return self._decide_all(scored, limit, apply_threshold, keep_empty=False)

    async def aroute_vectors(self, vectors: Vectors) -> list[RouteMatch]:
        """Asynchronous :meth:`route_vectors` (awaits Qdrant when the search runs there)."""
        matrix = _query_matrix(vectors, self.encoder.dimension)
        scored = await self._index.aquery(matrix, **self._query_options(1))
        return [m[0] for m in self._decide_all(self._calibrated(matrix, scored), 1, True)]

    def _score_vectors(self, vectors: Vectors, limit: int = 1) -> list[RouteScores]:
        matrix = _query_matrix(vectors, self.encoder.dimension)
        if not len(matrix):
            return []
        return self._calibrated(matrix, self._index.query(matrix, **self._query_options(limit)))

    def top_routes(
        self, text: str, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Up to ``limit`` routes for ``text``, best first (empty when none passes).

        With ``apply_threshold=False`` the best ``limit`` routes are returned whatever their
        score, as tool preselection wants.
        """
        return self.top_routes_many([text], limit, apply_threshold=apply_threshold)[0]

    def top_routes_many(
        self, texts: Sequence[str], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """:meth:`top_routes` for many texts in one batch."""
        scored = self._score(texts, limit=limit)
        return self._decide_all(scored, limit, apply_threshold, keep_empty=False)

    async def atop_routes(
        self, text: str, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Asynchronous :meth:`top_routes`."""
        return (await self.atop_routes_many([text], limit, apply_threshold=apply_threshold))[0]

    async def atop_routes_many(
        self, texts: Sequence[str], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`top_routes_many`."""
        scored = await self._ascore(texts, limit=limit)
        return self._decide_all(scored, limit, apply_threshold, keep_empty=False)

    def _check(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise QueryTypeError("route_many() takes a list of strings; use route() for one")
        items = list(texts)
        for text in items:
            if not isinstance(text, str):
                raise QueryTypeError(f"a query must be a str, got {type(text).__name__}")
            if not text.strip():
                raise InvalidQueryError("a query must not be empty or only white space")
            problem = check_text(text, "the query")
            if problem:
                raise InvalidQueryError(problem)
        return items

    def _query_options(self, limit: int) -> dict[str, Any]:
        wanted = max(self.candidates, limit * self.top_k * 2)
        return {"candidates": wanted, "top_k": self.top_k, "aggregation": self.aggregation}

    def _score(self, texts: Sequence[str], limit: int = 1) -> list[RouteScores]:
        items = self._check(texts)
        if not items:
            return []
        vectors = self.encoder.encode(items)
        return self._calibrated(vectors, self._index.query(vectors, **self._query_options(limit)))

    async def _ascore(self, texts: Sequence[str], limit: int = 1) -> list[RouteScores]:
        items = self._check(texts)
        if not items:
            return []
        vectors = await self.encoder.aencode(items)
        scored = await self._index.aquery(vectors, **self._query_options(limit))
        return self._calibrated(vectors, scored)

    def _calibrated(self, vectors: Vectors, scored: list[RouteScores]) -> list[RouteScores]:
        """Re-score with the fitted head (head probability + similarity), when there is one."""
        scorer = self._active_scorer()
        if scorer is None or scorer.head is None:
            return scored
        names = scorer.head.route_names
        blended = scorer.scores(vectors, score_matrix(scored, names))
        keep = min(len(names), max(10, self.candidates))
        out = []
        for row, result in enumerate(scored):
            nearest = dict(zip(result.names, result.utterances))
            order = np.argsort(-blended[row], kind="stable")[:keep]
            out.append(
                RouteScores(
                    names=tuple(names[i] for i in order),
                    scores=blended[row][order].astype(np.float32),
                    utterances=tuple(nearest.get(names[i]) for i in order),
                )
            )
        return out

    def _active_scorer(self) -> CalibratedScorer | None:
        scorer = self._scorer
        if scorer is None:
            return None
        if scorer.calibration.routes_digest != self._digest:
            if not self._warned_stale:
                self._warned_stale = True
                warnings.warn(
                    "the routes changed since fit(): the fitted head and thresholds are stale "
                    "and ignored until the router is fitted again",
                    StaleCalibrationWarning,
                    stacklevel=4,
                )
            return None
        return scorer

    @property
    def calibration(self) -> Calibration | None:
        """What :meth:`fit` learnt, or ``None``."""
        return self._scorer.calibration if self._scorer is not None else None

    @property
    def calibration_stale(self) -> bool:
        """Whether the routes changed since :meth:`fit` (the calibration is then ignored)."""
        scorer = self._scorer
        return scorer is not None and scorer.calibration.routes_digest != self._digest

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str | None],
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
        progress: Progress | None = None,
    ) -> EvaluationReport:
        """Learn routing from labelled texts; returns the report on the held-out texts.

        Every text is embedded once. A logistic head is trained on the route utterances and
        the training share of ``texts`` (a ``None`` label means "should match no route"), and
        the threshold is chosen on ``validation`` or, by default, a stratified ``holdout``
        share of ``texts``, so the report is not measured on training data. The result is
        deterministic, saved by :meth:`save`, and goes stale when the routes change.

        Args:
            texts: example queries.
            labels: the route each should reach, or ``None``.
            validation: explicit held-out ``(texts, labels)`` instead of a split.
            holdout: share of ``texts`` held out when ``validation`` is not given.
            head: train the logistic head; ``False`` fits thresholds on similarities only.
            per_route_thresholds: one threshold per route instead of one for all (needs many
                labelled texts per route; on CLINC150 a single one generalised better).
            metric: what the thresholds maximise.
            none_weight: weight of ``None``-labelled rows in the head's loss.
            none_share: how much the held-out ``None`` rows count when the threshold is
                chosen, as a share of the metric (``None``: as many as there are). Held-out
                sets rarely carry production's share of out-of-scope queries (CLINC150's
                validation: 3 %, its test: 18 %); 0.5 weighs a wrong answer and a wrong
                abstention alike.
            l2: the head's L2 penalty.
            seed: seeds the held-out split.
            progress: called as ``progress(done, total)`` while texts are encoded.
        """
        from ._fitting import fit_router

        report, calibration = fit_router(
            self,
            texts,
            labels,
            validation=validation,
            holdout=holdout,
            head=head,
            per_route_thresholds=per_route_thresholds,
            metric=metric,
            none_weight=none_weight,
            none_share=none_share,
            l2=l2,
            seed=seed,
            progress=progress,
        )
        self._set_calibration(calibration)
        return report

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
        from ._fitting import evaluate_router

        return evaluate_router(self, texts, labels, progress=progress)

    def _set_calibration(self, calibration: Calibration | dict[str, Any] | None) -> None:
        if calibration is None:
            self._scorer = None
            return
        if isinstance(calibration, dict):
            try:
                calibration = Calibration.model_validate(calibration)
            except ValueError as exc:
                raise ConfigurationError(f"invalid calibration: {exc}") from exc
        if calibration.fingerprint != self.encoder.fingerprint:
            raise IndexMismatchError(
                f"the calibration was fitted with {calibration.fingerprint!r}, "
                f"not {self.encoder.fingerprint!r}: fit again"
            )
        self._scorer = CalibratedScorer(calibration)
        self._warned_stale = False

    def threshold_for(self, name: str) -> float:
        """The score a query needs to match route ``name`` (the fitted one after :meth:`fit`)."""
        scorer = self._active_scorer()
        if scorer is not None and name in scorer.calibration.thresholds:
            return scorer.calibration.thresholds[name]
        route = self._routes.get(name)
        if route is not None and route.threshold is not None:
            return route.threshold
        return self.threshold if self.threshold is not None else self.encoder.default_threshold

    def _decide_all(
        self,
        scored: list[RouteScores],
        limit: int,
        apply_threshold: bool,
        *,
        keep_empty: bool = True,
    ) -> list[list[RouteMatch]]:
        return [self._decide(s, limit, apply_threshold, keep_empty) for s in scored]

    def _decide(
        self, scored: RouteScores, limit: int, apply_threshold: bool, keep_empty: bool
    ) -> list[RouteMatch]:
        all_scores = {name: float(s) for name, s in zip(scored.names, scored.scores)}
        matches: list[RouteMatch] = []
        for name, score, utterance in zip(scored.names, scored.scores, scored.utterances):
            threshold = self.threshold_for(name)
            if apply_threshold and score < threshold:
                continue
            matches.append(
                RouteMatch(
                    name=name,
                    score=float(score),
                    scores=all_scores,
                    utterance=utterance,
                    threshold=threshold,
                )
            )
            if len(matches) >= limit:
                break
        if not matches and keep_empty:
            best = float(scored.scores[0]) if len(scored.scores) else 0.0
            nearest = scored.utterances[0] if scored.utterances else None
            matches.append(RouteMatch(name=None, score=best, scores=all_scores, utterance=nearest))
        return matches

    # -- persistence and life cycle -------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write routes, encoder spec and Qdrant location to YAML or JSON (never secrets)."""
        from ._config import save_router

        save_router(self, Path(path))

    @classmethod
    def load(cls, file: str | Path, /, **overrides: Any) -> SemanticRouter:
        """Build a router from a file written by :meth:`save`.

        Keyword arguments override the file (``encoder=``, ``api_key=``, ``client=`` ...).
        """
        from ._config import load_router_kwargs

        return cls(**load_router_kwargs(Path(file), overrides))

    @property
    def location(self) -> dict[str, Any]:
        """Where the collection lives: ``path``, ``url``, ``prefer_grpc``, ``timeout``."""
        return dict(self._location)

    @property
    def index_size(self) -> int:
        """Number of utterances in the index."""
        return self._index.size

    def close(self) -> None:
        """Flush and close the index (and any client the router made itself)."""
        self._index.close()
        self._close_clients()

    def __enter__(self) -> SemanticRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self._location["url"] or self._location["path"] or ":memory:")
        return (
            f"SemanticRouter(routes={len(self._routes)}, utterances={self._index.size}, "
            f"encoder={self.encoder!r}, collection={self.collection!r}, location={where!r})"
        )


def _query_matrix(vectors: Any, dimension: int) -> Vectors:
    """Query vectors as a C-contiguous float32 ``(n, dimension)`` matrix of unit rows."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dimension:
        raise QueryTypeError(f"query vectors must have shape (n, {dimension}), got {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise InvalidQueryError("query vectors must be finite")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def _one_route(route: Any) -> Route:
    if isinstance(route, dict):
        return Route.from_dict(route)
    if not isinstance(route, Route):
        raise ConfigurationError(f"expected a Route, got {type(route).__name__}")
    return route


def _is_async(func: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def _check_options(
    collection: str,
    threshold: float | None,
    aggregation: str,
    top_k: int,
    candidates: int,
    search: str,
    path: Any,
    url: Any,
    client: Any,
    api_key: Any,
) -> None:
    if not isinstance(collection, str) or not _COLLECTION_NAME.match(collection):
        raise ConfigurationError(
            f"collection name {collection!r} must be letters, digits, '_', '-' or '.' (max 128)"
        )
    if threshold is not None and not -1.0 <= threshold <= 1.0:
        raise ConfigurationError("threshold must be between -1 and 1")
    if aggregation not in ("mean", "max"):
        raise ConfigurationError("aggregation must be 'mean' or 'max'")
    if top_k < 1 or candidates < 1:
        raise ConfigurationError("top_k and candidates must be at least 1")
    if search not in ("auto", "exact", "qdrant"):
        raise ConfigurationError("search must be 'auto', 'exact' or 'qdrant'")
    if sum(x is not None for x in (path, url, client)) > 1:
        raise ConfigurationError("give at most one of path=, url= and client=")
    if api_key is not None and url is None:
        raise ConfigurationError("api_key= goes with url=; an injected client carries its own key")
    if isinstance(path, str) and path == ":memory:":
        raise ConfigurationError("leave path unset for an in-memory index")
