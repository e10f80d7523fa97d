"""LangChain conversations as semrouter turns: message lists, ``{"messages": ...}`` state.

:func:`conversation_turns` turns what a chain or an agent holds (a list of ``BaseMessage``, a
``PromptValue``, an agent's ``{"messages": [...]}`` state, or the ``("human", "...")`` /
``{"role": "user", ...}`` shorthands) into the ``(role, text)`` pairs that
:class:`semrouter.ConversationRouter` routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, ChatMessage
from langchain_core.prompt_values import PromptValue

from semrouter import ConversationMatch, ConversationRouter, QueryTypeError

__all__ = ["aroute_conversation", "conversation_turns", "message_turn", "route_conversation"]

#: LangChain message types -> the roles semrouter knows (``user`` turns are routed).
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def message_turn(message: Any) -> tuple[str, str]:
    """One message as a ``(role, text)`` pair.

    Accepts a ``BaseMessage`` (its text blocks joined, images and tool calls left out), a
    ``(role, content)`` pair and a ``{"role": ..., "content": ...}`` mapping.

    Raises:
        QueryTypeError: for anything else.
    """
    if isinstance(message, BaseMessage):
        role = message.role if isinstance(message, ChatMessage) else message.type
        return _ROLES.get(role, role), message.text
    if isinstance(message, (tuple, list)) and len(message) == 2:
        role, content = message
        if isinstance(role, str) and isinstance(content, str):
            return _ROLES.get(role, role), content
    if isinstance(message, Mapping):
        given, text = message.get("role"), message.get("content")
        if isinstance(given, str) and isinstance(text, str):
            return _ROLES.get(given, given), text
    raise QueryTypeError(
        f"cannot read a chat message from {type(message).__name__}: expected a BaseMessage, "
        "a (role, content) pair or a {'role', 'content'} mapping"
    )


def conversation_turns(value: Any) -> list[tuple[str, str]] | None:
    """The turns of a LangChain input that holds a conversation, or ``None`` when it holds none.

    A conversation is a message list, a ``PromptValue`` or a mapping with a ``"messages"``
    list (an agent's or a graph's state). A str, a single message or another mapping is not
    one (``None``): route it as one text.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> conversation_turns({"messages": [HumanMessage("book a flight"), AIMessage("When?")]})
        [('user', 'book a flight'), ('assistant', 'When?')]
    """
    if isinstance(value, PromptValue):
        value = value.to_messages()
    if isinstance(value, Mapping):
        if "messages" not in value:
            return None
        value = value["messages"]
    if isinstance(value, (str, bytes, BaseMessage)) or not isinstance(value, Sequence):
        return None
    return [message_turn(message) for message in value]


def route_conversation(router: ConversationRouter, value: Any) -> ConversationMatch:
    """Route a LangChain conversation (see :func:`conversation_turns`) with ``router``.

    Raises:
        QueryTypeError: when ``value`` holds no conversation.
    """
    return router.route(_turns(value))


async def aroute_conversation(router: ConversationRouter, value: Any) -> ConversationMatch:
    """Asynchronous :func:`route_conversation`."""
    return await router.aroute(_turns(value))


def _turns(value: Any) -> list[tuple[str, str]]:
    turns = conversation_turns(value)
    if turns is None:
        raise QueryTypeError(
            f"a {type(value).__name__} holds no conversation: pass a message list, "
            "a PromptValue or a {'messages': [...]} state"
        )
    return turns
