"""The pruned exact search returns what the full product returns."""

from __future__ import annotations

import numpy as np
import pytest

from semrouter._search import PRUNE_FROM, exact_search, make_pruning


def clustered(rows: int, seed: int, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, 384))
    matrix = centres[rng.integers(0, 50, rows)] + spread * rng.standard_normal((rows, 384))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(("spread", "limit"), [(0.5, 32), (1.0, 32), (3.0, 8), (1.0, 1)])
def test_pruned_search_equals_the_full_product(spread: float, limit: int) -> None:
    matrix = clustered(PRUNE_FROM + 904, seed=1, spread=spread)
    queries = clustered(40, seed=2, spread=spread)
    pruning = make_pruning(matrix)
    assert pruning is not None
    full = exact_search(matrix, queries, limit)  # no pruning: the plain product
    for i in range(len(queries)):
        pruned = exact_search(matrix, queries[i : i + 1], limit, pruning)
        assert set(pruned.rows[0]) == set(full.rows[i])
        assert np.allclose(pruned.scores[0], full.scores[i], atol=1e-5)
        assert list(pruned.scores[0]) == sorted(pruned.scores[0], reverse=True)


def test_small_matrices_are_not_pruned() -> None:
    assert make_pruning(clustered(PRUNE_FROM - 1, seed=3)) is None


def test_one_blas_thread_scope_restores_the_callers_setting() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    from semrouter._search import _one_blas_thread

    def counts() -> list[int]:
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = counts()
    matrix = clustered(PRUNE_FROM + 10, seed=4)
    pruning = make_pruning(matrix)

    def search(i: int) -> None:
        exact_search(matrix, matrix[i : i + 1], 8, pruning)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(search, range(64)))
    with _one_blas_thread:
        if _one_blas_thread._calls:  # OpenBLAS: one thread inside the scope
            assert set(counts()) == {1}
    assert counts() == before


def test_a_reused_projection_equals_a_fresh_one_on_the_kept_rows() -> None:
    matrix = clustered(PRUNE_FROM + 200, seed=5)
    first = make_pruning(matrix)
    assert first is not None
    changed = np.concatenate([matrix[100:], clustered(50, seed=6)])  # 100 rows gone, 50 new
    old_rows = np.concatenate([np.arange(100, len(matrix)), np.full(50, -1)])
    reused = make_pruning(changed, first, old_rows)
    assert reused is not None and reused.basis is first.basis
    fresh_rows = changed @ first.basis
    assert np.allclose(reused.rows, fresh_rows, atol=1e-5)
    queries = clustered(10, seed=7)
    for i in range(len(queries)):
        pruned = exact_search(changed, queries[i : i + 1], 16, reused)
        full = exact_search(changed, queries[i : i + 1], 16)
        assert set(pruned.rows[0]) == set(full.rows[0])


def test_scoring_a_small_call_runs_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scorer (a learnt head's product is above OpenBLAS's threading limit) runs on one
    BLAS thread for a small call, as the search does; a big batch keeps the caller's threads."""
    from threadpoolctl import threadpool_info

    import semrouter._router_query as querying
    from semrouter import FakeEncoder, Route, SemanticRouter
    from semrouter._search import ONE_THREAD_BATCH, _one_blas_thread

    def counts() -> set[int]:
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    if not _one_blas_thread._find() or max(counts(), default=1) < 2:
        pytest.skip("needs OpenBLAS with more than one thread")
    seen: list[set[int]] = []
    score = querying.score_and_decide

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(counts())
        return score(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(querying, "score_and_decide", recording)
    router = SemanticRouter(
        [Route("a", ["alpha one", "alpha two"]), Route("b", ["beta one", "beta two"])],
        encoder=FakeEncoder(dimension=16),
    )
    before = counts()
    router.route("alpha three")
    router.route_many([f"beta {i}" for i in range(ONE_THREAD_BATCH + 1)])
    router.close()
    assert seen == [{1}, before]
    assert counts() == before
