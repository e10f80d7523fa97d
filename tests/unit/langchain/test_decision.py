"""SemRouterDecisionModel: Choice and Score answers, router-backed, ModelRouterMiddleware."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import pytest

pytest.importorskip("langchain_core.decisions", reason="langchain-core < 1.8 (lowest pins)")

from langchain_core.decisions import BaseDecisionModel, Choice, Noul, Score
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from langchain_semrouter import SemRouterDecisionModel
from semrouter import ConfigurationError, FakeEncoder, SemanticRouter

TEAM = Choice(
    instructions="Which team should handle this request?",
    criteria={
        "billing": "invoice payment refund subscription",
        "engineering": ["bug in the code", "the app crashes"],
        "sales": "pricing and buying more seats",
    },
)


def test_choice_answer(fake_encoder: FakeEncoder) -> None:
    model = SemRouterDecisionModel(encoder=fake_encoder)
    assert isinstance(model, BaseDecisionModel)
    response = model.invoke({"state": "the app crashes on start", "questions": {"team": TEAM}})
    answer = response.choices["team"]
    assert answer.choice == "engineering"
    assert set(answer.probabilities) == {"billing", "engineering", "sales"}
    assert sum(answer.probabilities.values()) == pytest.approx(1.0)
    assert answer.confidence == pytest.approx(answer.probabilities["engineering"])
    assert answer.confidence > 0.9
    assert response.model == "semrouter"


def test_question_routers_are_built_once(fake_encoder: FakeEncoder) -> None:
    model = SemRouterDecisionModel(encoder=fake_encoder)
    model.invoke({"state": "refund my invoice", "questions": {"team": TEAM}})
    fake_encoder.reset_counts()
    state = [HumanMessage("first"), AIMessage("ok"), HumanMessage("refund my invoice")]
    answer = model.invoke({"state": state, "questions": {"team": TEAM}}).choices["team"]
    assert answer.choice == "billing"
    # Nothing of the question's router re-encoded: only the conversation's two user turns.
    assert fake_encoder.encoded_texts == 2


def test_router_backed(make_router: Any) -> None:
    router = make_router()  # routes "weather" and "math"
    model = SemRouterDecisionModel(router=router)
    question = Choice(instructions="topic?", criteria={"weather": None, "math": None})
    answer = model.invoke({"state": "will it rain tomorrow", "questions": {"q": question}})
    assert answer.choices["q"].choice == "weather"
    assert len(model._routers) == 0  # answered by the given router itself


async def test_score_and_async(fake_encoder: FakeEncoder) -> None:
    model = SemRouterDecisionModel(encoder=fake_encoder)
    frustration = Score(
        instructions="How frustrated is the customer?",
        criteria=["calm and happy", "a bit annoyed", "furious angry shouting"],
    )
    response = await model.ainvoke(
        {
            "state": {"messages": [HumanMessage("I am furious and angry")]},
            "questions": {"f": frustration},
        }
    )
    answer = response.scores["f"]
    assert answer.score > 1.5
    assert answer.legend[0] == "calm and happy"
    assert sum(answer.probabilities.values()) == pytest.approx(1.0)


def test_noul_is_refused(fake_encoder: FakeEncoder) -> None:
    model = SemRouterDecisionModel(encoder=fake_encoder)
    with pytest.raises(ConfigurationError, match="Choice and Score"):
        model.invoke({"state": "x", "questions": {"n": Noul(instructions="is it urgent?")}})


def test_model_router_middleware(fake_encoder: FakeEncoder) -> None:
    from langchain.agents import create_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the middleware is beta
        from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware

        fast = GenericFakeChatModel(messages=itertools.cycle([AIMessage("fast answer")]))
        deep = GenericFakeChatModel(messages=itertools.cycle([AIMessage("deep answer")]))
        middleware = ModelRouterMiddleware(
            choices={
                "fast": ModelChoice(model=fast, criteria="short greeting small talk"),
                "deep": ModelChoice(model=deep, criteria="prove a hard math theorem step by step"),
            },
            instructions="Pick the cheapest model that can do the task.",
            classifier=SemRouterDecisionModel(encoder=fake_encoder),
        )
    agent = create_agent(fast, middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("prove this math theorem")]})
    assert result["messages"][-1].content == "deep answer"
    assert result["model_route"].choice == "deep"


def test_unknown_labels_fall_back_to_criteria(make_router: Any) -> None:
    router: SemanticRouter = make_router()
    model = SemRouterDecisionModel(router=router)
    answer = model.invoke({"state": "refund my invoice", "questions": {"team": TEAM}})
    assert answer.choices["team"].choice == "billing"
    assert len(model._routers) == 1
