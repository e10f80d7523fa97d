"""Helpers shared by the LangChain adapter tests (fixtures live in conftest.py)."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.tracers.schemas import Run

from semrouter import Route

#: Routes that FakeEncoder (a bag of words) separates well.
ROUTES = [
    Route(
        "weather", ["weather forecast today", "will it rain tomorrow", "sunny or cloudy weather"]
    ),
    Route("math", ["calculate two plus two", "solve this math equation", "sum of numbers"]),
]


def fake_chain(answer: str, *, template: str = "{question}") -> Runnable[Any, str]:
    """prompt | fake chat model | parser; the model streams ``answer`` word by word."""
    model = GenericFakeChatModel(messages=itertools.cycle([answer]))
    prompt = ChatPromptTemplate.from_messages([("human", template)])
    return prompt | model | StrOutputParser()


def collector() -> RunCollectorCallbackHandler:
    return RunCollectorCallbackHandler()


def shape(run: Run) -> tuple[Any, ...]:
    """A run tree without ids, times and tags; ``RunnableBranch`` condition runs left out
    (a semantic branch has no per-branch predicate to trace)."""
    children = [
        child
        for child in sorted(run.child_runs, key=lambda r: r.dotted_order or "")
        if not any(tag.startswith("condition:") for tag in child.tags or [])
    ]
    return (run.run_type, tuple((c.name, shape(c)) for c in children))
