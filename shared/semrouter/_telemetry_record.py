"""What one routing call records: span attributes, span events and metric points.

``_telemetry`` decides whether anything is recorded and holds the instruments; this module turns
matches into attributes. It imports nothing of OpenTelemetry but the status of a failed span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._routes import RouteMatch

__all__ = ["Call", "Instruments", "Match", "details", "finish", "record_error"]

#: Decisions of one batch recorded as span events, at most (metrics count every one).
MAX_EVENTS = 64

Match = RouteMatch | Sequence[RouteMatch]


@dataclass(frozen=True, eq=False)
class Instruments:
    """The instruments in force: a tracer and/or the three metric instruments."""

    tracer: Any  # opentelemetry.trace.Tracer | None
    decisions: Any  # Counter | None
    scores: Any  # Histogram | None
    duration: Any  # Histogram | None


def details(candidates: int, encode_s: float, search_s: float) -> dict[str, Any]:
    return {
        "semrouter.candidates": candidates,
        "semrouter.encode.duration": encode_s,
        "semrouter.search.duration": search_s,
    }


def finish(
    telemetry: Instruments,
    call: Call,
    matches: Sequence[Match],
    texts: Sequence[str] | None,
    error: BaseException | None,
    span: Any,
) -> None:
    if error is not None:
        record_error(telemetry, call, error, span)
    else:
        _record(telemetry, call, matches, texts, span)


@dataclass(frozen=True)
class Call:
    """One routing call, as recorded."""

    kind: str
    tenant: str
    elapsed: float  # seconds
    details: dict[str, Any]  # span attributes of the call (candidates, encode and search time)

    def labels(self) -> dict[str, Any]:
        """The metric attributes every record of this call carries."""
        labels: dict[str, Any] = {"semrouter.operation": self.kind}
        if self.tenant:
            labels["semrouter.tenant"] = self.tenant
        return labels


def _record(
    telemetry: Instruments,
    call: Call,
    matches: Sequence[Match],
    texts: Sequence[str] | None,
    span: Any,
) -> None:
    base = call.labels()
    decisions = [_decision(m) for m in matches]
    if telemetry.decisions is not None:
        for match, (name, score, _, _) in zip(matches, decisions):
            labels = {**base, "semrouter.outcome": "routed" if name is not None else "abstained"}
            if name is not None:
                labels["semrouter.route"] = name
            elif isinstance(match, RouteMatch) and match.reason:  # why it abstained
                labels["semrouter.reason"] = match.reason
            telemetry.decisions.add(1, labels)
            if score is not None:
                telemetry.scores.record(score, labels)
        telemetry.duration.record(call.elapsed, base)
    if span is None or not span.is_recording():
        return
    span.set_attributes({**base, **call.details, "semrouter.batch.size": len(decisions)})
    if len(decisions) == 1:
        span.set_attributes(_attributes(decisions[0], texts[0] if texts else None))
        return
    routed = sum(1 for d in decisions if d[0] is not None)
    span.set_attribute("semrouter.routed", routed)
    span.set_attribute("semrouter.abstained", len(decisions) - routed)
    for i, decision in enumerate(decisions[:MAX_EVENTS]):
        text = texts[i] if texts is not None and i < len(texts) else None
        span.add_event("semrouter.decision", _attributes(decision, text))


Decision = tuple[str | None, float | None, float | None, float | None]


def _decision(match: Match) -> Decision:
    """(route or None, best score, threshold, margin to the runner-up) of one decision."""
    if not isinstance(match, RouteMatch):
        if not match:
            return None, None, None, None
        match = match[0]
    scores = match.scores
    if match.name is not None:
        others = [v for k, v in scores.items() if k != match.name]
        runner = max(others) if others else None
    else:
        ordered = sorted(scores.values(), reverse=True)
        runner = ordered[1] if len(ordered) > 1 else None
    margin = match.score - runner if runner is not None else None
    return match.name, float(match.score), match.threshold, margin


def _attributes(decision: Decision, text: str | None) -> dict[str, Any]:
    name, score, threshold, margin = decision
    out: dict[str, Any] = {
        "semrouter.outcome": "routed" if name is not None else "abstained",
        "semrouter.abstained": name is None,
    }
    for key, value in (
        ("semrouter.route", name),
        ("semrouter.score", score),
        ("semrouter.threshold", threshold),
        ("semrouter.margin", margin),
        ("semrouter.text", text),
    ):
        if value is not None:
            out[key] = value
    return out


def record_error(telemetry: Instruments, call: Call, error: BaseException, span: Any) -> None:
    labels = {**call.labels(), "error.type": type(error).__qualname__}
    if telemetry.decisions is not None:
        telemetry.decisions.add(1, {**labels, "semrouter.outcome": "error"})
        telemetry.duration.record(call.elapsed, labels)
    if span is not None and span.is_recording():
        from opentelemetry.trace import Status, StatusCode

        span.set_attributes({**labels, **call.details, "semrouter.outcome": "error"})
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
