"""OpenTelemetry spans and metrics of routing decisions: optional, and free when unused.

The router calls :func:`observe` after each routing call (optionally inside
:func:`routing_span`, so that the encoder's own HTTP spans nest under the routing span). What is
recorded, and the names (``semrouter.*``), are listed in ``docs/observability.md``.

Cost: semrouter never imports ``opentelemetry`` itself. While the application has not imported
it (it must, to configure an SDK), :func:`observe` is one dictionary look-up; while it is
imported but no SDK provider is set, two provider look-ups. Spans and metrics are built only
for a real (SDK) provider, or for providers given to :func:`configure_telemetry`.

No request text is recorded unless asked (``record_text=True`` here or in
:func:`configure_telemetry`): route names, scores and counts only.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._routes import RouteMatch

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["configure_telemetry", "observe", "routing_span"]

#: The instrumentation scope (tracer and meter name).
SCOPE = "semrouter"
#: Bucket boundaries of the score histogram: the router's score scale is [-1, 1].
SCORE_BUCKETS = tuple(round(-0.2 + 0.05 * i, 2) for i in range(25))  # -0.2 ... 1.0
#: Bucket boundaries of the latency histogram, in seconds (0.1 ms to 10 s).
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
#: Decisions of one batch recorded as span events, at most (metrics count every one).
MAX_EVENTS = 64

Match = RouteMatch | Sequence[RouteMatch]


@dataclass(frozen=True, eq=False)
class _Telemetry:
    """The instruments in force: a tracer and/or the three metric instruments."""

    tracer: Any  # opentelemetry.trace.Tracer | None
    decisions: Any  # Counter | None
    scores: Any  # Histogram | None
    duration: Any  # Histogram | None


_explicit: _Telemetry | None = None  # providers given to configure_telemetry()
_disabled = False  # configure_telemetry(enabled=False)
_record_text = False  # configure_telemetry(record_text=True)
_cached: tuple[object, object, _Telemetry | None] | None = None  # (tracer p., meter p., result)
_current: contextvars.ContextVar[_Span | None] = contextvars.ContextVar(
    "semrouter_routing_span", default=None
)


def configure_telemetry(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    record_text: bool = False,
    enabled: bool = True,
) -> None:
    """Choose where semrouter's spans and metrics go; with no argument, back to the default.

    By default semrouter uses OpenTelemetry's global providers as soon as the application has
    set an SDK's (``trace.set_tracer_provider``, ``metrics.set_meter_provider``, or
    ``opentelemetry-instrument``); until then nothing is recorded and nothing is paid.

    Args:
        tracer_provider: a ``TracerProvider`` to use instead of the global one.
        meter_provider: a ``MeterProvider`` to use instead of the global one.
        record_text: put the request text on spans (``semrouter.text``); off by default.
        enabled: ``False`` records nothing at all, whatever is configured.

    Example:
        >>> from semrouter import configure_telemetry
        >>> configure_telemetry(enabled=False)  # no spans or metrics from semrouter
        >>> configure_telemetry()  # the default: the global providers, no request text
    """
    global _explicit, _disabled, _cached, _record_text
    _explicit, _cached = None, None
    _disabled, _record_text = not enabled, bool(record_text)
    if not enabled or (tracer_provider is None and meter_provider is None):
        return
    from opentelemetry import metrics, trace  # whoever passes a provider has the API

    _explicit = _build(
        tracer_provider or trace.get_tracer_provider(),
        meter_provider or metrics.get_meter_provider(),
        tracing=tracer_provider is not None,
        measuring=meter_provider is not None,
    )


def _build(
    tracer_provider: Any, meter_provider: Any, *, tracing: bool = False, measuring: bool = False
) -> Any:
    """Instruments for these providers: each side that is forced (``tracing``, ``measuring``)
    or a real (SDK) provider; ``None`` when neither side is."""
    from opentelemetry import metrics, trace

    from . import __version__

    tracing = tracing or not isinstance(
        tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )
    # The API's stand-in before an SDK is set is the private _ProxyMeterProvider.
    measuring = measuring or not (
        isinstance(meter_provider, metrics.NoOpMeterProvider)
        or type(meter_provider).__name__ == "_ProxyMeterProvider"
    )
    if not (tracing or measuring):
        return None
    tracer = tracer_provider.get_tracer(SCOPE, __version__) if tracing else None
    if not measuring:
        return _Telemetry(tracer, None, None, None)
    meter = meter_provider.get_meter(SCOPE, __version__)
    return _Telemetry(
        tracer,
        meter.create_counter(
            "semrouter.decisions",
            unit="{decision}",
            description="Routing decisions, by route and outcome (routed, abstained, error).",
        ),
        meter.create_histogram(
            "semrouter.decision.score",
            unit="1",
            description="The best route's score of each decision, routed or abstained.",
            explicit_bucket_boundaries_advisory=SCORE_BUCKETS,
        ),
        meter.create_histogram(
            "semrouter.routing.duration",
            unit="s",
            description="Duration of a routing call: encoding, search and decision.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        ),
    )


def _active() -> _Telemetry | None:
    """The instruments in force, or ``None`` (the cheap path: see the module docstring)."""
    global _cached
    if _explicit is not None or _disabled:
        return _explicit
    trace = sys.modules.get("opentelemetry.trace")
    metrics = sys.modules.get("opentelemetry.metrics")
    if trace is None or metrics is None:
        if trace is None and metrics is None:
            return None  # the application never imported OpenTelemetry: nothing can be set
        from opentelemetry import metrics as metrics_api
        from opentelemetry import trace as trace_api

        trace, metrics = trace_api, metrics_api
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    cached = _cached
    if cached is not None and cached[0] is tracer_provider and cached[1] is meter_provider:
        return cached[2]
    result = _build(tracer_provider, meter_provider)
    _cached = (tracer_provider, meter_provider, result)
    return result  # type: ignore[no-any-return]


class _NoSpan:
    """What :func:`routing_span` returns when nothing is recorded: does nothing, cheaply."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class _Span:
    """A routing span made current while encoding and searching (see :func:`routing_span`)."""

    __slots__ = ("kind", "observed", "span", "started", "telemetry", "tenant", "token", "var")

    def __init__(self, telemetry: _Telemetry, kind: str, tenant: str) -> None:
        self.telemetry, self.kind, self.tenant = telemetry, kind, tenant
        self.span: Any = None
        self.token: Any = None
        self.var: contextvars.Token[_Span | None] | None = None
        self.observed = False
        self.started = 0.0

    def __enter__(self) -> _Span:
        self.started = time.perf_counter()
        if self.telemetry.tracer is not None:
            from opentelemetry import context, trace

            self.span = self.telemetry.tracer.start_span(
                f"semrouter {self.kind}", kind=trace.SpanKind.INTERNAL
            )
            self.token = context.attach(trace.set_span_in_context(self.span))
        self.var = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.var is not None:
            _current.reset(self.var)
        if exc is not None and not self.observed:
            call = _Call(self.kind, self.tenant, self.elapsed(), {})
            _record_error(self.telemetry, call, exc, self.span)
        if self.token is not None:
            from opentelemetry import context

            context.detach(self.token)
        if self.span is not None:
            self.span.end()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def routing_span(kind: str, *, tenant: str = "") -> _Span | _NoSpan:
    """A context manager around one routing call: its span is the current one while the call
    encodes and searches (the encoder's HTTP spans nest under it), and an exception escaping
    it is recorded (``outcome=error``). :func:`observe` inside it fills this span in."""
    telemetry = _active()
    if telemetry is None:
        return _NO_SPAN
    return _Span(telemetry, kind, tenant)


def observe(
    kind: str,
    matches: Sequence[Match],
    *,
    tenant: str = "",
    candidates: int = 0,
    encode_s: float = 0.0,
    search_s: float = 0.0,
    texts: Sequence[str] | None = None,
    record_text: bool = False,
    error: BaseException | None = None,
) -> None:
    """Record one routing call: a span, and the decision metrics (see ``docs/observability.md``).

    Args:
        kind: the operation (``"route"``, ``"route_many"``, ``"aroute"`` ...).
        matches: one decision per query: a :class:`RouteMatch` (``name=None``: abstained), or a
            list of them as ``top_routes`` returns (its first; empty: abstained).
        tenant: the router's tenant.
        candidates: the nearest utterances retrieved per query.
        encode_s: seconds spent encoding the queries.
        search_s: seconds spent searching and deciding.
        texts: the queries, recorded only with ``record_text``.
        record_text: record the query text on the span (``semrouter.text``).
        error: the call failed with this exception (``matches`` is then ignored).
    """
    telemetry = _active()
    if telemetry is None:
        return
    inside = _current.get()
    if inside is not None:
        inside.observed = True
    call = _Call(
        kind,
        tenant,
        inside.elapsed() if inside is not None else encode_s + search_s,
        {"semrouter.candidates": candidates, "semrouter.encode.duration": encode_s,
         "semrouter.search.duration": search_s},
    )  # fmt: skip
    texts = texts if texts is not None and (record_text or _record_text) else None
    if inside is not None or telemetry.tracer is None:
        _finish(telemetry, call, matches, texts, error, inside.span if inside else None)
        return
    # No routing span around the call: one of its own, backdated to the call's start.
    from opentelemetry import trace

    now = time.time_ns()
    span = telemetry.tracer.start_span(
        f"semrouter {kind}", kind=trace.SpanKind.INTERNAL, start_time=now - int(call.elapsed * 1e9)
    )
    try:
        _finish(telemetry, call, matches, texts, error, span)
    finally:
        span.end(end_time=now)


def _finish(
    telemetry: _Telemetry,
    call: _Call,
    matches: Sequence[Match],
    texts: Sequence[str] | None,
    error: BaseException | None,
    span: Any,
) -> None:
    if error is not None:
        _record_error(telemetry, call, error, span)
    else:
        _record(telemetry, call, matches, texts, span)


@dataclass(frozen=True)
class _Call:
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
    telemetry: _Telemetry,
    call: _Call,
    matches: Sequence[Match],
    texts: Sequence[str] | None,
    span: Any,
) -> None:
    base = call.labels()
    decisions = [_decision(m) for m in matches]
    if telemetry.decisions is not None:
        for name, score, _, _ in decisions:
            labels = {**base, "semrouter.outcome": "routed" if name is not None else "abstained"}
            if name is not None:
                labels["semrouter.route"] = name
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


def _record_error(telemetry: _Telemetry, call: _Call, error: BaseException, span: Any) -> None:
    labels = {**call.labels(), "error.type": type(error).__qualname__}
    if telemetry.decisions is not None:
        telemetry.decisions.add(1, {**labels, "semrouter.outcome": "error"})
        telemetry.duration.record(call.elapsed, labels)
    if span is not None and span.is_recording():
        from opentelemetry.trace import Status, StatusCode

        span.set_attributes({**labels, **call.details, "semrouter.outcome": "error"})
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
