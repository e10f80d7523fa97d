"""Conversation-aware routing with a LlamaIndex chat history: follow-ups keep their route.

A LlamaIndex chat engine or agent keeps its memory as ``ChatMessage`` objects. Routing the
current message alone loses a follow-up ("and on Sunday?"); routing it with the history
(:class:`semrouter.ConversationRouter`) keeps it on the weather, while a clear switch moves on.
Each message is encoded once: earlier turns' vectors are reused.

Then the same for an agent's tools: ``SemRouterToolRetriever(memory=...)`` reads the chat
memory that the agent is given too (``agent.run(msg, memory=memory)``), since agents hand a
tool retriever the current message alone.

    python examples/conversation_llama_index.py
"""

from __future__ import annotations

from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory
from llama_index.core.tools import FunctionTool

from llama_index_semrouter import SemRouterToolRetriever
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

    def get_forecast(city: str, day: str) -> str:
        """The weather forecast for a city on a day: rain, sun, temperature."""
        return "sunny"

    def move_appointment(appointment: str, day: str) -> str:
        """Move a meeting or appointment in the calendar to another day."""
        return "moved"

    tools = [FunctionTool.from_defaults(get_forecast), FunctionTool.from_defaults(move_appointment)]
    memory = Memory.from_defaults(session_id="example")
    retriever = SemRouterToolRetriever.from_defaults(tools, memory=memory, top_k=1)
    alone = SemRouterToolRetriever(tools, retriever.index, top_k=1)
    print("\ntools for the agent's current message:")
    for text in [
        "will it rain in Paris tomorrow?",
        "and on Sunday?",
        "move my dentist appointment to Friday",
        "the afternoon one",
    ]:
        memory.put(ChatMessage(role="user", content=text))  # as the agent does before its step
        with_memory = [t.metadata.name for t in retriever.retrieve(text)]
        print(
            f"  {text!r}: alone {[t.metadata.name for t in alone.retrieve(text)]}, "
            f"with the memory {with_memory}"
        )
        memory.put(ChatMessage(role="assistant", content="Done."))
    retriever.close()


if __name__ == "__main__":
    main()
