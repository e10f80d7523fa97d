"""SemRouterDecisionModel: langchain-core's BaseDecisionModel answered by embeddings.

Here it is the classifier of ModelRouterMiddleware: the agent picks a cheap or a strong model
per task from the task's meaning, with no LLM classification call. Fake chat models stand in
for the real ones, so this runs offline as it stands.

    python examples/langchain_decision.py
"""

from __future__ import annotations

import itertools
import warnings

from semrouter import LocalEncoder, MissingDependencyError

try:  # first: below langchain-core 1.8 the decision model says which version it needs
    from langchain_semrouter import SemRouterDecisionModel
except MissingDependencyError as exc:
    raise SystemExit(f"examples/langchain_decision.py: {exc}") from None

from langchain.agents import create_agent
from langchain_core.decisions import Choice
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage


def main() -> None:
    classifier = SemRouterDecisionModel(encoder=LocalEncoder())

    answer = classifier.invoke(
        {
            "state": "The checkout page throws a 500 error since this morning",
            "questions": {
                "team": Choice(
                    instructions="Which team should handle this ticket?",
                    criteria={
                        "billing": "payments, invoices, refunds, subscriptions",
                        "engineering": "bugs, errors, outages, crashes",
                        "sales": "pricing, quotes, buying more seats",
                    },
                )
            },
        }
    ).choices["team"]
    probabilities = {k: round(v, 3) for k, v in answer.probabilities.items()}
    print(f"Choice: {answer.choice} (confidence {answer.confidence:.2f}) {probabilities}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ModelRouterMiddleware is beta in langchain 1.x
        from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware

        small = GenericFakeChatModel(messages=itertools.cycle([AIMessage("[small model] Hi!")]))
        large = GenericFakeChatModel(
            messages=itertools.cycle([AIMessage("[large model] Here is the proof...")])
        )
        router = ModelRouterMiddleware(
            choices={
                "small": ModelChoice(model=small, criteria="greetings, small talk, simple facts"),
                "large": ModelChoice(
                    model=large, criteria="hard reasoning, mathematical proofs, long analysis"
                ),
            },
            instructions="Choose the least costly model suited to the task.",
            classifier=classifier,
        )
    agent = create_agent(small, middleware=[router])
    for task in ["hello, how are you today?", "prove that there are infinitely many primes"]:
        result = agent.invoke({"messages": [HumanMessage(task)]})
        route = result["model_route"]
        print(
            f"{task!r:48} -> {route.choice:<5} ({route.confidence:.2f}) "
            f"{result['messages'][-1].content!r}"
        )


if __name__ == "__main__":
    main()
