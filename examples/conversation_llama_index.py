"""Conversation-aware routing with a LlamaIndex chat history: follow-ups keep their route.

A LlamaIndex chat engine or agent keeps its memory as ``ChatMessage`` objects. Routing the
current message alone loses a follow-up ("and on Sunday?"); routing it with the history
(:class:`semrouter.ConversationRouter`) keeps it on the weather, while a clear switch moves on.
Each message is encoded once: earlier turns' vectors are reused.

    python examples/conversation_llama_index.py
"""

from __future__ import annotations

from llama_index.core.llms import ChatMessage

from semrouter import ConversationRouter, LocalEncoder, Route, SemanticRouter

ROUTES = [
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
    Route(
        "music",
        [
            "play some jazz",
            "put on my workout playlist",
            "skip this song",
            "turn the music up",
            "pause the music",
        ],
    ),
    Route(
        "calendar",
        [
            "what's on my calendar tomorrow?",
            "schedule a meeting with Sarah on Thursday at 3",
            "move my dentist appointment to next week",
            "cancel my 10 o'clock meeting",
            "am I free on Friday afternoon?",
            "when is my next appointment?",
        ],
    ),
]

CHAT = [
    "what's the weather forecast for London tomorrow?",
    "and on Sunday?",
    "when is my next appointment?",
    "move it to Monday",
    "play some jazz",
]


def main() -> None:
    router = SemanticRouter(ROUTES, encoder=LocalEncoder())
    conversation = ConversationRouter(router)
    history: list[ChatMessage] = []
    for text in CHAT:
        history.append(ChatMessage(role="user", content=text))
        turns = [(str(m.role.value), m.content or "") for m in history]
        alone = router.route(text)
        match = conversation.route(turns)
        counted = ", ".join(f"#{t.index} x{t.weight:.2f}" for t in match.turns)
        print(f"{text!r}")
        print(f"    current message alone: {alone.name}")
        print(f"    with the history: {match.name}  (score {match.score:.2f}; turns {counted})")
        history.append(ChatMessage(role="assistant", content=f"[{match.name} answer]"))
    router.close()


if __name__ == "__main__":
    main()
