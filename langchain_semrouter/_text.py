"""Which text of a LangChain input gets routed: a str, a dict key, the last human message."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, Union

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue

from semrouter import QueryTypeError

__all__ = ["RouteOn", "last_human_text", "routed_text"]

#: How to find the routed text in an input: ``None`` (automatic), a dict key, or a callable.
RouteOn: TypeAlias = Union[str, Callable[[Any], str], None]  # noqa: UP007 - runtime alias


def last_human_text(messages: Sequence[Any]) -> str | None:
    """The text of the last human message in ``messages``, or ``None`` when there is none.

    Accepts message objects and the ``("human", "...")`` / ``{"role": "user", ...}`` shapes.
    """
    for message in reversed(list(messages)):
        if isinstance(message, HumanMessage):
            return message.text
        if isinstance(message, BaseMessage):
            continue
        if isinstance(message, (tuple, list)) and len(message) == 2:
            role, content = message
            if role in ("human", "user") and isinstance(content, str):
                return content
        elif (
            isinstance(message, Mapping)
            and message.get("role") in ("human", "user")
            and isinstance(message.get("content"), str)
        ):
            return str(message["content"])
    return None


def routed_text(value: Any, route_on: RouteOn = None) -> str:
    """Extract the text to route from a runnable's input.

    Args:
        value: the input: a str, a message or message list, a ``PromptValue``, or a dict.
        route_on: ``None`` to pick automatically (a str as is, the last human message of
            messages, a dict's ``"messages"`` or its only str value), a key of a dict input,
            or a callable.

    Raises:
        QueryTypeError: when no text can be found.
    """
    if callable(route_on):
        text = route_on(value)
        if not isinstance(text, str):
            raise QueryTypeError(f"route_on returned {type(text).__name__}, expected str")
        return text
    if route_on is not None:
        if not isinstance(value, Mapping):
            raise QueryTypeError(
                f"route_on={route_on!r} needs a dict input, got {type(value).__name__}"
            )
        if route_on not in value:
            raise QueryTypeError(f"the input has no key {route_on!r}; keys: {sorted(value)}")
        return routed_text(value[route_on])
    if isinstance(value, str):
        return value
    if isinstance(value, PromptValue):
        value = value.to_messages()
    if isinstance(value, BaseMessage):
        return value.text
    if isinstance(value, Mapping):
        if "messages" in value:
            return routed_text(value["messages"])
        strings = [item for item in value.values() if isinstance(item, str)]
        if len(strings) == 1:
            return strings[0]
        raise QueryTypeError(
            "cannot tell which text of a dict input to route; pass route_on='<key>' "
            f"(keys: {sorted(map(str, value))})"
        )
    if isinstance(value, Sequence):
        found = last_human_text(value)
        if found is None:
            raise QueryTypeError("the message list holds no human message to route on")
        return found
    raise QueryTypeError(
        f"cannot route an input of type {type(value).__name__}; pass route_on=<callable>"
    )
