"""Which tools the agent called for the user's request: what learning from calls learns from."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from semrouter import SemRouterError, ToolIndex

__all__ = ["CallLearner", "turn_calls"]

logger = logging.getLogger("semrouter")
#: (request, tool) pairs a learner remembers having kept (so a turn is not learnt twice).
_RECORDED_KEPT = 4096


def turn_calls(query: Any) -> tuple[str, list[str]] | None:
    """The last human message's text and the tools called since it that ran: each call that a
    tool message answered without an error (a refused call, or one whose tool failed, teaches
    nothing). ``None`` for a str or a list with no human message.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
        >>> turn_calls([
        ...     HumanMessage("weather in Oslo?"),
        ...     AIMessage("", tool_calls=[{"name": "get_weather", "args": {}, "id": "1"}]),
        ...     ToolMessage("rain", tool_call_id="1"),
        ... ])
        ('weather in Oslo?', ['get_weather'])
    """
    messages = _messages(query)
    if not messages:
        return None
    start = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)),
        None,
    )
    if start is None:
        return None
    turn = messages[start + 1 :]
    answered = {m.tool_call_id: m.status != "error" for m in turn if isinstance(m, ToolMessage)}
    names: list[str] = []
    for message in turn:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                name = call.get("name")
                if answered.get(call.get("id") or "", False) and name and name not in names:
                    names.append(name)
    return messages[start].text, names


def _messages(query: Any) -> list[BaseMessage]:
    if isinstance(query, Mapping):
        query = query.get("messages")
    if isinstance(query, (str, bytes)) or not isinstance(query, Sequence):
        return []
    return [m for m in query if isinstance(m, BaseMessage)]


class CallLearner:
    """Keeps the requests that led to tool calls as examples of those tools in a
    :class:`~semrouter.ToolIndex` (stored with the tools), each ``(request, tool)`` once."""

    def __init__(self, index: ToolIndex) -> None:
        self.index = index
        self._recorded: OrderedDict[tuple[str, str], None] = OrderedDict()

    def copy(self) -> CallLearner:
        clone = CallLearner(self.index)
        clone._recorded = OrderedDict(self._recorded)
        return clone

    def pending(self, query: Any) -> bool:
        """Whether ``query`` holds tool calls not learnt from yet (no store is read)."""
        found = turn_calls(query)
        if not found or not found[1]:
            return False
        text = found[0].strip()
        return any((text, name) not in self._recorded for name in found[1])

    def record(self, text: str, names: Sequence[str]) -> int:
        """Keep ``text`` as an example of each tool in ``names``, with the request's vector
        from the index's request cache (a ranked request is not encoded again)."""
        names = [n for n in names if n in self.index and (text, n) not in self._recorded]
        if not text or not names:
            return 0
        added = self.index.observe_many([text] * len(names), names)  # vector: request cache
        for name in names:
            self._recorded[(text, name)] = None
        while len(self._recorded) > _RECORDED_KEPT:
            self._recorded.popitem(last=False)
        return added

    def record_turn(self, query: Any) -> int:
        """Learn from the calls :func:`turn_calls` finds in ``query``."""
        found = turn_calls(query)
        return 0 if found is None else self.record(found[0].strip(), found[1])

    def learn(self, query: Any) -> None:
        """:meth:`record_turn` that never fails a selection (a read-only folder, a server that
        is down: the agent goes on, the example is not kept)."""
        try:
            self.record_turn(query)
        except SemRouterError as exc:
            logger.warning("could not learn from the agent's tool calls: %s", exc)
