"""One route set, one scorer, one options object (the redesign): options, score scale, threshold
precedence, fitted top_routes, the vector seams, copies and the closed state."""

from __future__ import annotations

import copy
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from semrouter import (
    ConfigurationError,
    FakeEncoder,
    Route,
    RouterClosedError,
    RouterOptions,
    SemanticRouter,
    SemRouterError,
)
from semrouter._learned import FLOOR_RATIO
from semrouter.encoders import Encoder
from tests.unit.core.test_fit import make_data, make_router


def fitted() -> SemanticRouter:
    router = make_router()
    router.fit(*make_data(0))
    return router


# -- options -----------------------------------------------------------------------------------
def test_options_are_validated_and_read_only() -> None:
    router = make_router()
    with pytest.raises(AttributeError, match="configure"):
        router.top_k = 0  # type: ignore[misc]
    with pytest.raises(AttributeError, match="configure"):
        router.threshold = 5.0  # type: ignore[misc]
    for bad in ({"top_k": 0}, {"threshold": 5.0}, {"aggregation": "sum"}, {"threshold": "0.5"}):
        with pytest.raises(ConfigurationError):
            router.configure(**bad)
    with pytest.raises(ConfigurationError, match="unknown router options"):
        router.configure(topk=3)
    assert router.options == RouterOptions()  # nothing half-applied


def test_configure_publishes_new_options() -> None:
    router = make_router()
    assert router.route("jazz album guitar").name == "music"
    router.configure(threshold=1.0)
    assert router.threshold == 1.0 and router.options.threshold == 1.0
    assert router.route("jazz album guitar").name is None
    router.configure(threshold=None, aggregation="max", top_k=1)
    assert router.route("jazz album guitar").name == "music"
    assert router.options.aggregation == "max"


def test_configure_search_mode_rebuilds_from_the_store_without_encoding() -> None:
    encoder = FakeEncoder()
    routes = [Route("a", ["red apple", "green apple"]), Route("b", ["blue sky", "grey sky"])]
    router = SemanticRouter(routes, encoder=encoder)
    calls = encoder.calls
    router.configure(search="qdrant")
    assert router.route("apple").name == "a"
    router.configure(search="exact")
    assert router.route("sky").name == "b"
    assert encoder.calls == calls + 2  # the two queries only


def test_every_option_survives_save_and_load(tmp_path: Path) -> None:
    options = RouterOptions(
        threshold=0.2, aggregation="max", top_k=3, candidates=7, search="exact", exact_limit=99
    )
    router = make_router(options=options)
    router.save(tmp_path / "r.yaml")
    again = SemanticRouter.load(tmp_path / "r.yaml", encoder=FakeEncoder())
    assert again.options == options


def test_legacy_top_level_options_are_read(tmp_path: Path) -> None:
    file = tmp_path / "old.yaml"
    file.write_text(
        "version: 1\nroutes:\n- name: a\n  utterances: [hello there]\n"
        "threshold: 0.3\naggregation: max\ntop_k: 1\n",
        encoding="utf-8",
    )
    router = SemanticRouter.load(file, encoder=FakeEncoder())
    assert (router.threshold, router.aggregation, router.top_k) == (0.3, "max", 1)


# -- one score scale and the threshold precedence ------------------------------------------------
def test_fitted_scores_and_thresholds_lie_in_minus_one_to_one() -> None:
    router = fitted()
    calibration = router.calibration
    assert calibration is not None and calibration.head is not None
    for value in calibration.thresholds.values():
        assert -1.0 <= value <= 1.0
    texts, _ = make_data(5)
    for match in router.route_many(texts):
        assert -1.0 <= match.score <= 1.0
        assert all(-1.0 <= s <= 1.0 for s in match.scores.values())


def test_a_fitted_router_can_be_told_never_to_abstain() -> None:
    router = fitted()
    assert router.route("unrelated99 gibberish3 noise").name is None
    router.configure(threshold=-1.0)
    assert router.route("unrelated99 gibberish3 noise").name is not None
    router.configure(threshold=None)  # back to the fitted thresholds
    assert router.route("unrelated99 gibberish3 noise").name is None


def test_threshold_precedence_route_then_router_then_fitted_then_encoder() -> None:
    router = fitted()
    calibration = router.calibration
    assert calibration is not None
    assert router.threshold_for("music") == calibration.thresholds["music"]
    router.configure(threshold=0.1)
    assert router.threshold_for("music") == 0.1
    music = router.get("music")
    router.update(Route("music", music.utterances, threshold=0.7))  # stale: the utterances agree
    assert router.threshold_for("music") == 0.7
    assert router.threshold_for("weather") == 0.1
    router.configure(threshold=None)
    assert router.threshold_for("weather") == calibration.thresholds["weather"]
    plain = make_router()  # no fit: the cut learnt from the utterances, at any size, floored
    learned = plain._state.learned
    assert learned is not None
    floor = FLOOR_RATIO * plain.encoder.default_threshold
    cut = learned.training.thresholds_by_route()["music"]
    assert plain.threshold_for("music") == max(cut, floor) >= floor


# -- the fitted path of every public method ----------------------------------------------------
def test_top_routes_on_a_fitted_router_ranks_every_route() -> None:
    router = fitted()
    top = router.top_routes("jazz album guitar", limit=3, apply_threshold=False)
    assert top[0].name == "music"
    assert len(top) == 3  # every route is scored by the head, not only the first
    assert set(top[0].scores) == {"flights", "weather", "music"}
    scores = [m.score for m in top]
    assert scores == sorted(scores, reverse=True)
    assert top[0].scores is top[1].scores  # one mapping per query, not a copy per match
    many = router.top_routes_many(["jazz album guitar", "rain forecast sunny"], limit=2)
    assert [m[0].name for m in many] == ["music", "weather"]


def test_route_match_scores_of_a_fitted_router_agree_with_its_scores() -> None:
    router = fitted()
    match = router.route("rain forecast umbrella")
    assert match.name == "weather"
    assert match.scores["weather"] == pytest.approx(match.score)
    assert max(match.scores, key=match.scores.__getitem__) == "weather"
    assert match.threshold == router.threshold_for("weather")


def test_limit_zero_and_negative() -> None:
    router = make_router()
    assert router.top_routes("jazz", limit=0) == []
    with pytest.raises(ConfigurationError):
        router.top_routes("jazz", limit=-1)
    assert len(router.top_routes("jazz", limit=2**62, apply_threshold=False)) == 3


# -- the vector seams --------------------------------------------------------------------------
def test_route_vectors_equals_route_and_encodes_nothing() -> None:
    router = fitted()
    encoder = router.encoder
    assert isinstance(encoder, FakeEncoder)
    texts = ["jazz album guitar", "rain forecast", "unrelated99 gibberish3 noise"]
    vectors = encoder.encode(texts)
    calls = encoder.calls
    assert router.route_vectors(vectors) == router.route_many(texts)
    assert encoder.calls == calls + 1  # route_many encoded once; route_vectors never
    top = router.top_routes_vectors(vectors, 2, apply_threshold=False)
    assert top == router.top_routes_many(texts, 2, apply_threshold=False)
    with pytest.raises(SemRouterError):
        router.route_vectors(np.zeros((1, 3), np.float32))


async def test_async_vector_seams_agree() -> None:
    router = fitted()
    vectors = router.encoder.encode(["jazz album guitar"])
    assert await router.aroute_vectors(vectors) == router.route_vectors(vectors)
    assert await router.atop_routes_vectors(vectors, 2) == router.top_routes_vectors(vectors, 2)


# -- one version per query ---------------------------------------------------------------------
def test_route_set_swaps_whole_under_concurrent_changes() -> None:
    router = make_router()
    extra = Route("extra", ["zebra zebra", "zebra giraffe"], threshold=0.99)
    stop = threading.Event()
    seen: list[tuple[str | None, float | None]] = []

    def reader() -> None:
        while not stop.is_set():
            match = router.route("zebra zebra")
            seen.append((match.name, match.threshold))

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(30):
        router.add(extra)
        router.remove("extra")
    stop.set()
    thread.join()
    # the route and its own threshold always arrive together
    assert all(threshold == 0.99 for name, threshold in seen if name == "extra")


# -- copies, pickling, closing -----------------------------------------------------------------
def test_copies_share_the_router_and_pickling_says_how_to_share() -> None:
    router = make_router()
    assert copy.deepcopy(router) is router and copy.copy(router) is router
    with pytest.raises(SemRouterError, match="load"):
        pickle.dumps(router)


def test_a_closed_router_raises_one_clear_error() -> None:
    router = make_router()
    router.close()
    router.close()  # idempotent
    for call in (
        lambda: router.route("jazz"),
        lambda: router.add(Route("x", ["y z"])),
        lambda: router.configure(top_k=1),
    ):
        with pytest.raises(RouterClosedError):
            call()
    assert "closed" in repr(router)


def test_repr_of_a_half_built_router() -> None:
    router = SemanticRouter.__new__(SemanticRouter)
    assert repr(router).startswith("SemanticRouter(")


def test_a_validation_only_fit() -> None:
    router = make_router()
    texts, labels = make_data(3, per_route=10, none=10)
    report = router.fit(validation=(texts, labels))
    assert report.n == len(texts)


# -- an encoder with no default threshold of its own -----------------------------------------
class _Scaled(Encoder):
    """A model whose similarities sit high (as e5's or ada's do) and that states no default
    threshold: the base class's 0.5 would let every query through."""

    model_id = "scaled"
    dimension = 64

    def __init__(self, declared: float | None = None) -> None:
        self._words = FakeEncoder(dimension=64)
        if declared is not None:
            self.default_threshold = declared

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self._words.encode(texts)
        shared = np.ones((len(texts), vectors.shape[1]), np.float32) / np.sqrt(vectors.shape[1])
        return (vectors + 2.0 * shared).astype(np.float32)


def _scaled_routes() -> list[Route]:
    return [
        Route("weather", ["weather forecast rain", "rain forecast tomorrow", "sunny weather"]),
        Route("music", ["play jazz music", "jazz playlist please", "music by miles davis"]),
    ]


def test_an_encoder_without_a_default_threshold_gets_the_learnt_one() -> None:
    assert not _Scaled().threshold_declared and _Scaled(0.9).threshold_declared
    assert FakeEncoder().threshold_declared  # FakeEncoder states 0.3
    router = SemanticRouter(_scaled_routes(), encoder=_Scaled())  # 6 utterances: well under 50
    learned = router._state.learned
    assert learned is not None
    cuts = learned.training.thresholds_by_route()
    for name in ("weather", "music"):  # on this model's scale, not the base class's 0.5
        assert router.threshold_for(name) == max(cuts[name], 0.0) > 0.6  # (no floor)
    assert router.route("rain forecast for tomorrow").name == "weather"
    declared = SemanticRouter(_scaled_routes(), encoder=_Scaled(0.9))
    assert declared.threshold_for("weather") == 0.9  # a stated default is kept
    declared.close()
    router.close()


def test_fit_cross_fits_unless_told_not_to() -> None:
    texts, labels = make_data(0, per_route=100, none=100)  # 80 held out: 5 folds of 16
    crossed, plain = make_router(), make_router()
    crossed.fit(texts, labels)  # 5 folds: the held-out texts train the kept head too
    plain.fit(texts, labels, folds=0)  # they only choose the thresholds
    a, b = crossed.calibration, plain.calibration
    assert a is not None and b is not None and a.head != b.head
    for bad in (-1, 2.5, True, 99):
        with pytest.raises(ConfigurationError, match="folds"):
            plain.fit(texts, labels, folds=bad)  # type: ignore[arg-type]
    crossed.close()
    plain.close()
