"""Feedback: confirmed requests become examples of their route, stored with the route set."""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from semrouter import (
    FakeEncoder,
    ReadOnlyRouterError,
    Route,
    RouteNotFoundError,
    SemanticRouter,
)
from semrouter._feedback import MAX_EXAMPLES

ROUTES = [
    Route("refunds", ["I want my money back", "refund my order"]),
    Route("shipping", ["where is my parcel", "track my delivery"]),
]
REQUEST = "courier lost the box somewhere"


def test_a_confirmed_request_becomes_an_example_and_routes_at_once() -> None:
    encoder = FakeEncoder()
    with SemanticRouter(ROUTES, encoder=encoder) as router:
        assert router.route(REQUEST).name != "shipping"  # no shared word: not found
        revision = router.revision
        vector = encoder.encode([REQUEST])
        encoded = encoder.encoded_texts
        router.feedback(REQUEST, "shipping", vector=vector)
        assert encoder.encoded_texts == encoded  # its own vector: nothing encoded again
        assert router.revision == revision + 1
        assert router.examples() == {"shipping": [REQUEST]}
        assert router.route(REQUEST).name == "shipping"
        assert router.route("courier lost the box").name == "shipping"
        router.feedback(REQUEST, "shipping")  # again: kept once
        assert router.examples() == {"shipping": [REQUEST]}


def test_feedback_is_shared_by_every_router_of_the_collection() -> None:
    client = QdrantClient(":memory:")
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) as a,
        SemanticRouter.open(client=client, encoder=FakeEncoder()) as b,
    ):
        b.feedback(REQUEST, "shipping")  # any replica on a server may teach
        assert a.refresh() and a.route(REQUEST).name == "shipping"
    with SemanticRouter.open(client=client, encoder=FakeEncoder()) as later:
        assert later.examples() == {"shipping": [REQUEST]}
        assert REQUEST in later.get("shipping").utterances


def test_examples_survive_redeploys_and_go_with_their_route() -> None:
    client = QdrantClient(":memory:")
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) as router:
        router.feedback(REQUEST, "shipping")
        router.feedback("give me a refund now please", "refunds")
    changed = [ROUTES[0], Route("shipping", ["where is my parcel", "parcel status"])]
    with SemanticRouter(changed, encoder=FakeEncoder(), client=client, sync="replace") as r:
        assert r.examples()["shipping"] == [REQUEST]  # the declared routes did not drop it
        assert r.route(REQUEST).name == "shipping"
        r.update(Route("shipping", ["where is my parcel"]))
        assert REQUEST in r.get("shipping").utterances
        r.remove("refunds")  # a removed route takes its examples
        assert r.examples() == {"shipping": [REQUEST]}
        r.remove_examples("shipping", [REQUEST])
        assert r.examples() == {} and REQUEST not in r.get("shipping").utterances
        assert r.route(REQUEST).name != "shipping"


def test_negatives_are_kept_and_a_later_confirmation_moves_them() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        router.feedback("what is the meaning of life", None)
        router.feedback(REQUEST, None)
        assert router.negatives == ["what is the meaning of life", REQUEST]
        assert router.examples() == {}
        router.feedback(REQUEST, "shipping")
        assert router.negatives == ["what is the meaning of life"]
        assert router.examples() == {"shipping": [REQUEST]}


def test_each_route_keeps_its_latest_examples() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        for i in range(MAX_EXAMPLES + 3):
            router.feedback(f"parcel question number {i}", "shipping")
        kept = router.examples()["shipping"]
        assert len(kept) == MAX_EXAMPLES
        assert kept[-1] == f"parcel question number {MAX_EXAMPLES + 2}"
        assert "parcel question number 0" not in router.get("shipping").utterances


def test_bad_feedback_is_refused(tmp_path: Path) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as router:
        with pytest.raises(RouteNotFoundError):
            router.feedback(REQUEST, "no-such-route")
        with (
            SemanticRouter.open(path=tmp_path, encoder=FakeEncoder(), mode="read") as reader,
            pytest.raises(ReadOnlyRouterError, match="process"),
        ):
            reader.feedback(REQUEST, "shipping")
        assert router.examples() == {}


def test_many_requests_are_fed_back_in_one_revision() -> None:
    encoder = FakeEncoder()
    with SemanticRouter(ROUTES, encoder=encoder) as router:
        revision = router.revision
        texts = [REQUEST, "money please return it", "tell me a joke"]
        vectors = encoder.encode(texts)
        encoded = encoder.encoded_texts
        router.feedback_many(texts, ["shipping", "refunds", None], vectors=vectors)
        assert router.revision == revision + 1 and encoder.encoded_texts == encoded
        assert router.examples() == {"shipping": [REQUEST], "refunds": ["money please return it"]}
        assert router.negatives == ["tell me a joke"]
        with pytest.raises(RouteNotFoundError):
            router.feedback_many(["x y"], ["nope"])


def test_fit_learns_from_the_stored_negatives(monkeypatch: pytest.MonkeyPatch) -> None:
    from semrouter.training import _fitting

    seen: list[tuple[list[str], list[str | None]]] = []
    real = _fitting.fit_router

    def spy(source: object, texts: list[str], labels: list[str | None], **kw: object) -> object:
        seen.append((list(texts), list(labels)))
        return real(source, texts, labels, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_fitting, "fit_router", spy)
    texts = ["money back please", "refund it", "parcel is late", "delivery tracking"] * 3
    labels: list[str | None] = ["refunds", "refunds", "shipping", "shipping"] * 3
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        router.feedback_many(["tell me a joke", "refund it"], [None, None])
        router.fit(texts, labels, folds=0)
    # The stored negative the labelled texts do not hold is added as "no route"; one they
    # label themselves is left as they say.
    assert seen == [([*texts, "tell me a joke"], [*labels, None])]
