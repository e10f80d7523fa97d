"""LlamaIndex chat history as semrouter turns.

:func:`chat_turns` turns a list of ``ChatMessage`` (what chat engines and agents keep as
memory), optionally followed by the current query, into the ``(role, text)`` pairs that
:class:`semrouter.ConversationRouter` routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.schema import QueryBundle

from semrouter import ConversationMatch, ConversationRouter, QueryTypeError

__all__ = ["achat_route", "chat_route", "chat_turns", "message_turn"]

#: LlamaIndex roles -> the roles semrouter knows (``user`` turns are routed).
_ROLES = {"chatbot": "assistant", "model": "assistant", "developer": "system", "function": "tool"}


def message_turn(message: Any) -> tuple[str, str]:
    """One ``ChatMessage`` (or ``{"role", "content"}`` mapping) as a ``(role, text)`` pair.

    Only the text of a message counts (its text blocks; images and tool calls are left out).

    Raises:
        QueryTypeError: for anything else.
    """
    if isinstance(message, ChatMessage):
        role = str(message.role.value)
        return _ROLES.get(role, role), message.content or ""
    if isinstance(message, Mapping):
        given, text = message.get("role"), message.get("content")
        if isinstance(given, str) and isinstance(text, str):
            return _ROLES.get(given, given), text
    raise QueryTypeError(
        f"cannot read a chat message from {type(message).__name__}: expected a ChatMessage"
    )


def chat_turns(
    history: Sequence[Any], query: str | QueryBundle | None = None
) -> list[tuple[str, str]]:
    """The turns of ``history`` (oldest first), then ``query`` as the last user turn if given.

    A ``query`` equal to the last message of ``history`` (a user message) is not added twice:
    memories often hold the current message already.

    Example:
        >>> from llama_index.core.llms import ChatMessage
        >>> chat_turns([ChatMessage(role="user", content="book a flight")], "and a hotel?")
        [('user', 'book a flight'), ('user', 'and a hotel?')]
    """
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise QueryTypeError("chat history must be a list of ChatMessage")
    turns = [message_turn(message) for message in history]
    if isinstance(query, QueryBundle):
        query = query.query_str
    if query is not None:
        if not isinstance(query, str):
            raise QueryTypeError(f"the query must be a str, got {type(query).__name__}")
        if turns[-1:] != [("user", query)]:
            turns.append(("user", query))
    return turns


def chat_route(
    router: ConversationRouter,
    history: Sequence[Any],
    query: str | QueryBundle | None = None,
) -> ConversationMatch:
    """Route a LlamaIndex chat (see :func:`chat_turns`) with ``router``."""
    return router.route(chat_turns(history, query))


async def achat_route(
    router: ConversationRouter,
    history: Sequence[Any],
    query: str | QueryBundle | None = None,
) -> ConversationMatch:
    """Asynchronous :func:`chat_route`."""
    return await router.aroute(chat_turns(history, query))
