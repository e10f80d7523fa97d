"""ConversationRouter: follow-ups, topic switches, out-of-scope turns, nothing re-encoded."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from semrouter import (
    ConfigurationError,
    ConversationMatch,
    ConversationOptions,
    ConversationRouter,
    FakeEncoder,
    InvalidQueryError,
    QueryTypeError,
    Route,
    SemanticRouter,
    SemRouterError,
    Turn,
)
from semrouter._conversation import fold, follow_up_cue, user_text

ROUTES = [
    Route("flights", ["book a flight to paris", "find flights to rome", "cheap plane tickets"]),
    Route("hotels", ["book a hotel room", "find a hotel near the station", "cheap hotel rooms"]),
    Route("weather", ["weather forecast for tomorrow", "will it rain today", "is it sunny"]),
]


@pytest.fixture
def router(fake_encoder: FakeEncoder) -> Iterator[SemanticRouter]:
    with SemanticRouter(ROUTES, encoder=fake_encoder, threshold=0.3) as router:
        yield router


@pytest.fixture
def conversation(router: SemanticRouter) -> ConversationRouter:
    return ConversationRouter(router)


# -- the fold, on known scores (threshold 0.3 everywhere) ---------------------------------------
THRESHOLDS = np.array([0.3, 0.3, 0.3])
OPTIONS = ConversationOptions(decay=1.0, clear_margin=0.05, switch_gap=0.08, join_margin=0.14)


def row(*scores: float) -> np.ndarray:
    return np.array(scores, dtype=np.float64)


def test_fold_follow_up_inherits_the_context() -> None:
    context, weights = fold([row(0.7, 0.1, 0.0), row(0.2, 0.25, 0.1)], THRESHOLDS, OPTIONS)
    assert context is not None
    np.testing.assert_allclose(context, [0.45, 0.175, 0.05])
    assert weights == {0: 0.5, 1: 0.5}


def test_fold_clear_switch_starts_a_new_context() -> None:
    rows = [row(0.7, 0.1, 0.0), row(0.3, 0.6, 0.1)]
    context, weights = fold(rows, THRESHOLDS, OPTIONS)
    assert context is not None
    np.testing.assert_allclose(context, rows[1])
    assert weights == {1: 1.0}


def test_fold_clear_but_close_to_the_context_route_is_a_follow_up() -> None:
    # 0.40 passes clear_margin but beats the context route (0.35) by less than switch_gap.
    context, weights = fold([row(0.7, 0.1, 0.0), row(0.35, 0.40, 0.1)], THRESHOLDS, OPTIONS)
    assert context is not None
    assert int(np.argmax(context)) == 0
    assert weights == {0: 0.5, 1: 0.5}


def test_fold_long_turn_that_passes_decides_alone() -> None:
    # The same scores as a follow-up (small gap), but eight words: it decides alone.
    rows = [row(0.7, 0.1, 0.0), row(0.35, 0.31, 0.1)]
    options = OPTIONS.model_copy(update={"long_words": 8})
    assert fold(rows, THRESHOLDS, options, [5, 7])[1] == {0: 0.5, 1: 0.5}
    assert fold(rows, THRESHOLDS, options, [5, 8])[1] == {1: 1.0}
    assert fold(rows, THRESHOLDS, options.model_copy(update={"long_words": 0}), [5, 8])[1] == {
        0: 0.5,
        1: 0.5,
    }
    # A long turn below its threshold is not clear: it joins the context.
    low = [row(0.7, 0.1, 0.0), row(0.25, 0.29, 0.1)]
    assert fold(low, THRESHOLDS, options, [5, 12])[1] == {0: 0.5, 1: 0.5}


def test_fold_out_of_scope_last_turn_stands_alone() -> None:
    # 0.1 for the context route is below 0.3 - 0.14: it does not join.
    context, weights = fold([row(0.7, 0.1, 0.0), row(0.1, 0.12, 0.15)], THRESHOLDS, OPTIONS)
    assert context is None
    assert weights == {1: 1.0}


def test_fold_out_of_scope_turn_in_the_middle_leaves_the_context() -> None:
    rows = [row(0.7, 0.1, 0.0), row(0.1, 0.12, 0.15), row(0.2, 0.1, 0.1)]
    context, weights = fold(rows, THRESHOLDS, OPTIONS)
    assert context is not None
    np.testing.assert_allclose(context, [0.45, 0.1, 0.05])
    assert weights == {0: 0.5, 2: 0.5}


def test_fold_decay_weighs_the_context() -> None:
    options = OPTIONS.model_copy(update={"decay": 3.0})
    context, weights = fold([row(0.8, 0.0, 0.0), row(0.2, 0.0, 0.0)], THRESHOLDS, options)
    assert context is not None
    assert context[0] == pytest.approx(0.65)
    assert weights == {0: 0.75, 1: 0.25}


def test_fold_cue_margin_lets_a_cued_turn_join() -> None:
    # 0.1 for the context route: below 0.3 - join_margin (0.14), above 0.3 - cue_margin (0.25).
    rows = [row(0.7, 0.1, 0.0), row(0.1, 0.12, 0.15)]
    options = OPTIONS.model_copy(update={"cue_margin": 0.25})
    assert fold(rows, THRESHOLDS, options, None, [False, False])[0] is None
    context, weights = fold(rows, THRESHOLDS, options, None, [False, True])
    assert context is not None and weights == {0: 0.5, 1: 0.5}
    np.testing.assert_allclose(context, [0.4, 0.11, 0.075])
    # cues=None: no turn has one; a cue_margin below join_margin changes nothing.
    assert fold(rows, THRESHOLDS, options, None, None)[0] is None
    smaller = OPTIONS.model_copy(update={"cue_margin": 0.05})
    assert fold(rows, THRESHOLDS, smaller, None, [False, True])[0] is None


@pytest.mark.parametrize(
    "text",
    [
        "and the cheapest one?",
        "what about Saturday instead?",
        "How about tonight",
        "for two adults and a child",
        "with breakfast included",
        "can you refund it?",
        "the same room please",
        "make it two rooms",
        "which gate?",
    ],
)
def test_follow_up_cue_finds_follow_ups(text: str) -> None:
    assert follow_up_cue(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "who painted the Mona Lisa?",
        "what is the capital of Norway?",
        "how many legs does a spider have?",
        "tell me a joke",
        "why is the sky blue?",
        "",
        "42",
    ],
)
def test_follow_up_cue_leaves_self_contained_requests(text: str) -> None:
    assert follow_up_cue(text) is False


# -- the router, end to end on the fake encoder --------------------------------------------------
def test_follow_up_keeps_the_route_the_last_turn_alone_misses(
    conversation: ConversationRouter,
) -> None:
    turns = ["book a flight to paris on friday", "what about tuesday to paris instead"]
    assert conversation.route_last(turns).name is None
    match = conversation.route(turns)
    assert isinstance(match, ConversationMatch)
    assert match.name == "flights"
    assert match.context is True
    assert [t.index for t in match.turns] == [0, 1]
    assert sum(t.weight for t in match.turns) == pytest.approx(1.0)
    assert match.turns[0].route == "flights"
    assert match.turns[1].route is None
    assert match.threshold == pytest.approx(0.3)
    assert match.score >= 0.3
    assert match.utterance == "book a flight to paris"


def test_topic_switch_does_not_stick(conversation: ConversationRouter) -> None:
    turns = ["book a flight to paris", "will it rain today or is it sunny"]
    match = conversation.route(turns)
    assert match.name == "weather"
    assert match.context is False
    assert [(t.index, t.weight) for t in match.turns] == [(1, 1.0)]
    alone = conversation.route_last(turns)
    assert (match.name, match.utterance) == (alone.name, alone.utterance)
    assert match.score == pytest.approx(alone.score, abs=1e-6)


def test_switch_then_follow_up_follows_the_new_topic(conversation: ConversationRouter) -> None:
    turns = [
        "book a flight to paris",
        "find a hotel near the station",
        "one with breakfast near the station",
    ]
    assert conversation.route(turns).name == "hotels"


def test_out_of_scope_turn_is_not_pulled_into_the_context(
    conversation: ConversationRouter,
) -> None:
    turns = ["book a flight to paris", "who painted the mona lisa"]
    # No follow-up cue and far below the flights threshold: routed alone, as the last message.
    match = conversation.route(turns)
    assert (match.name, match.context, match.reason) == (None, False, "below_threshold")
    assert [t.index for t in match.turns] == [1]
    # Were every unclear turn to join (the 0.x default), it would join the context.
    joined = conversation.replace(join_margin=2.0).route(turns)
    assert joined.context is True
    assert [t.index for t in joined.turns] == [0, 1]


def test_a_follow_up_cue_lets_a_weak_turn_join(conversation: ConversationRouter) -> None:
    # The same weak turn joins with a cue ("instead") and is routed alone without one.
    with_cue = ["book a flight to paris", "paris on tuesday instead"]
    without = ["book a flight to paris", "paris on tuesday"]
    assert conversation.route_last(with_cue).name is None
    cued = conversation.route(with_cue)
    assert cued.context is True and cued.name == "flights"
    bare = conversation.route(without)
    assert bare.context is False and bare.name is None
    # With no margin for cues, the cue does not help.
    assert conversation.replace(cue_margin=0.0).route(with_cue).context is False


def test_single_turn_equals_the_router(
    conversation: ConversationRouter, router: SemanticRouter
) -> None:
    for text in ("book a flight to paris", "will it rain today", "who painted the mona lisa"):
        match = conversation.route([text])
        expected = router.route(text)
        assert (match.name, match.utterance) == (expected.name, expected.utterance)
        assert match.scores == pytest.approx(expected.scores, abs=1e-6)
        assert match.context is False


def test_assistant_and_system_turns_are_skipped(conversation: ConversationRouter) -> None:
    turns: list[Turn] = [
        ("system", "you are a helpful travel agent who can check the weather"),
        ("user", "book a flight to paris"),
        ("assistant", "will it rain today? is it sunny? the weather forecast for tomorrow"),
        {"role": "user", "content": "what about tuesday to paris instead"},
    ]
    match = conversation.route(turns)
    assert match.name == "flights"
    assert [t.index for t in match.turns] == [1, 3]


def test_window_limits_the_turns_looked_at(router: SemanticRouter) -> None:
    turns = ["book a flight to paris", "what about tuesday to paris instead"]
    alone = ConversationRouter(router, window=1).route(turns)
    assert alone.name is None and alone.context is False


# -- cost: nothing re-encoded --------------------------------------------------------------------
def test_each_new_turn_is_encoded_once(
    conversation: ConversationRouter, fake_encoder: FakeEncoder
) -> None:
    turns = [
        "book a flight to paris",
        "what about tuesday to paris instead",
        "and a window seat to paris",
        "find a hotel near the station",
    ]
    fake_encoder.reset_counts()
    for n in range(1, len(turns) + 1):
        conversation.route(turns[:n])
        assert fake_encoder.calls == n
        assert fake_encoder.encoded_texts == n
    # Routing the same conversation again encodes nothing; so do assistant turns.
    conversation.route([*turns, ("assistant", "done")])
    assert fake_encoder.encoded_texts == len(turns)
    assert conversation.cached_turns == len(turns)


def test_replace_shares_the_cache(
    conversation: ConversationRouter, fake_encoder: FakeEncoder
) -> None:
    turns = ["book a flight to paris", "what about tuesday to paris instead"]
    conversation.route(turns)
    fake_encoder.reset_counts()
    other = conversation.replace(decay=2.0)
    assert other.options.decay == 2.0 and conversation.options.decay == 1.0
    other.route(turns)
    assert fake_encoder.encoded_texts == 0


def test_cache_is_bounded(router: SemanticRouter, fake_encoder: FakeEncoder) -> None:
    conversation = ConversationRouter(router, cache_size=2)
    for text in ("book a flight", "will it rain", "a hotel room"):
        conversation.route([text])
    assert conversation.cached_turns == 2
    fake_encoder.reset_counts()
    conversation.route(["book a flight"])
    assert fake_encoder.encoded_texts == 1
    conversation.clear_cache()
    assert conversation.cached_turns == 0


def test_aroute_matches_route(conversation: ConversationRouter, fake_encoder: FakeEncoder) -> None:
    turns = ["book a flight to paris", "what about tuesday to paris instead"]
    expected = ConversationRouter(conversation.router).route(turns)
    fake_encoder.reset_counts()
    match = asyncio.run(conversation.aroute(turns))
    assert match == expected
    assert fake_encoder.encoded_texts == 2
    asyncio.run(conversation.aroute(turns))
    assert fake_encoder.encoded_texts == 2


# -- bad input and options -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("turns", "error"),
    [
        ("book a flight", QueryTypeError),
        ([], InvalidQueryError),
        (["   "], InvalidQueryError),
        ([("assistant", "hello")], InvalidQueryError),
        ([42], QueryTypeError),
        ([("user", 42)], QueryTypeError),
        (["bad \ud800 text"], InvalidQueryError),
    ],
)
def test_bad_turns_raise_our_errors(
    conversation: ConversationRouter, turns: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        conversation.route(turns)  # type: ignore[arg-type]


def test_blank_earlier_turns_are_skipped(conversation: ConversationRouter) -> None:
    match = conversation.route(["book a flight to paris", "", "what about tuesday to paris"])
    assert [t.index for t in match.turns] == [0, 2]


@pytest.mark.parametrize(
    "fields",
    [{"window": 0}, {"decay": -1.0}, {"clear_margin": 5.0}, {"nonsense": 1}, {"window": "x"}],
)
def test_bad_options_raise_configuration_error(
    router: SemanticRouter, conversation: ConversationRouter, fields: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        ConversationRouter(router, **fields)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        conversation.replace(**fields)


def test_options_are_frozen(conversation: ConversationRouter) -> None:
    with pytest.raises(ValueError):
        conversation.options.window = 3
    with pytest.raises(ConfigurationError):
        ConversationRouter(conversation.router, ConversationOptions(), window=2)


def test_user_text_roles() -> None:
    assert user_text("hi") == "hi"
    assert user_text(("Human", "hi")) == "hi"
    assert user_text(("assistant", "hi")) is None
    assert user_text({"role": "tool", "content": "x"}) is None


def test_top_routes_rank_the_context_scores(conversation: ConversationRouter) -> None:
    turns = ["book a flight to paris", "what about tuesday to paris instead"]
    match = conversation.route(turns)
    ranked = conversation.top_routes(turns, 3, apply_threshold=False)
    assert [m.name for m in ranked] == list(match.scores)[:3]
    assert ranked[0].name == "flights"
    assert ranked[0].score == pytest.approx(match.score)
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)
    passing = conversation.top_routes(turns, 3)
    assert [m.name for m in passing] == ["flights"]
    assert asyncio.run(conversation.atop_routes(turns, 1)) == passing[:1]
    assert conversation.top_routes(["who painted the mona lisa"], 3) == []
    with pytest.raises(ConfigurationError):
        conversation.top_routes(turns, 0)


def test_copies_share_router_and_cache_and_pickle_is_refused(
    conversation: ConversationRouter, fake_encoder: FakeEncoder
) -> None:
    conversation.route(["book a flight to paris"])
    fake_encoder.reset_counts()
    for other in (copy.deepcopy(conversation), copy.copy(conversation)):
        assert other is not conversation
        assert other.router is conversation.router
        assert other.options == conversation.options
        other.route(["book a flight to paris"])
    assert fake_encoder.encoded_texts == 0
    with pytest.raises(SemRouterError, match="cannot be pickled"):
        pickle.dumps(conversation)


def test_concurrent_conversations_share_one_cache(
    conversation: ConversationRouter, fake_encoder: FakeEncoder
) -> None:
    turns = [f"book a flight to paris number {i}" for i in range(8)]
    results: list[str | None] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                results.append(conversation.route([turns[i], "and tuesday to paris"]).name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == ["flights"] * 40
    # Racing threads may each encode a text once, but not once per call (80 texts routed).
    assert fake_encoder.encoded_texts < 40
    assert conversation.cached_turns == 9
    fake_encoder.reset_counts()
    for i in range(8):
        conversation.route([turns[i], "and tuesday to paris"])
    assert fake_encoder.encoded_texts == 0


def test_shared_routers_share_one_cache_that_goes_with_the_router(
    router: SemanticRouter, fake_encoder: FakeEncoder
) -> None:
    import gc
    import weakref

    first = ConversationRouter.shared(router)
    first.route(["book a flight to paris"])
    fake_encoder.reset_counts()
    other = ConversationRouter.shared(router, ConversationOptions(window=1))
    assert other.options.window == 1 and first.options.window == 3
    other.route(["book a flight to paris"])
    assert fake_encoder.encoded_texts == 0
    assert ConversationRouter.shared(router).cached_turns == 1
    # The shared cache does not keep the router alive.
    with SemanticRouter(ROUTES, encoder=fake_encoder, threshold=0.3) as temporary:
        ConversationRouter.shared(temporary).route(["will it rain today"])
        ref = weakref.ref(temporary)
    del temporary
    gc.collect()
    assert ref() is None


def test_readme_conversations_example_runs_as_printed() -> None:
    from pathlib import Path

    readme = Path(__file__).resolve().parents[3] / "README.md"
    if not readme.exists():  # pragma: no cover - CI copies README.md beside the tests
        pytest.skip("README.md not beside the tests")
    from tests.unit.core.test_readme import section_output

    output = section_output("## Conversations")
    assert output.splitlines() == ["None", "flights [(0, 0.5), (2, 0.5)]"]
