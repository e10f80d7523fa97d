"""How a tool is represented for ranking: its name in words, its description and sentences, its
arguments and its examples, each a separate text with its own kind.

Every adapter turns its framework's tool into a :class:`ToolSpec` and nothing else: the
representation has one home, so the LangChain selector and the LlamaIndex retriever index the
same tool the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._exceptions import ConfigurationError

__all__ = ["TextKind", "ToolSpec", "name_words", "sentences"]

#: What a tool text is: the name in words, ``"name words: description"``, one sentence of a
#: description of several, one argument (``"arg words: arg description"``), or an example request.
TextKind = Literal["name", "description", "sentence", "argument", "example"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s_\-.:/]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def name_words(name: str) -> str:
    """A tool name as lower-case words: ``snake_case``, ``kebab-case`` and ``CamelCase`` alike.

    Example:
        >>> [name_words(n) for n in ("get_weather", "send-email", "FinanceTool", "getHTTPStatus")]
        ['get weather', 'send email', 'finance tool', 'get http status']
    """
    words = [part for chunk in _SEPARATORS.split(name) for part in _CAMEL.split(chunk)]
    return " ".join(word.lower() for word in words if word) or name


def sentences(text: str) -> list[str]:
    """The sentences of a description (split after ``.``, ``!`` or ``?`` before a capital).

    Example:
        >>> sentences("Get the weather. Works for any city! Returns JSON")
        ['Get the weather.', 'Works for any city!', 'Returns JSON']
    """
    return [part.strip() for part in _SENTENCE.split(text.strip()) if part.strip()]


class ToolSpec(BaseModel):
    """One tool as the tool index sees it (validated, frozen).

    Attributes:
        name: the tool's name, as the model calls it.
        description: what the tool does.
        arguments: argument name -> its description ("" when the schema gives none).
        examples: requests that this tool answers.

    Example:
        >>> spec = ToolSpec(name="get_weather", description="Current weather for a city.",
        ...                 arguments={"city": "The city name"})
        >>> spec.texts()  # doctest: +NORMALIZE_WHITESPACE
        [('name', 'get weather'), ('description', 'get weather: Current weather for a city.'),
         ('argument', 'city: The city name')]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    arguments: dict[str, str] = Field(default_factory=dict)
    examples: tuple[str, ...] = ()

    @field_validator("examples", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("examples must be a list of strings, not one string")
        return value

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
        examples: Iterable[str] = (),
    ) -> ToolSpec:
        """A spec from a JSON-schema ``parameters`` object (OpenAI / MCP function shape).

        Example:
            >>> ToolSpec.from_schema("getMovie", "Find a movie.",
            ...     {"type": "object", "properties": {"movieTitle": {"type": "string"}}}).arguments
            {'movieTitle': ''}
        """
        return cls(
            name=name,
            description=(description or "").strip(),
            arguments=schema_arguments(parameters),
            examples=tuple(e for e in examples if isinstance(e, str) and e.strip()),
        )

    def with_examples(self, examples: Iterable[str]) -> ToolSpec:
        """This spec with ``examples`` added (duplicates dropped)."""
        merged = tuple(dict.fromkeys([*self.examples, *(e for e in examples if e.strip())]))
        return self if merged == self.examples else self.model_copy(update={"examples": merged})

    def texts(self) -> list[tuple[TextKind, str]]:
        """The texts this tool is indexed by, each with its kind (no text twice)."""
        words = name_words(self.name)
        description = " ".join(self.description.split())
        out: list[tuple[TextKind, str]] = [("name", words)]
        if description:
            out.append(("description", f"{words}: {description}"))
            parts = sentences(description)
            if len(parts) > 1:
                out += [("sentence", part) for part in parts]
        for argument, about in self.arguments.items():
            about = " ".join(about.split())
            out.append(("argument", f"{name_words(argument)}: {about}" if about else ""))
        out += [("example", example) for example in self.examples]
        seen: set[str] = set()
        unique: list[tuple[TextKind, str]] = []
        for kind, text in out:
            if text and text not in seen:
                seen.add(text)
                unique.append((kind, text))
        return unique

    def document(self) -> str:
        """The one text the lexical (BM25) side matches: name words, description, arguments."""
        parts = [name_words(self.name), self.description]
        parts += [f"{name_words(a)} {about}" for a, about in self.arguments.items()]
        return " ".join(" ".join(parts).split())


def schema_arguments(parameters: Mapping[str, Any] | None) -> dict[str, str]:
    """Argument name -> description from a JSON-schema object (``properties``), or a flat
    ``{name: schema}`` mapping as LangChain's ``tool.args`` gives it."""
    if not parameters:
        return {}
    if not isinstance(parameters, Mapping):
        raise ConfigurationError("parameters must be a JSON-schema object (a mapping)")
    properties = parameters.get("properties", parameters)
    if not isinstance(properties, Mapping):
        return {}
    out: dict[str, str] = {}
    for name, schema in properties.items():
        if not isinstance(name, str) or name in ("type", "required", "title"):
            continue
        about = schema.get("description", "") if isinstance(schema, Mapping) else ""
        out[name] = about if isinstance(about, str) else ""
    return out
