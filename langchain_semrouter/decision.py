"""SemRouterDecisionModel: a ``BaseDecisionModel`` answered by embeddings, not by an LLM."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr

from semrouter import (
    ConfigurationError,
    ConversationRouter,
    Encoder,
    MissingDependencyError,
    QueryTypeError,
    Route,
    SemanticRouter,
)

from ._branching import default_encoder
from ._conversation import conversation_turns
from ._text import routed_text

try:
    from langchain_core.decisions import (
        BaseDecisionModel,
        Choice,
        ChoiceAnswer,
        ClassifierResponse,
        Question,
        Score,
        ScoreAnswer,
        State,
    )
except ImportError as exc:  # langchain_core.decisions came with langchain-core 1.8
    from importlib.metadata import version

    raise MissingDependencyError(
        "SemRouterDecisionModel needs langchain-core 1.8 or later (langchain_core.decisions); "
        f"installed: {version('langchain-core')}; run: pip install -U 'langchain-core>=1.8'"
    ) from exc

__all__ = ["SemRouterDecisionModel"]

_Scores = dict[str, float]


class SemRouterDecisionModel(BaseDecisionModel):
    """Answers ``Choice`` and ``Score`` questions by semantic similarity, in milliseconds.

    A drop-in ``classifier`` for ``ModelRouterMiddleware`` (and anything else that takes a
    decision model). Each label is a route: the route of that name in ``router`` when the
    router holds every label of the question, otherwise a route built from the label's
    criteria text (plus ``examples``), indexed once per distinct question and reused. The
    text compared is the state itself, the conversation of a message list or a
    ``{"messages": ...}`` state (:meth:`semrouter.ConversationRouter.shared`: a follow-up is
    answered as the request it follows; ``conversation=False`` compares the last human
    message alone), or the state as JSON. A question's ``instructions`` are not read: no model
    reads them.

    The answer's ``probabilities`` are a softmax of the route scores at ``temperature``;
    ``confidence`` is the chosen label's probability. ``Noul`` and ``Box`` questions raise
    :class:`~semrouter.ConfigurationError`.

    Args:
        router: a router whose route names are the labels of the questions it answers.
        encoder: the encoder of routers built from criteria (default: the router's encoder,
            else :class:`~semrouter.LocalEncoder`).
        examples: extra example utterances per label.
        temperature: softmax temperature over cosine scores.
        conversation: compare message lists and ``{"messages": ...}`` states as conversations.

    Example:
        >>> from langchain_core.decisions import Choice
        >>> from semrouter import FakeEncoder
        >>> model = SemRouterDecisionModel(encoder=FakeEncoder())
        >>> answer = model.invoke({
        ...     "state": "please fix this bug in my code",
        ...     "questions": {"team": Choice(
        ...         instructions="Which team?",
        ...         criteria={"billing": "invoice and payment questions",
        ...                   "engineering": "a bug in the code"})},
        ... }).choices["team"]
        >>> answer.choice
        'engineering'
    """

    model: str = "semrouter"
    router: Any = None
    encoder: Any = None
    examples: dict[str, list[str]] = Field(default_factory=dict)
    temperature: float = Field(default=0.05, gt=0.0)
    conversation: bool = True

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _routers: dict[tuple[tuple[str, tuple[str, ...]], ...], SemanticRouter] = PrivateAttr(
        default_factory=dict
    )
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _provider(self) -> str:
        return "semrouter"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """``False``: the router holds live clients."""
        return False

    # -- which router answers a question ---------------------------------------------------------
    def _labels(self, question: Question) -> dict[str, Any]:
        if isinstance(question, Choice):
            return dict(question.criteria)
        if isinstance(question, Score):
            return {str(level): text for level, text in enumerate(question.criteria)}
        raise ConfigurationError(
            f"SemRouterDecisionModel answers Choice and Score questions, not {question.type!r}"
        )

    def _own_router(self, labels: Mapping[str, Any]) -> SemanticRouter | None:
        router = self.router
        if isinstance(router, SemanticRouter) and all(label in router for label in labels):
            return router
        return None

    def _built_router(self, labels: Mapping[str, Any]) -> SemanticRouter:
        routes = [
            Route(label, [*_utterances(label, text), *self.examples.get(label, ())])
            for label, text in labels.items()
        ]
        key = tuple((route.name, route.utterances) for route in routes)
        with self._lock:
            router = self._routers.get(key)
            if router is None:
                router = SemanticRouter(routes, encoder=self._encoder())
                self._routers[key] = router
            return router

    # -- copies share the given router and encoder; the routers built from criteria are rebuilt
    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> SemRouterDecisionModel:
        memo = {} if memo is None else memo
        for shared in (self.router, self.encoder):
            if shared is not None:
                memo.setdefault(id(shared), shared)
        memo[id(self._lock)] = threading.Lock()
        memo[id(self._routers)] = {}
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        # A given router refuses pickling with its own message; built routers are rebuilt.
        state = super().__getstate__()
        private = {**(state.get("__pydantic_private__") or {}), "_routers": {}}
        private.pop("_lock", None)
        return {**state, "__pydantic_private__": private}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the routers built from question criteria (a given ``router`` stays open)."""
        with self._lock:
            routers, self._routers = list(self._routers.values()), {}
        for router in routers:
            router.close()

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            if isinstance(self.router, SemanticRouter):
                self.encoder = self.router.encoder
            else:
                self.encoder = default_encoder()
        if not isinstance(self.encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter Encoder")
        return self.encoder

    # -- answering -------------------------------------------------------------------------------
    def _classify(self, state: State, questions: dict[str, Question]) -> ClassifierResponse:
        text, turns = _state_text(state), _state_turns(state) if self.conversation else None
        answers: dict[str, Any] = {}
        for qid, question, labels, router in self._questions(questions):
            if router is None:
                router = self._built_router(labels)
            answers[qid] = self._answer(question, labels, _scores(router, text, turns))
        return ClassifierResponse(model=self.model, answers=answers)

    async def _aclassify(self, state: State, questions: dict[str, Question]) -> ClassifierResponse:
        text, turns = _state_text(state), _state_turns(state) if self.conversation else None
        answers: dict[str, Any] = {}
        for qid, question, labels, router in self._questions(questions):
            if router is None:
                router = await asyncio.to_thread(self._built_router, labels)
            scores = await _ascores(router, text, turns)
            answers[qid] = self._answer(question, labels, scores)
        return ClassifierResponse(model=self.model, answers=answers)

    def _questions(
        self, questions: dict[str, Question]
    ) -> Iterator[tuple[str, Question, Mapping[str, Any], SemanticRouter | None]]:
        """Each question with its labels and the given router when it holds them all."""
        for qid, question in questions.items():
            labels = self._labels(question)
            yield qid, question, labels, self._own_router(labels)

    def _answer(self, question: Question, labels: Mapping[str, Any], scores: _Scores) -> Any:
        # A label whose utterances were not among the nearest candidates scores -1 (farthest).
        raw = {label: scores.get(label, -1.0) for label in labels}
        top = max(raw.values())
        weights = {label: math.exp((s - top) / self.temperature) for label, s in raw.items()}
        total = sum(weights.values())
        probabilities = {label: w / total for label, w in weights.items()}
        best = max(probabilities, key=probabilities.__getitem__)
        confidence = min(1.0, max(0.0, probabilities[best]))
        if isinstance(question, Score):
            levels = {int(label): p for label, p in probabilities.items()}
            return ScoreAnswer(
                type="score",
                score=sum(level * p for level, p in levels.items()),
                legend=dict(enumerate(question.criteria)),
                probabilities=levels,
                confidence=confidence,
            )
        return ChoiceAnswer(
            type="choice", choice=best, probabilities=probabilities, confidence=confidence
        )


def _scores(router: SemanticRouter, text: str, turns: list[tuple[str, str]] | None) -> _Scores:
    """Every route's score for the message (or, with ``turns``, the conversation)."""
    limit = max(len(router), 1)
    if turns is not None:
        conversation = ConversationRouter.shared(router)
        matches = conversation.top_routes(turns, limit, apply_threshold=False)
    else:
        matches = router.top_routes(text, limit, apply_threshold=False)
    return {m.name or "": m.score for m in matches}


async def _ascores(
    router: SemanticRouter, text: str, turns: list[tuple[str, str]] | None
) -> _Scores:
    """Asynchronous :func:`_scores`."""
    limit = max(len(router), 1)
    if turns is not None:
        conversation = ConversationRouter.shared(router)
        matches = await conversation.atop_routes(turns, limit, apply_threshold=False)
    else:
        matches = await router.atop_routes(text, limit, apply_threshold=False)
    return {m.name or "": m.score for m in matches}


def _utterances(label: str, criteria: Any) -> list[str]:
    if isinstance(criteria, str) and criteria.strip():
        return [criteria]
    if isinstance(criteria, list) and criteria and all(isinstance(c, str) for c in criteria):
        return [c for c in criteria if c.strip()] or [label]
    if criteria is None:
        return [label.replace("_", " ")]
    return [json.dumps(criteria, sort_keys=True, default=str)]


def _state_turns(state: State) -> list[tuple[str, str]] | None:
    """The conversation of a message list or ``{"messages": ...}`` state with a user turn."""
    try:
        turns = conversation_turns(state)
    except QueryTypeError:
        return None
    if turns is None or not any(role == "user" and text.strip() for role, text in turns):
        return None
    return turns


def _state_text(state: State) -> str:
    try:
        return routed_text(state)
    except QueryTypeError:
        return json.dumps(state, sort_keys=True, default=str)
