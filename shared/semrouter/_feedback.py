"""What the application taught the router: confirmed requests and requests that matched nothing.

:meth:`SemanticRouter.feedback` is the one way in, for a thumbs-down button, a human hand-off or
an agent's tool call. Feedback is part of the stored route set (``_routestore.py``), so every
process and replica shares it and a redeploy keeps it:

- a request confirmed for a route becomes an **example** of that route: indexed like one of
  its utterances (with the request's own vector: nothing is encoded again when it is given),
  learnt from by self-training and ``fit()``, and kept across ``sync="replace"``, ``update()``
  and ``set_routes()`` (the routes declared in code hold the utterances; examples are added
  to them). Each route keeps its latest :data:`MAX_EXAMPLES` examples;
- a request that belonged to no route becomes a **negative** (its latest :data:`MAX_NEGATIVES`
  are kept): ``fit()`` adds the negatives to its labelled texts with a ``None`` label, so the
  thresholds it chooses turn them away. Self-training (no labels) does not use them: it learns
  from the routes' utterances alone.

Examples are listed by ``router.examples()`` and removed by ``router.remove_examples()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._routes import Route

__all__ = ["MAX_EXAMPLES", "MAX_NEGATIVES", "Feedback"]

#: Examples kept per route (the oldest go first): feedback adds to a route, it never buries it.
MAX_EXAMPLES = 50
#: Requests that matched nothing, kept for fitting and review.
MAX_NEGATIVES = 1000


@dataclass(frozen=True)
class Feedback:
    """Examples by route and negatives, as stored with a route set."""

    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    negatives: tuple[str, ...] = ()

    def attach(self, routes: Iterable[Route]) -> list[Route]:
        """``routes`` with their examples added to their utterances (those not already there)."""
        out = []
        for route in routes:
            extra = [t for t in self.examples.get(route.name, ()) if t not in route.utterances]
            if extra:
                route = route.model_copy(update={"utterances": (*route.utterances, *extra)})
            out.append(route)
        return out

    def detach(self, routes: Iterable[Route]) -> list[Route]:
        """``routes`` without the examples :meth:`attach` added (a route whose utterances
        would all go keeps them: a route needs one)."""
        out = []
        for route in routes:
            extra = set(self.examples.get(route.name, ()))
            kept = tuple(t for t in route.utterances if t not in extra)
            if extra and kept and len(kept) < len(route.utterances):
                route = route.model_copy(update={"utterances": kept})
            out.append(route)
        return out

    def keep(self, names: Iterable[str]) -> Feedback:
        """The feedback of the routes still in the set (a removed route takes its examples)."""
        wanted = set(names)
        return Feedback({k: v for k, v in self.examples.items() if k in wanted}, self.negatives)

    def with_example(self, route: str, text: str) -> Feedback:
        texts = tuple(t for t in self.examples.get(route, ()) if t != text)
        examples = dict(self.examples)
        examples[route] = (*texts, text)[-MAX_EXAMPLES:]
        negatives = tuple(t for t in self.negatives if t != text)  # it belongs somewhere now
        return Feedback(examples, negatives)

    def with_negative(self, text: str) -> Feedback:
        negatives = (*(t for t in self.negatives if t != text), text)[-MAX_NEGATIVES:]
        examples = {k: tuple(t for t in v if t != text) for k, v in self.examples.items()}
        return Feedback({k: v for k, v in examples.items() if v}, negatives)

    def without(self, route: str, texts: Sequence[str] | None) -> Feedback:
        """Without ``route``'s examples ``texts`` (``None``: all of them)."""
        examples = dict(self.examples)
        kept = () if texts is None else tuple(t for t in examples.get(route, ()) if t not in texts)
        if kept:
            examples[route] = kept
        else:
            examples.pop(route, None)
        return Feedback(examples, self.negatives)

    def to_dict(self) -> dict[str, Any]:
        return {"examples": {k: list(v) for k, v in self.examples.items()},
                "negatives": list(self.negatives)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> Feedback:
        if not isinstance(data, Mapping):
            return cls()
        raw = data.get("examples")
        examples = {
            str(k): tuple(str(t) for t in v)
            for k, v in (raw.items() if isinstance(raw, Mapping) else ())
            if isinstance(v, list) and v
        }
        raw = data.get("negatives")
        negatives = tuple(str(t) for t in raw) if isinstance(raw, list) else ()
        return cls(examples, negatives)

    def __bool__(self) -> bool:
        return bool(self.examples or self.negatives)
