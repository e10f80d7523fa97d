"""Exact in-process nearest-neighbour search over the route matrix, pruned by a projection.

For one query against N unit rows the plain product costs N x d multiply-adds (10k x 384: about
0.3 ms, most of routing's cost beyond encoding). Above :data:`PRUNE_FROM` rows the snapshot also
holds a :class:`Pruning`: the rows projected on their top ``k`` principal directions ``P``
(``d x k``, k = d / 4) and each row's residual norm ``|x - P P^T x|``. Since
``q . x = (P^T q) . (P^T x) + r_q . r_x`` and ``|r_q . r_x| <= |r_q| |r_x|``,

1. the projected product gives every row's score to within ``|r_q| |r_x|`` (a quarter of the
   work);
2. the best ``2 * limit`` rows by projected score are scored exactly; the ``limit``-th best of
   them is a floor ``tau``;
3. every other row whose upper bound ``projected + |r_q| |r_x|`` exceeds ``tau`` is scored
   exactly too; no row left out can beat ``tau``.

So the answer is the same as the full product (exact, not approximate); on MiniLM vectors of
CLINC150 about 300 of 10,000 rows are scored exactly (benchmarks/results/core_perf.txt).
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Candidates:
    """The nearest utterances of each query: ``rows`` (n, C) index rows best first, -1 padded;
    ``scores`` (n, C) their cosine similarities; ``exhaustive`` when every row was compared."""

    rows: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    exhaustive: bool


__all__ = [
    "PRUNE_FROM",
    "Pruning",
    "exact_search",
    "make_pruning",
    "one_blas_thread",
    "serving_blas",
]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Matrices with at least this many rows get a :class:`Pruning`.
PRUNE_FROM = 4096
#: Batches up to this many queries are searched one by one (pruned); bigger ones with one
#: product, which from a few queries on costs less a query than the pruned loop's per-query
#: numpy calls (route_many() pages of 32 and coalesced callers' batches:
#: benchmarks/results/concurrent_callers_ab.txt).
SMALL_BATCH = 4
#: Batches up to this many queries run on one BLAS thread (see :class:`_OneBlasThread`): the
#: batches of coalesced callers and route_many() calls of a page of texts. With all threads,
#: OpenBLAS's workers spin after each product and take a core from the ONNX encoder that runs
#: next: route_many() calls of 32 texts ran at 0.34-0.35 of the encoder's batch throughput
#: (benchmarks/results/concurrent_callers_ab.txt, base runs).
ONE_THREAD_BATCH = 64
#: Bound slack for float32 rounding in the products.
_EPS = 1e-4
#: Rows used to estimate the principal directions (evenly spaced: deterministic).
_SAMPLE = 2048


@dataclass(frozen=True, eq=False)
class Pruning:
    """The projection of a route matrix: ``basis`` (d, k), ``rows`` (N, k), ``residual`` (N,);
    ``fitted_on``: the row count the basis was estimated on."""

    basis: FloatArray
    rows: FloatArray
    residual: FloatArray
    fitted_on: int


def make_pruning(
    matrix: FloatArray,
    previous: Pruning | None = None,
    old_rows: IntArray | None = None,
) -> Pruning | None:
    """The projection of ``matrix`` on its top principal directions (``None`` below
    :data:`PRUNE_FROM` rows, where the plain product is cheap).

    The search is exact with any orthonormal basis (a good one only prunes more), so the
    ``previous`` snapshot's basis is reused while the matrix is at most twice the size it was
    estimated on: a route change then costs one projection, not a new basis, and only of the
    rows that are new (``old_rows[i]``: row ``i``'s row in the previous matrix, or -1).
    """
    count, dimension = matrix.shape
    if count < PRUNE_FROM or dimension < 64:
        return None
    with _one_blas_thread:  # small products: threads cost more than they bring (see below)
        return _project(matrix, previous, old_rows)


def _project(matrix: FloatArray, previous: Pruning | None, old_rows: IntArray | None) -> Pruning:
    count, dimension = matrix.shape
    reuse = previous is not None and previous.basis.shape[0] == dimension
    if previous is not None and reuse and count <= 2 * previous.fitted_on:
        basis, fitted_on = previous.basis, previous.fitted_on
    else:
        basis, fitted_on = _principal_directions(matrix, dimension // 4), count
    if previous is not None and basis is previous.basis and old_rows is not None:
        new = np.flatnonzero(old_rows < 0)
        rows = np.empty((count, basis.shape[1]), dtype=np.float32)
        residual = np.empty(count, dtype=np.float32)
        kept = old_rows >= 0
        rows[kept] = previous.rows[old_rows[kept]]
        residual[kept] = previous.residual[old_rows[kept]]
        rows[new], residual[new] = _rows(matrix[new], basis)
        return Pruning(basis, rows, residual, fitted_on)
    rows, residual = _rows(matrix, basis)
    return Pruning(basis, rows, residual, fitted_on)


def _rows(matrix: FloatArray, basis: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Projected rows and residual norms; |x - P P^T x|^2 = |x|^2 - |P^T x|^2 (P orthonormal),
    with slack for float32 rounding."""
    rows = np.ascontiguousarray(matrix @ basis)
    squares = np.einsum("ij,ij->i", matrix, matrix) - np.einsum("ij,ij->i", rows, rows)
    residual = (np.sqrt(np.maximum(squares, 0.0) + 1e-6) + _EPS).astype(np.float32)
    return rows, residual


def _principal_directions(matrix: FloatArray, k: int) -> FloatArray:
    """An orthonormal (d, k) basis of the top-``k`` directions of ``matrix``'s rows: subspace
    iteration on the second-moment matrix of evenly spaced rows (deterministic, a few ms)."""
    sample = matrix[:: max(1, len(matrix) // _SAMPLE)]
    gram = (sample.T @ sample).astype(np.float64)
    start = np.random.default_rng(0).standard_normal((gram.shape[0], k))
    basis, _ = np.linalg.qr(start)
    for _ in range(6):
        basis, _ = np.linalg.qr(gram @ basis)
    return np.ascontiguousarray(basis, dtype=np.float32)


def exact_search(
    matrix: FloatArray, queries: FloatArray, limit: int, pruning: Pruning | None = None
) -> Candidates:
    """The ``limit`` nearest rows of ``matrix`` for each unit query, best first (exact)."""
    count = matrix.shape[0]
    n = len(queries)
    if count == 0 or limit <= 0:
        empty = np.zeros((n, 0), np.int64)
        return Candidates(empty, np.zeros((n, 0), np.float32), exhaustive=True)
    if n <= ONE_THREAD_BATCH:
        with _one_blas_thread:
            if n <= SMALL_BATCH and pruning is not None and 2 * limit < count:
                return _pruned(matrix, queries, limit, pruning)
            if _one_blas_thread._calls or n * count * matrix.shape[1] < _THREADED_PRODUCT:
                sims = queries @ matrix.T
            else:
                with _single_blas_thread():
                    sims = queries @ matrix.T
    else:
        sims = queries @ matrix.T
    if count <= limit:  # every row, best first
        rows = np.argsort(-sims, axis=1, kind="stable")
        return Candidates(rows, np.take_along_axis(sims, rows, axis=1), exhaustive=True)
    top = np.argpartition(-sims, limit - 1, axis=1)[:, :limit]
    top_scores = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    rows = np.take_along_axis(top, order, axis=1)
    scores = np.take_along_axis(top_scores, order, axis=1)
    return Candidates(rows, scores, exhaustive=False)


def _pruned(matrix: FloatArray, queries: FloatArray, limit: int, pruning: Pruning) -> Candidates:
    projected = queries @ pruning.basis  # (n, k)
    residual = np.sqrt(np.maximum(1.0 - np.einsum("ij,ij->i", projected, projected), 0.0))
    approx = projected @ pruning.rows.T  # (n, N)
    short = 2 * limit
    out_rows = np.empty((len(queries), limit), np.int64)
    out_scores = np.empty((len(queries), limit), np.float32)
    for i, query in enumerate(queries):
        row = approx[i]
        picked = np.argpartition(-row, short - 1)[:short]
        exact = matrix[picked] @ query
        floor = np.partition(exact, short - limit)[short - limit]
        bound = row + (residual[i] + _EPS) * pruning.residual
        bound[picked] = -np.inf  # already scored
        extra = np.flatnonzero(bound > floor)
        if len(extra) > len(row) // 8:  # the bound prunes little here: the full product
            picked = np.arange(len(row))
            exact = matrix @ query
        elif len(extra):
            picked = np.concatenate([picked, extra])
            exact = np.concatenate([exact, matrix[extra] @ query])
        best = np.argpartition(-exact, limit - 1)[:limit]
        best = best[np.argsort(-exact[best], kind="stable")]
        out_rows[i] = picked[best]
        out_scores[i] = exact[best]
    return Candidates(out_rows, out_scores, exhaustive=False)


# A few queries: one BLAS thread. OpenBLAS hands any product above ~9k multiply-adds to all its
# threads; for one query that costs more than it saves, its threads then spin and slow the ONNX
# encoder that runs next, and with more busy processes than cores a product can stall for
# milliseconds waiting for a descheduled thread (core_perf.txt). threadpoolctl's limit() costs
# ~0.1 ms a call, so OpenBLAS's own setter is called directly (~1 us); other BLAS libraries go
# through threadpoolctl, and only for big products.


class _OneBlasThread(AbstractContextManager[None]):
    """A re-entrant, thread-safe "one BLAS thread" scope: the first caller in saves the count,
    the last one out restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[int] = []
        self._calls: list[tuple[Any, Any]] | None = None

    def _find(self) -> list[tuple[Any, Any]]:
        calls: list[tuple[Any, Any]] = []
        try:
            from threadpoolctl import threadpool_info

            for info in threadpool_info():
                if info.get("internal_api") != "openblas":
                    continue
                lib = ctypes.CDLL(info["filepath"])
                for prefix in (info.get("prefix", ""), "scipy_openblas", "openblas"):
                    for suffix in ("64_", ""):
                        setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                        getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                        if setter is not None and getter is not None:
                            setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                            calls.append((getter, setter))
                            break
                    else:
                        continue
                    break
        except (ImportError, OSError, AttributeError):  # pragma: no cover - unusual builds
            return []
        return calls

    def __enter__(self) -> None:
        with self._lock:
            if self._calls is None:
                self._calls = self._find()
            if self._depth == 0:
                self._saved = [getter() for getter, _ in self._calls]
                for _, setter in self._calls:
                    setter(1)
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._calls:
                for (_, setter), count in zip(self._calls, self._saved):
                    setter(count)


_one_blas_thread = _OneBlasThread()
_THREADED_PRODUCT = 1 << 22
_blas: Any = None


def one_blas_thread() -> Any:
    """A scope whose matrix products run on one BLAS thread, the calling one (self-training:
    ``_router_teach.py``). The count is process-wide: a search that starts inside it keeps one
    thread until the scope ends (the same re-entrant scope, so neither undoes the other)."""
    with _one_blas_thread:
        found = bool(_one_blas_thread._calls)
    return _one_blas_thread if found else _single_blas_thread()


def serving_blas(queries: int) -> AbstractContextManager[object]:
    """The BLAS scope for the numpy work of serving ``queries`` queries (the scorer, the learnt
    head): one thread up to :data:`ONE_THREAD_BATCH` queries, as the search. A (1, 384) x
    (384, 100) head product is already above OpenBLAS's threading limit; run threaded, its
    spinning workers slowed the next encoder call."""
    return _one_blas_thread if queries <= ONE_THREAD_BATCH else nullcontext()


def _single_blas_thread() -> Any:
    """threadpoolctl's limit, for BLAS libraries other than OpenBLAS (MKL, BLIS, ...)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")
