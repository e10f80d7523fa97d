"""The tool index's options (one validated, frozen value) and what a ranking returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._exceptions import ConfigurationError
from .._feedback import MAX_EXAMPLES

__all__ = ["ToolMatch", "ToolOptions"]


class ToolOptions(BaseModel):
    """How a :class:`~semrouter.ToolIndex` scores tools.

    A tool's dense score is the weighted mean of its texts' cosine similarities to the request:
    ``"name: description"`` (weight 1; its best sentence when that is closer), the best
    argument (``argument_weight``), the name in words (``name_weight``) and the best example
    (``example_weight``); weights of parts a tool lacks drop out. The lexical (BM25) score of
    the tool's document is fused with it: both rescaled per request by their mean and three
    standard deviations (Qdrant's DBSF), the lexical one weighted by ``lexical_weight``. A
    request of several sentences is ranked sentence by sentence instead (``split_requests``),
    and each tool keeps its best score: a request that asks for three things finds three tools.

    The defaults were chosen on the validation splits of toolret (Seal-Tools: 4,076 tools,
    multi-tool requests that reuse the descriptions' words) and of CLINC150 read as 150 tools
    (one-tool paraphrased requests), together: ``benchmarks/results/tool_selection.txt``.

    Attributes:
        name_weight: weight of the name in words.
        argument_weight: weight of the best argument ("argument words: its description").
        example_weight: weight of the best example request.
        lexical_weight: weight of the BM25 side in the fusion; 0 ranks by meaning alone.
        split_requests: rank each sentence of a long request, keeping each tool's best.
        max_examples: examples learnt from calls kept per tool by
            :meth:`~semrouter.ToolIndex.observe` (the oldest go first; at most 50, what a
            stored route set keeps); examples given in a tool's spec are always kept.

    Example:
        >>> ToolOptions(lexical_weight=0.0).split_requests
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_weight: float = Field(default=0.3, ge=0.0, le=10.0, allow_inf_nan=False)
    argument_weight: float = Field(default=0.3, ge=0.0, le=10.0, allow_inf_nan=False)
    example_weight: float = Field(default=1.0, ge=0.0, le=10.0, allow_inf_nan=False)
    lexical_weight: float = Field(default=0.2, ge=0.0, le=10.0, allow_inf_nan=False)
    split_requests: bool = True
    max_examples: int = Field(default=20, ge=0, le=MAX_EXAMPLES)

    @classmethod
    def build(cls, options: ToolOptions | None = None, **changes: Any) -> ToolOptions:
        """Validated options (``options`` with ``changes``); a ConfigurationError otherwise."""
        base = options.model_dump() if options is not None else {}
        try:
            return cls(**{**base, **changes})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"invalid tool options: {problems}") from None


class ToolMatch(BaseModel):
    """One ranked tool: its fused score and the score of each of its parts.

    Attributes:
        name: the tool's name.
        score: the fused score that ranks it (comparable within one ranking only).
        similarity: its dense score, the weighted mean of its parts' cosine similarities
            (comparable across requests: thresholds such as ``min_score`` apply to it).
        scores: cosine similarity of each part (``"description"``, ``"name"``,
            ``"argument"``, ``"example"``; parts the tool lacks are absent) and the
            ``"lexical"`` BM25 score, for the text that gave the tool its score.
        text: that text: the request, or one of its sentences when the request was split.
        rank: 1 for the best tool returned (ranks never depend on how many are asked for).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    score: float
    similarity: float
    scores: dict[str, float] = Field(default_factory=dict)
    text: str = ""
    rank: int = 0
