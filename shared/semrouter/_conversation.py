"""Conversation-aware routing: a follow-up turn keeps the route its conversation is on.

Routing the last message alone fails on follow-ups ("book a flight to Paris" -> flights, then
"what about Tuesday?" -> nothing). :class:`ConversationRouter` routes a list of turns instead:

1. Each user turn is encoded once and its vector cached by text, so earlier turns are never
   encoded again (at most one encoder call per route, for the turns not seen before).
2. The last ``window`` user turns are scored in one batched query (``route_vectors``).
3. The turns are folded, oldest first, into a context score per route:

   - a *clear* turn starts a new context and decides alone, so a topic switch does not stick:
     its best score is ``clear_margin`` above that route's threshold and ``switch_gap`` above
     its own score for the context's route; or it is long (``long_words`` words or more: long
     turns are rarely elliptical) and passes its threshold;
   - an unclear turn joins the context only when it looks like a follow-up, not a
     self-contained off-topic request: it scores at least the context route's threshold minus
     ``join_margin`` for that route, or it carries a follow-up cue (:func:`follow_up_cue`: it
     opens with "and", "what about", a preposition..., or refers back with "it", "that",
     "one"...) and scores at least that threshold minus ``cue_margin``. It then joins:
     ``context = (scores + decay * context) / (1 + decay)``;
   - any other turn is routed alone, as the last message alone would be, and leaves the
     context as it was: an off-topic question ("who painted the Mona Lisa?") after a flight
     booking scores far below the flights threshold and has no cue, so it abstains.

4. The best context score is compared with that route's threshold, as ``route()`` does.

The defaults were chosen on the validation half of ``benchmarks/data/conversations.jsonl``
with the local encoder and the router's default (learnt) thresholds, as the settings that keep
every out-of-scope turn the last message alone keeps out and topic switches within 2 points
of it, with the most follow-ups (``benchmarks/conversation.py``;
``benchmarks/results/conversation.txt``). The margins are in score units: retune them for
another encoder or a fitted router. The cues are English words: in other languages only the
score rules apply. The rule is deterministic and asks no LLM.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Union

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._exceptions import ConfigurationError, InvalidQueryError, QueryTypeError, SemRouterError
from ._language import word_set
from ._routes import RouteMatch

if TYPE_CHECKING:
    from ._router import SemanticRouter
    from .encoders import Vectors

__all__ = [
    "ConversationMatch",
    "ConversationOptions",
    "ConversationRouter",
    "Turn",
    "TurnWeight",
    "follow_up_cue",
    "user_text",
]

#: One turn: a user message as a plain str, a ``(role, text)`` pair or a ``{"role", "content"}``
#: mapping (the OpenAI chat shape).
Turn = Union[str, tuple[str, str], Mapping[str, Any]]  # noqa: UP007 - runtime alias

#: Roles whose turns are routed; other roles (assistant, system, tool) are skipped.
USER_ROLES = ("user", "human")


class ConversationOptions(BaseModel):
    """How a :class:`ConversationRouter` weighs earlier turns (validated, frozen).

    Attributes:
        window: user turns looked at, the last included (1 routes the last turn alone).
        decay: weight of the context so far against an unclear turn's own scores.
        clear_margin: how far above its route's threshold a turn's best score must be to
            decide alone.
        switch_gap: how far that best score must also beat the turn's score for the
            context's route (a follow-up scores close to both).
        join_margin: an unclear turn joins the context when it scores at least the context
            route's threshold minus this for that route; otherwise it is routed alone (unless
            ``cue_margin`` lets it in).
        cue_margin: an unclear turn with a follow-up cue (:func:`follow_up_cue`) joins the
            context when it scores at least the context route's threshold minus this (the
            larger of the two margins applies to it).
        long_words: a turn of at least this many words (split on white space) that passes its
            threshold decides alone; 0 turns the rule off. Text without spaces (Chinese,
            Japanese) counts as one word, so only the score rules apply to it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(default=3, ge=1, le=64)
    decay: float = Field(default=1.0, ge=0.0, le=10.0)
    clear_margin: float = Field(default=0.1, ge=-2.0, le=2.0)
    switch_gap: float = Field(default=0.08, ge=-2.0, le=2.0)
    join_margin: float = Field(default=0.0, ge=-2.0, le=2.0)
    cue_margin: float = Field(default=0.2, ge=-2.0, le=2.0)
    long_words: int = Field(default=8, ge=0, le=1000)


class TurnWeight(BaseModel):
    """How much one turn counted in a :class:`ConversationMatch`.

    ``index`` is the turn's position in the list given to :meth:`ConversationRouter.route`;
    ``route`` and ``score`` are what the turn alone scored best (``route`` is ``None`` when it
    passed no threshold); ``weight`` is its share of the final score (the shares sum to 1).
    """

    model_config = ConfigDict(frozen=True)

    index: int
    text: str
    weight: float
    route: str | None
    score: float


class ConversationMatch(RouteMatch):
    """A :class:`RouteMatch` for a conversation, with the turns that decided it.

    ``turns`` lists the turns that counted, oldest first, with their weights; ``context`` is
    ``False`` when the last turn decided alone (it was clear, out of scope, or the only turn).
    """

    turns: tuple[TurnWeight, ...] = ()
    context: bool = False


# Turn vectors per router, shared by ConversationRouter.shared(); values never refer to the
# router, so an entry goes with its router.
_SHARED: weakref.WeakKeyDictionary[SemanticRouter, tuple[OrderedDict[str, Vectors], Any]]
_SHARED = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


class ConversationRouter:
    """Routes a conversation: the last user turn, informed by earlier ones when it is unclear.

    Args:
        router: the router to ask; it is not changed.
        options: a :class:`ConversationOptions`; or give its fields as keywords.
        cache_size: how many turn vectors are kept (the least recently used are dropped).

    Example:
        >>> from semrouter import ConversationRouter, Route, SemanticRouter
        >>> from semrouter.encoders import FakeEncoder
        >>> router = SemanticRouter(
        ...     [Route("flights", ["book a flight to Paris", "find flights to Rome"]),
        ...      Route("weather", ["what is the weather forecast", "will it rain today"])],
        ...     encoder=FakeEncoder(),
        ... )
        >>> conversation = ConversationRouter(router)
        >>> turns = ["book a flight to Paris", ("assistant", "Which day?"), "Tuesday to Paris"]
        >>> conversation.route(turns).name
        'flights'
    """

    def __init__(
        self,
        router: SemanticRouter,
        options: ConversationOptions | None = None,
        *,
        cache_size: int = 4096,
        **fields: Any,
    ) -> None:
        if options is not None and fields:
            raise ConfigurationError("give options= or its fields as keywords, not both")
        if options is None:
            try:
                options = ConversationOptions(**fields)
            except ValidationError as exc:
                raise ConfigurationError(f"invalid conversation options: {exc}") from exc
        if not isinstance(options, ConversationOptions):
            raise ConfigurationError("options must be a ConversationOptions")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ConfigurationError("cache_size must be a positive int")
        self._router = router
        self._options = options
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def shared(
        cls, router: SemanticRouter, options: ConversationOptions | None = None
    ) -> ConversationRouter:
        """A conversation router for ``router`` that shares one process-wide vector cache
        with every other :meth:`shared` one of the same router (kept while the router lives).

        Components given a router (the LangChain and LlamaIndex adapters) call it per use,
        so they hold no state of their own to copy or pickle; it costs microseconds.
        """
        with _SHARED_LOCK:
            cache, lock = _SHARED.setdefault(router, (OrderedDict(), threading.Lock()))
        made = cls(router, options)
        made._cache, made._lock = cache, lock
        return made

    @property
    def router(self) -> SemanticRouter:
        """The router asked."""
        return self._router

    @property
    def options(self) -> ConversationOptions:
        """The options in force (frozen: use :meth:`replace` for others)."""
        return self._options

    def replace(self, **fields: Any) -> ConversationRouter:
        """A router with some options changed that shares this one's cached turn vectors."""
        try:
            options = ConversationOptions(**{**self._options.model_dump(), **fields})
        except ValidationError as exc:
            raise ConfigurationError(f"invalid conversation options: {exc}") from exc
        other = ConversationRouter(self._router, options, cache_size=self._cache_size)
        other._cache, other._lock = self._cache, self._lock
        return other

    # -- routing -------------------------------------------------------------------------------
    def route(self, turns: Sequence[Turn]) -> ConversationMatch:
        """The route of the conversation ``turns`` (oldest first); ``name=None`` when none passes.

        Turns are strs (user turns) or ``(role, text)`` pairs; only ``"user"``/``"human"`` turns
        are routed.

        Raises:
            InvalidQueryError: when no turn is a non-blank user turn.
            QueryTypeError: when a turn is neither a str nor a ``(role, text)`` pair.
        """
        return self._route_window(turns, self._options.window)

    async def aroute(self, turns: Sequence[Turn]) -> ConversationMatch:
        """Asynchronous :meth:`route`: the encoder's async path and the router's async query."""
        picked = self._pick(turns, self._options.window)
        missing = self._missing(picked)
        if missing:
            self._store(missing, await self._router.encoder.aencode(missing))
        return self._decide(
            picked, await self._router.aroute_vectors(self._matrix(picked), texts=_texts(picked))
        )

    def top_routes(
        self, turns: Sequence[Turn], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Up to ``limit`` routes for the conversation, best first, by the same rule as
        :meth:`route` (the context's scores when earlier turns counted); as the router's
        ``top_routes``, ``apply_threshold=False`` keeps routes below their threshold."""
        return self._top(self.route(turns), limit, apply_threshold)

    async def atop_routes(
        self, turns: Sequence[Turn], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Asynchronous :meth:`top_routes`."""
        return self._top(await self.aroute(turns), limit, apply_threshold)

    def route_last(self, turns: Sequence[Turn]) -> ConversationMatch:
        """The last user turn routed alone, as ``router.route`` would (vector cached too)."""
        return self._route_window(turns, 1)

    def _route_window(self, turns: Sequence[Turn], window: int) -> ConversationMatch:
        """The last ``window`` user turns routed in one batch (new turns encoded once)."""
        picked = self._pick(turns, window)
        missing = self._missing(picked)
        if missing:
            self._store(missing, self._router.encoder.encode(missing))
        return self._decide(
            picked, self._router.route_vectors(self._matrix(picked), texts=_texts(picked))
        )

    def clear_cache(self) -> None:
        """Forget every cached turn vector."""
        with self._lock:
            self._cache.clear()

    @property
    def cached_turns(self) -> int:
        """How many turn vectors are cached."""
        return len(self._cache)

    # -- steps ---------------------------------------------------------------------------------
    def _pick(self, turns: Sequence[Turn], window: int) -> list[tuple[int, str]]:
        """The last ``window`` non-blank user turns as ``(index, text)``, oldest first."""
        if isinstance(turns, (str, bytes)) or not isinstance(turns, Sequence):
            raise QueryTypeError("turns must be a list of str or (role, text) pairs")
        picked: list[tuple[int, str]] = []
        for index in range(len(turns) - 1, -1, -1):
            text = user_text(turns[index])
            if text is None or not text.strip():
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidQueryError(
                    "a turn contains a lone surrogate and is not valid Unicode text"
                ) from exc
            picked.append((index, text))
            if len(picked) >= window:
                break
        if not picked:
            raise InvalidQueryError("a conversation needs at least one non-blank user turn")
        picked.reverse()
        return picked

    def _top(self, match: ConversationMatch, limit: int, apply_threshold: bool) -> list[RouteMatch]:
        if limit < 1:
            raise ConfigurationError("limit must be at least 1")
        out: list[RouteMatch] = []
        for name, score in sorted(match.scores.items(), key=lambda item: -item[1]):
            threshold = self._router.threshold_for(name)
            if apply_threshold and score < threshold:
                continue
            utterance = match.utterance if name == match.name else None
            out.append(
                RouteMatch(
                    name=name,
                    score=score,
                    scores=match.scores,
                    utterance=utterance,
                    threshold=threshold,
                )
            )
            if len(out) >= limit:
                break
        return out

    def _missing(self, picked: list[tuple[int, str]]) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(text for _, text in picked if text not in self._cache))

    def _store(self, texts: list[str], vectors: Vectors) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors):
                self._cache[text] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _matrix(self, picked: list[tuple[int, str]]) -> Vectors:
        with self._lock:
            rows = []
            for _, text in picked:
                rows.append(self._cache[text])
                self._cache.move_to_end(text)
        return np.stack(rows)

    def _decide(
        self, picked: list[tuple[int, str]], matches: list[RouteMatch]
    ) -> ConversationMatch:
        names = sorted({name for match in matches for name in match.scores})
        rows = [_score_row(match, names) for match in matches]
        thresholds = np.array([self._router.threshold_for(n) for n in names], dtype=np.float64)
        words = [len(text.split()) for _, text in picked]
        cues = [follow_up_cue(text) for _, text in picked]
        context, weights = fold(rows, thresholds, self._options, words, cues)
        last_index, last_text = picked[-1]
        last = matches[-1]
        counted = tuple(
            TurnWeight(
                index=picked[i][0],
                text=picked[i][1],
                weight=round(w, 6),
                route=matches[i].name,
                score=matches[i].score,
            )
            for i, w in sorted(weights.items())
        )
        if context is None or len(counted) == 1:
            alone = TurnWeight(
                index=last_index, text=last_text, weight=1.0, route=last.name, score=last.score
            )
            return ConversationMatch(**last.model_dump(), turns=(alone,), context=False)
        best = int(np.argmax(context))
        score = float(context[best])
        threshold = float(thresholds[best])
        passed = score >= threshold
        order = np.argsort(-context, kind="stable")
        # The matched utterance of the counted turn that scored the chosen route best.
        nearest = max(weights, key=lambda i: (rows[i][best], i))
        return ConversationMatch(
            name=names[best] if passed else None,
            score=score,
            scores={names[i]: float(context[i]) for i in order},
            utterance=matches[nearest].utterance if int(np.argmax(rows[nearest])) == best else None,
            threshold=threshold if passed else None,
            turns=counted,
            context=True,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> ConversationRouter:
        # The router is a shared handle (its deepcopy is itself); the options are frozen and
        # the vector cache is thread-safe: a copy shares both, as replace() does.
        return self.replace()

    def __copy__(self) -> ConversationRouter:
        return self.replace()

    def __reduce__(self) -> NoReturn:
        raise SemRouterError(
            "a ConversationRouter cannot be pickled (its SemanticRouter holds an open Qdrant "
            "collection): build one in the other process from a router opened there"
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._options.model_dump().items())
        return f"ConversationRouter(router={self._router!r}, {fields})"


def fold(
    rows: Sequence[npt.NDArray[np.float64]],
    thresholds: npt.NDArray[np.float64],
    options: ConversationOptions,
    words: Sequence[int] | None = None,
    cues: Sequence[bool] | None = None,
) -> tuple[npt.NDArray[np.float64] | None, dict[int, float]]:
    """Fold per-turn route scores (oldest first) into the last turn's context scores.

    ``words`` holds each turn's word count (for ``long_words``; ``None``: no turn is long);
    ``cues`` whether each turn has a follow-up cue (for ``cue_margin``; ``None``: none has).

    Returns the context scores (``None`` when the last turn stands alone) and each counted
    turn's weight by position; the weights sum to 1.
    """
    context: npt.NDArray[np.float64] | None = None
    weights: dict[int, float] = {}
    share = 1.0 / (1.0 + options.decay)
    for position, row in enumerate(rows):
        best = int(np.argmax(row)) if len(row) else 0
        if context is None or not len(row):
            context, weights = row.copy(), {position: 1.0}
            continue
        current = int(np.argmax(context))
        long = (
            bool(options.long_words) and words is not None and words[position] >= options.long_words
        )
        clear = (
            row[best] >= thresholds[best] + options.clear_margin
            and row[best] - row[current] >= options.switch_gap
        ) or (long and row[best] >= thresholds[best])
        if clear:
            context, weights = row.copy(), {position: 1.0}
        elif row[current] >= thresholds[current] - _join_margin(options, cues, position):
            context = (row + options.decay * context) * share
            weights = {i: w * options.decay * share for i, w in weights.items()}
            weights[position] = share
        elif position == len(rows) - 1:
            return None, {position: 1.0}
    return context, weights


def _join_margin(options: ConversationOptions, cues: Sequence[bool] | None, position: int) -> float:
    """How far below the context route's threshold an unclear turn may score and still join."""
    if cues is not None and cues[position]:
        return max(options.join_margin, options.cue_margin)
    return options.join_margin


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
#: Words that open an elliptical turn: a conjunction or discourse marker ("and the cheapest
#: one?", "actually make it two"), a preposition or determiner before a fragment ("for two
#: adults", "with breakfast included", "the one on Tuesday", "which gate?").
_OPENERS = word_set(
    "and or but also plus actually ok okay so then no yes yeah sure instead only just maybe for "
    "with without from to at on in into under over around near by before after until between "
    "during via somewhere something anything the which"
)
#: Two-word openers that ask about a variant of what was said before.
_OPENER_PAIRS = frozenset({("what", "about"), ("how", "about"), ("what", "if"), ("make", "it")})
#: Words that refer back to something said before ("can you refund it?", "the same room").
_ANAPHORA = word_set(
    "it its it's that this these those them they their there he she him her one ones same instead "
    "too else another again"
)


def follow_up_cue(text: str) -> bool:
    """Whether ``text`` reads like an English follow-up: it opens with a conjunction, a
    preposition or "what about" (an elliptical fragment), or it refers back ("it", "that",
    "one", "same"...). A self-contained question ("who painted the Mona Lisa?") has none.

    Example:
        >>> follow_up_cue("and for two adults?"), follow_up_cue("who wrote Hamlet?")
        (True, False)
    """
    words = _WORD.findall(text.lower())
    if not words:
        return False
    if words[0] in _OPENERS or tuple(words[:2]) in _OPENER_PAIRS:
        return True
    return any(word in _ANAPHORA for word in words)


def user_text(turn: object) -> str | None:
    """The text of a user turn; ``None`` for another role's turn.

    A turn is a str (a user turn), a ``(role, text)`` pair, or a ``{"role", "content"}``
    mapping with a str content.

    Raises:
        QueryTypeError: for anything else.
    """
    if isinstance(turn, str):
        return turn
    if isinstance(turn, tuple) and len(turn) == 2:
        role, text = turn
        if isinstance(role, str) and isinstance(text, str):
            return text if role.lower() in USER_ROLES else None
    if isinstance(turn, Mapping) and isinstance(turn.get("role"), str):
        content = turn.get("content")
        if isinstance(content, str):
            return content if str(turn["role"]).lower() in USER_ROLES else None
    raise QueryTypeError(
        f"a turn must be a str or a (role, text) pair of strings, got {type(turn).__name__}"
    )


def _score_row(match: RouteMatch, names: list[str]) -> npt.NDArray[np.float64]:
    """A turn's score for each route in ``names``; routes it did not reach get its lowest."""
    floor = min(match.scores.values()) if match.scores else 0.0
    return np.array([match.scores.get(name, floor) for name in names], dtype=np.float64)


def _texts(picked: list[tuple[int, str]]) -> list[str]:
    """The picked turns' texts, row for row with their vectors (hybrid routing needs them)."""
    return [text for _, text in picked]
