"""Teaching the router: learning from its utterances, feedback, the decision log.

Self-training (``training/_selftrain.py``, imported on first use) runs with each change
(inline up to 2,000 utterances, else in one background thread) and is stored by digest;
feedback (``_feedback.py``) is part of the stored route set; decisions are logged beside it
(``_decisions.py``) and reviewed (``_review.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._collection import RouteCollection
from ._decisions import Decision, DecisionLog, LogOptions, read_decisions
from ._exceptions import (
    ConfigurationError,
    QueryTypeError,
    RouteNotFoundError,
)
from ._feedback import Feedback
from ._learned import Learned
from ._review import Review, review
from ._router_base import RouterBase
from ._router_query import _query_matrix
from ._routes import Route
from ._routeset import RouteSet, Snapshot, routes_digest
from ._routestore import (
    read_route_set,
)
from ._search import one_blas_thread
from .encoders import Vectors

__all__ = ["Teaching"]

logger = logging.getLogger("semrouter")
#: Route sets up to this many utterances learn inline (~0.1 s); bigger ones in the background.
_LEARN_INLINE = 2_000
#: The most of the wall time a background run takes while the process serves (issue 24, 3).
_BACKGROUND_SHARE = 0.25
#: How long a background run rests at a time before it looks whether anyone still works.
_REST_SLICE = 0.02


class _Pace:
    """Background learning yields the cores to serving (issue 24, point 3).

    Called after each step of training (one loss evaluation: ~0.25 s at 100k utterances on one
    BLAS thread), it rests until training has taken at most ``share`` of the wall time since
    the last rest, while other threads of the process use the CPU (routing, the encoder); when
    they are idle it goes on at once, so a router nobody queries learns at full speed. Measured
    against a lower thread priority (nice 19: routing unharmed, but learning starved for
    minutes under steady traffic) and no pacing in benchmarks/results/learning_load.txt.
    """

    def __init__(self, share: float = _BACKGROUND_SHARE) -> None:
        self.share = share
        self.mark = time.perf_counter()

    def __call__(self) -> None:
        rest = (time.perf_counter() - self.mark) * (1.0 / self.share - 1.0)
        end = time.perf_counter() + rest
        while (left := end - time.perf_counter()) > 0:
            wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
            time.sleep(min(_REST_SLICE, left))
            others = (time.process_time() - cpu) - (time.thread_time() - own)
            if others < 0.1 * (time.perf_counter() - wall):
                break  # the rest of the process is idle: nobody to yield to
        self.mark = time.perf_counter()


class Teaching(RouterBase):
    """Learning, feedback and review methods of :class:`~semrouter.SemanticRouter`."""

    # -- learning from the utterances -----------------------------------------------------------
    def learn(self) -> bool:
        """Train the head and the adaptive threshold on the routes' own utterances now (they
        are otherwise trained with each change, in the background for big route sets) and
        store them with the route set. Returns whether anything was trained."""
        running = self._learning
        if running is not None and running.is_alive():
            running.join()  # a background run for this route set may be finishing
        with self._lock:
            state = self._state
            if not self._needs_learning(state):
                return False
        return self._train(state)

    def _needs_learning(self, state: RouteSet) -> bool:
        if not state.options.learn or self._closed or self._collection is None:
            return False
        if self._collection.store.read_only or len(state.names) < 2:
            return False  # readers take what the writer learnt; one route: nothing to rank
        learned = state.learned
        return learned is None or not learned.current(state.digest, state.options)

    def _learner(self) -> Callable[[Sequence[Route], Snapshot, Learned | None], Learned | None]:
        """What a change learns before it is written (one change, one revision): small route
        sets inline; big ones are learnt in the background afterwards (see :meth:`_learn`)."""

        def learn(
            routes: Sequence[Route], snapshot: Snapshot, learned: Learned | None
        ) -> Learned | None:
            options = self._options
            if not options.learn or len(routes) < 2 or snapshot.size > _LEARN_INLINE:
                return None
            if learned is not None and learned.current(routes_digest(routes), options):
                return None
            return self._training(routes, snapshot, learned)

        return learn

    def _learn(self) -> None:
        """Learn for the current route set if it still needs it: inline when small, else in a
        background thread (routing meanwhile uses the similarity alone)."""
        state = self._state
        if not self._needs_learning(state):
            return
        if state.snapshot.size <= _LEARN_INLINE:
            self._train(state)
            return
        running = self._learning
        if running is not None and running.is_alive():
            return  # one run at a time: it learns the newest route set when it is done
        thread = threading.Thread(target=self._learn_in_background, daemon=True)
        thread.start()
        self._learning = thread

    def _learn_in_background(self) -> None:
        """Learn until the route set served no longer needs it (changes made meanwhile are
        learnt by the same thread, never by one thread per change), yielding to serving
        (:class:`_Pace`)."""
        while True:
            state = self._state
            if not self._needs_learning(state) or not self._train(state, True):
                if self._needs_learning(self._state) and self._state is not state:
                    continue  # the routes changed during the run: learn the new ones
                return

    def _training(
        self,
        routes: Sequence[Route],
        snapshot: Snapshot,
        previous: Learned | None,
        pause: Callable[[], None] | None = None,
    ) -> Learned:
        """Learn from the utterances of one route set (``training/_selftrain.py``); ``pause``
        after each step (a background run's :class:`_Pace`)."""
        from .training._abstention import own_route_scores
        from .training._selftrain import self_train

        options = self._options
        names = tuple(route.name for route in routes)
        vectors = self._open_collection().index.vectors_of(snapshot, pause)  # once for both
        rows = snapshot.row_route
        # One BLAS thread: the same head inline or in the background, on any core count, and
        # the other cores left to serving (at 100k utterances 8.6 s instead of 5.9 s on two).
        with one_blas_thread():
            own = own_route_scores(
                vectors,
                rows,
                len(names),
                top_k=options.top_k,
                aggregation=options.aggregation,
                pause=pause,
            )
            training = self_train(
                vectors,
                rows,
                names,
                top_k=options.top_k,
                aggregation=options.aggregation,
                previous=previous.training if previous is not None else None,
                fingerprint=self.encoder.fingerprint,
                own=own,
                pause=pause,
            )
        typical = float(np.nanmedian(own)) if np.isfinite(own).any() else 0.0
        return Learned(routes_digest(routes), training, typical)

    def _train(self, state: RouteSet, background: bool = False) -> bool:
        try:
            pause = _Pace() if background else None
            learned = self._training(state.routes, state.snapshot, state.learned, pause)
            with self._lock:
                current = self._state
                if self._closed or current.digest != state.digest:
                    return False  # the routes changed meanwhile: that change learns again
                self._open_collection().store_learned(learned)  # no new revision
                self._publish(self._build(list(current.routes), current.snapshot, learned=learned))
            return True
        except Exception as exc:
            if not background:
                raise
            if not self._closed:  # a background thread says what went wrong, never raises
                logger.warning("learning from the utterances failed: %s", exc)
            return False

    def _pick_up_learned(self, collection: RouteCollection) -> bool:
        """What the writer learnt in the background for the routes served (no new revision)."""
        state = self._state
        options = state.options
        if not options.learn or len(state.names) < 2 or state.identity is None:
            return False
        if state.learned is not None and state.learned.current(state.digest, options):
            return False
        learned = collection.learned_for(state.digest)
        if learned is None or not learned.current(state.digest, options):
            return False
        self._publish(self._build(list(state.routes), state.snapshot, learned=learned))
        return True

    # -- feedback ---------------------------------------------------------------------------
    def feedback(
        self,
        request: str,
        route: str | None,
        *,
        vector: Vectors | None = None,
    ) -> None:
        """Teach the router what ``request`` should have reached: a route's name (the request
        becomes one of its examples) or ``None`` (it belonged to no route: a negative).

        For a thumbs-down button, a human hand-off, an agent's tool call. Feedback is stored
        with the route set (one revision; every process and replica shares it, a redeploy
        keeps it) and learnt from at once: an example is searched like an utterance and
        self-training learns from it. ``vector``: the request's vector as it was routed
        (``encoder.encode([request])``), so nothing is encoded again; without it the request
        is encoded once. See ``_feedback.py`` for what is kept.

        Example:
            >>> from semrouter import Route, SemanticRouter
            >>> from semrouter.encoders import FakeEncoder
            >>> router = SemanticRouter([Route("refunds", ["I want my money back"]),
            ...                          Route("shipping", ["where is my parcel"])],
            ...                         encoder=FakeEncoder())
            >>> router.feedback("the package never arrived", "shipping")
            >>> router.examples()
            {'shipping': ['the package never arrived']}
        """
        self.feedback_many([request], [route], vectors=None if vector is None else [vector])

    def feedback_many(
        self,
        requests: Sequence[str],
        routes: Sequence[str | None],
        *,
        vectors: Vectors | Sequence[Vectors] | None = None,
    ) -> None:
        """:meth:`feedback` for many requests in one revision (a labelled review file, a
        day of thumbs-down clicks): ``routes[i]`` for ``requests[i]``."""
        texts = self._check(requests)
        labels = list(routes)
        if len(labels) != len(texts):
            raise ConfigurationError(f"got {len(texts)} requests but {len(labels)} routes")
        unknown = {r for r in labels if r is not None and r not in self._state.position}
        if unknown:
            self.refresh()  # another process may have added them
            unknown = {r for r in unknown if r not in self._state.position}
            if unknown:
                raise RouteNotFoundError(f"no route named {sorted(unknown)[0]!r}")
        given: dict[str, Any] = {}
        if vectors is not None:
            matrix = _query_matrix(np.vstack(list(vectors)), self.encoder)
            if len(matrix) != len(texts):
                raise QueryTypeError(f"got {len(matrix)} vectors but {len(texts)} requests")
            given = dict(zip(texts, matrix))

        def edit(feedback: Feedback) -> Feedback:
            for text, route in zip(texts, labels):
                if route is None:
                    feedback = feedback.with_negative(text)
                else:
                    feedback = feedback.with_example(route, text)
            return feedback

        self._commit_feedback(edit, given)

    def examples(self) -> dict[str, list[str]]:
        """The examples feedback gave each route (as stored now), oldest first."""
        stored = self._stored_now()
        return {name: list(texts) for name, texts in stored.examples.items()}

    @property
    def negatives(self) -> list[str]:
        """Requests fed back as belonging to no route (as stored now), oldest first."""
        return list(self._stored_now().negatives)

    def remove_examples(self, route: str, texts: Sequence[str] | None = None) -> None:
        """Forget ``route``'s examples ``texts`` (``None``: all of them)."""
        chosen = list(texts) if texts is not None else None
        self._commit_feedback(lambda feedback: feedback.without(route, chosen), {})

    def _stored_now(self) -> Feedback:
        stored = read_route_set(self._open_collection().store, self.tenant)
        return stored.feedback if stored is not None else Feedback()

    def _commit_feedback(self, edit: Callable[[Feedback], Feedback], given: dict[str, Any]) -> None:
        with self._lock:
            version = self._writable().commit(
                lambda stored: None, self._options, learn=self._learner(), edit=edit, vectors=given
            )
            if version is not None:
                self._publish_version(version)
                self._learn()

    # -- the decision log and review ----------------------------------------------------------
    def log_decisions(
        self,
        *,
        sample: float = 0.05,
        margin: float = 0.05,
        max_entries: int = 10_000,
        keep_text: bool = True,
    ) -> None:
        """Keep routing decisions in Qdrant beside the route set (``_decisions.py``): every
        abstention and low-margin decision, ``sample`` of the rest; written off the request
        path; ``keep_text=False`` stores a hash instead of the request. Called again, it
        changes the options; :meth:`close` stops it."""
        options = LogOptions(sample, margin, max_entries, keep_text)
        with self._lock:
            if self._log is not None:
                self._log.options = options
                return
            self._log = DecisionLog(
                self._location, self.collection, self.encoder.dimension, options,
                tenant=self.tenant,
            )  # fmt: skip

    def decisions(self, *, with_vectors: bool = False) -> list[Decision]:
        """Every logged decision of this route set, oldest first: all replicas' on a server,
        all processes' on an embedded folder."""
        if self._log is not None:
            self._log.flush()
        return read_decisions(
            self._location, self.collection, tenant=self.tenant, own=self._log,
            with_vectors=with_vectors,
        )  # fmt: skip

    def review(self, *, limit: int = 50, similarity: float = 0.7) -> Review:
        """The logged decisions most worth a human look, and routes the traffic asks for
        (abstained requests within ``similarity`` of each other; ``_review.py``); label them
        and apply them with :meth:`feedback_many`."""
        return review(self.decisions(with_vectors=True), limit=limit, similarity=similarity)
