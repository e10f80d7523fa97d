"""The default router learns from its own utterances (issue 13): trained and stored at sync,
nothing trained on reopen, retrained only when the routes change, overridden by a user
threshold, deterministic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter.training import _selftrain as selftrain

TOPICS = {
    "flights": "flight plane airport ticket boarding gate",
    "weather": "rain sunny forecast weather cold umbrella",
    "music": "song jazz album band guitar playlist",
    "food": "pizza pasta sushi dinner recipe restaurant",
}


def routes(per_route: int = 15) -> list[Route]:
    out = []
    for name, words in TOPICS.items():
        vocab = words.split()
        utterances = [
            f"{vocab[i % 6]} {vocab[(i + 1) % 6]} {vocab[(i + 3) % 6]} {i // 6}"
            for i in range(per_route)
        ]
        out.append(Route(name, utterances))
    return out


class Counting:
    """Counts calls to self_train (the one training entry point)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = selftrain.self_train

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr("semrouter.training._selftrain.self_train", counted)


def test_trained_at_sync_and_stored_so_a_reopen_trains_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(monkeypatch)
    with SemanticRouter(routes(), encoder=FakeEncoder(), path=tmp_path) as router:
        learned = router._state.learned
        assert counting.calls == 1 and learned is not None
        assert router._state.rank_head is not None  # the head ranks the routes
    with SemanticRouter(routes(), encoder=FakeEncoder(), path=tmp_path) as again:
        assert counting.calls == 1  # nothing trained: it came with the stored route set
        stored = again._state.learned
        assert stored is not None and stored.to_dict() == learned.to_dict()
    with SemanticRouter.open(path=tmp_path, encoder=FakeEncoder()) as opened:
        assert opened._state.learned is not None and counting.calls == 1


def test_a_route_change_retrains_and_an_unchanged_sync_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = Counting(monkeypatch)
    router = SemanticRouter(routes(), encoder=FakeEncoder())
    router.set_routes(routes())  # the same routes: nothing to learn
    assert counting.calls == 1
    router.add(Route("games", ["chess board game", "video game console", "play chess online"]))
    assert counting.calls == 2
    learned = router._state.learned
    assert learned is not None and learned.digest == router._state.digest
    assert "games" in learned.training.head.route_names


def test_a_user_threshold_overrides_and_minus_one_never_abstains() -> None:
    router = SemanticRouter(routes(), encoder=FakeEncoder())
    assert router._state.learned is not None
    assert router.route("completely unrelated words here").name is None
    router.configure(threshold=-1.0)
    assert router.route("completely unrelated words here").name is not None
    router.configure(threshold=None, learn=False)
    assert router._state.rank_head is None  # learning off: the plain similarity rule


def test_learning_is_deterministic() -> None:
    first = SemanticRouter(routes(), encoder=FakeEncoder())
    second = SemanticRouter(routes(), encoder=FakeEncoder())
    a, b = first._state.learned, second._state.learned
    assert a is not None and b is not None
    assert a.to_dict() == b.to_dict()
    queries = ["jazz album tonight", "cheap flight ticket", "rain tomorrow?"]
    assert first.route_many(queries) == second.route_many(queries)


def test_the_head_picks_and_the_similarity_vetoes() -> None:
    router = SemanticRouter(routes(), encoder=FakeEncoder())
    cut = router.threshold_for("music")
    assert cut != router.encoder.default_threshold  # the threshold learnt from the route set
    for query in ("song jazz album 2", "jazz song playlist"):
        top = router.top_routes(query, limit=4, apply_threshold=False)
        assert top[0].name == "music" and len(top) == 4  # every route ranked by the head
        match = router.route(query)
        assert match.score == pytest.approx(top[0].score)  # the score is the similarity
        assert match.name == ("music" if top[0].score >= cut else None)


def test_each_route_gets_its_learnt_cut() -> None:
    router = SemanticRouter(routes(), encoder=FakeEncoder())
    learned = router._state.learned
    assert learned is not None
    cuts = learned.training.thresholds_by_route()
    assert len(set(cuts.values())) > 1  # routes differ in how alike their utterances are
    for name, cut in cuts.items():
        assert router.threshold_for(name) == max(cut, 0.0)
    router.configure(threshold=0.5)
    assert {router.threshold_for(name) for name in cuts} == {0.5}  # a user threshold wins


def test_an_adaptive_threshold_only_where_utterances_resemble_each_other() -> None:
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]
    trained = selftrain.self_train(vectors, [0, 0, 1, 1], ["a", "b"])
    from semrouter._learned import Learned

    assert Learned("d", trained, typical=0.9).credible(0.3)
    assert not Learned("d", trained, typical=0.1).credible(0.3)  # unlike examples: default


async def test_a_reader_takes_what_the_writer_learnt(tmp_path: Path) -> None:
    with (
        SemanticRouter(routes(), encoder=FakeEncoder(), path=tmp_path) as writer,
        SemanticRouter.open(path=tmp_path, encoder=FakeEncoder()) as reader,
    ):
        writer.add(Route("games", ["chess board game", "video game console", "play chess"]))
        assert await reader.arefresh()
        learned = reader._state.learned
        assert learned is not None and "games" in learned.training.head.route_names
        assert reader.route("play chess tonight") == writer.route("play chess tonight")


def test_closing_waits_for_a_background_learning_run() -> None:
    from semrouter._router_teach import _LEARN_INLINE

    per_route = _LEARN_INLINE // len(TOPICS) + 10  # big enough to learn in the background
    router = SemanticRouter(routes(per_route), encoder=FakeEncoder(), search="qdrant")
    running = router._learning
    assert running is not None
    router.close()  # must not pull the store from under the learning thread
    assert not running.is_alive() and router.closed


def test_a_pause_in_training_leaves_the_head_unchanged() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rows = np.repeat(np.arange(4), 30)
    names = ["a", "b", "c", "d"]
    calls: list[int] = []
    plain = selftrain.train_route_head(X, rows, names)
    paused = selftrain.train_route_head(X, rows, names, pause=lambda: calls.append(1))
    assert len(calls) >= 2  # once after each loss evaluation
    assert np.array_equal(plain.weights, paused.weights)
    assert np.array_equal(plain.bias, paused.bias)


def test_background_learning_pauses_and_learns_the_inline_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from semrouter import _router_teach
    from semrouter._router_teach import _LEARN_INLINE

    paces: list[Any] = []
    real = _router_teach._Pace

    def counted() -> Any:
        pace = real()
        paces.append(pace)
        return pace

    monkeypatch.setattr(_router_teach, "_Pace", counted)
    per_route = _LEARN_INLINE // len(TOPICS) + 10
    router = SemanticRouter(routes(per_route), encoder=FakeEncoder())
    assert router._learning is not None
    assert router.learn() is False  # it waits for the background run, which learnt
    assert len(paces) == 1  # the background run paced itself; the inline one below does not
    background = router._state.learned
    assert background is not None
    inline = router._training(router._state.routes, router._state.snapshot, None)
    assert len(paces) == 1
    assert np.array_equal(inline.training.head.weights, background.training.head.weights)
    router.close()


def test_the_pace_rests_while_the_process_works_and_not_while_it_is_idle() -> None:
    import threading
    import time

    from semrouter._router_teach import _Pace

    def step(pace: _Pace, seconds: float) -> float:
        pace.mark = time.perf_counter() - seconds  # as if training had just worked `seconds`
        started = time.perf_counter()
        pace()
        return time.perf_counter() - started

    pace = _Pace(share=0.25)
    assert step(pace, 0.1) < 0.05  # nobody else works: no rest (0.3 s owed)
    stop = threading.Event()

    def spin() -> None:  # another thread of the process busy (serving)
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        rested = step(pace, 0.1)
    finally:
        stop.set()
        worker.join()
    assert rested >= 0.25  # three times the work: ~0.3 s


def test_a_background_run_reads_qdrant_vectors_and_scores_routes_between_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading 100k vectors back from Qdrant took ~8 s of the interpreter in one piece and made
    # every query 5 x slower meanwhile: a paced run reads in chunks, pausing after each.
    from semrouter import _index
    from semrouter.training._abstention import own_route_scores

    monkeypatch.setattr(_index, "_PACED_READ", 7)
    router = SemanticRouter(routes(), encoder=FakeEncoder(), search="qdrant", learn=False)
    snapshot = router._state.snapshot
    index = router._open_collection().index
    assert snapshot.vectors is None and snapshot.size == 15 * len(TOPICS)  # read from Qdrant
    pauses: list[int] = []
    paced = index.vectors_of(snapshot, lambda: pauses.append(1))
    assert len(pauses) == -(-snapshot.size // 7)  # one after each chunk
    assert np.array_equal(paced, index.vectors_of(snapshot))
    pauses.clear()
    own = own_route_scores(paced, snapshot.row_route, len(TOPICS), pause=lambda: pauses.append(1))
    assert len(pauses) == len(TOPICS)  # one after each route
    assert np.array_equal(own, own_route_scores(paced, snapshot.row_route, len(TOPICS)))
    router.close()
