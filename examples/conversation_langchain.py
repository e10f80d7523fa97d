"""Conversation-aware routing with LangChain messages: follow-ups keep their route.

A travel assistant's chat, as LangChain keeps it (a list of ``HumanMessage`` / ``AIMessage``).
Each new user message is routed twice: alone (what routing the last message does) and with
the conversation (:class:`semrouter.ConversationRouter`). Follow-ups such as "what about
Saturday instead?" have no route of their own; with the conversation they stay on flights,
while a clear switch ("I'll also need a hotel room") moves on and an off-topic question matches
nothing. Each message is encoded once: earlier turns' vectors are reused.

Not every follow-up is saved: "is there anything earlier in the morning?" scores clearly for
the weather on its own, so it is taken as a switch (benchmarks/results/conversation.txt: about
two follow-ups in three are right, against one in three for the last message alone).

    python examples/conversation_langchain.py
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from semrouter import ConversationRouter, LocalEncoder, Route, SemanticRouter

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


def main() -> None:
    router = SemanticRouter(ROUTES, encoder=LocalEncoder())
    conversation = ConversationRouter(router)
    messages: list[BaseMessage] = []
    for text in CHAT:
        messages.append(HumanMessage(text))
        turns = [(m.type, m.text) for m in messages]  # ("human", ...) turns are routed
        alone = router.route(text)
        match = conversation.route(turns)
        counted = ", ".join(f"#{t.index} x{t.weight:.2f}" for t in match.turns)
        print(f"{text!r}")
        print(f"    last message alone: {alone.name}")
        print(
            f"    with the conversation: {match.name}  (score {match.score:.2f}; turns {counted})"
        )
        messages.append(AIMessage(f"[the {match.name or 'fallback'} agent answers]"))
    router.close()


if __name__ == "__main__":
    main()
