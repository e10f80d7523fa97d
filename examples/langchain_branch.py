"""SemRouterBranch: route a question to the right chain by meaning, a drop-in for RunnableBranch.

The classic LangChain routing example (LangChain / Anthropic / general questions), with the
LLM classifier step replaced by semrouter: no LLM call to pick the branch, a few milliseconds.
Fake chat models stand in for real ones so this runs offline as it stands.

    python examples/langchain_branch.py
"""

from __future__ import annotations

import itertools
import time

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from langchain_semrouter import SemRouterBranch
from semrouter import LocalEncoder, Route, SemanticRouter

ROUTES = [
    Route(
        "langchain",
        [
            "how do I use LangChain",
            "what is a runnable in LangChain",
            "how to build a chain with LCEL",
            "LangChain agents, tools and prompts",
        ],
    ),
    Route(
        "anthropic",
        [
            "what is Anthropic",
            "how do I call Claude",
            "tell me about Anthropic's models",
            "which Claude model should I use",
        ],
    ),
]
QUESTIONS = [
    "How do I compose two chains with LangChain expression language?",
    "Can Claude read PDFs?",
    "What is the boiling point of water?",
]


def chain(persona: str, answer: str):  # type: ignore[no-untyped-def]
    prompt = ChatPromptTemplate.from_messages(
        [("system", f"You are {persona}."), ("human", "{question}")]
    )
    model = GenericFakeChatModel(messages=itertools.cycle([answer]))
    return prompt | model | StrOutputParser()


def main() -> None:
    router = SemanticRouter(ROUTES, encoder=LocalEncoder(), aggregation="max")
    branch = SemRouterBranch(
        ("langchain", chain("a LangChain expert", "Use the | operator to compose runnables.")),
        ("anthropic", chain("an Anthropic expert", "Claude reads PDFs through the Files API.")),
        chain("a helpful assistant", "Water boils at 100 °C at sea level."),
        router=router,
        route_on="question",
    )

    print("invoke (the child run's tag and metadata say which route and why):")
    for question in QUESTIONS:
        runs = RunCollectorCallbackHandler()
        start = time.perf_counter()
        answer = branch.invoke({"question": question}, {"callbacks": [runs]})
        elapsed = (time.perf_counter() - start) * 1000
        child = runs.traced_runs[0].child_runs[0]
        meta = child.extra["metadata"]
        print(f"  {question!r}")
        print(
            f"    -> {child.tags[0]:<16} score={meta['semrouter_score']:.2f} "
            f"(whole call {elapsed:.1f} ms)  {answer!r}"
        )

    print("\nbatch (one routing call for the whole batch):")
    for answer in branch.batch([{"question": q} for q in QUESTIONS]):
        print(f"  {answer!r}")

    print("\nstream (the chosen branch's chunks, as they come):")
    print("  " + " | ".join(branch.stream({"question": QUESTIONS[1]})))

    print("\ngraph:")
    print(branch.get_graph().draw_mermaid())
    router.close()


if __name__ == "__main__":
    main()
