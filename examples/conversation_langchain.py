"""Conversation-aware routing with LangChain: a SemRouterBranch on an agent-style state.

A travel assistant's chat, as LangChain keeps it (``{"messages": [HumanMessage, AIMessage,
...]}``). ``SemRouterBranch`` routes such a state as a conversation: follow-ups such as "for
two adults" have no route of their own and stay on flights, a clear switch ("I'll also need a
hotel room") moves on, an off-topic question runs the default. The same branch with
``conversation=False`` routes the last message alone, for comparison. Each message is encoded
once: earlier turns' vectors are reused.

Not every follow-up is saved: "is there anything earlier in the morning?" scores clearly for
the weather on its own, so it is taken as a switch (benchmarks/results/conversation.txt: about
three follow-ups in four are right, against two in five for the last message alone).

    python examples/conversation_langchain.py
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from langchain_semrouter import SemRouterBranch
from semrouter import LocalEncoder, Route, SemanticRouter

ROUTES = [
    Route(
        "flights",
        [
            "book me a flight to Paris",
            "find flights from London to Rome next week",
            "I need a plane ticket to Tokyo",
            "are there any direct flights to Madrid on Friday?",
            "change my flight to a later departure",
            "cancel my flight reservation",
            "how many bags can I check on this airline?",
        ],
    ),
    Route(
        "hotels",
        [
            "book a hotel room in Barcelona",
            "find me a hotel near the station",
            "I need somewhere to stay for three nights",
            "reserve a double room with breakfast included",
            "does the hotel have a pool and free wifi?",
            "cancel my hotel booking",
        ],
    ),
    Route(
        "weather",
        [
            "what's the weather forecast for tomorrow?",
            "will it rain this afternoon?",
            "how hot will it be in Lisbon this weekend?",
            "do I need an umbrella today?",
            "is it going to snow tonight?",
        ],
    ),
]

CHAT = [
    "book me a flight to Paris for next Friday",
    "for two adults",
    "is there anything earlier in the morning?",
    "I'll also need a hotel room near the Louvre",
    "with breakfast, for two nights",
    "who painted the Mona Lisa?",
]


def desk(name: str) -> RunnableLambda[dict[str, Any], str]:
    return RunnableLambda(lambda state: f"[the {name} desk answers]")


def main() -> None:
    router = SemanticRouter(ROUTES, encoder=LocalEncoder())
    branches = [(name, desk(name)) for name in ("flights", "hotels", "weather")]
    branch = SemRouterBranch(*branches, desk("general"), router=router)
    last_only = SemRouterBranch(*branches, desk("general"), router=router, conversation=False)
    messages: list[BaseMessage] = []
    for text in CHAT:
        messages.append(HumanMessage(text))
        state = {"messages": messages}
        runs = RunCollectorCallbackHandler()
        answer = branch.invoke(state, {"callbacks": [runs]})
        meta = runs.traced_runs[0].child_runs[0].extra["metadata"]
        print(f"{text!r}")
        print(f"    last message alone:    {last_only.invoke(state)}")
        print(f"    with the conversation: {answer}  (turns {meta.get('semrouter_turns')})")
        messages.append(AIMessage(answer))
    router.close()


if __name__ == "__main__":
    main()
