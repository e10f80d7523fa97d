"""OpenTelemetry spans and metrics of routing decisions: optional, and free when unused.

The router wraps each routing call in :func:`routing_span` (its span is current while the
encoder runs, so the encoder's own HTTP spans nest under it) and calls the span's
``observe(matches, ...)`` once it has decided; :func:`observe` alone records a call after the
fact, in a span backdated to its start. What is recorded, and the names (``semrouter.*``), are
listed in ``docs/observability.md``.

Cost: semrouter never imports ``opentelemetry`` itself. While the application has not imported
it (it must, to configure an SDK), :func:`routing_span` is two dictionary look-ups; while it is
imported but no SDK provider is set, two more attribute reads. Spans and metrics are built only
for a real (SDK) provider, or for providers given to :func:`configure_telemetry`.

No request text is recorded unless asked (``record_text=True`` here or in
:func:`configure_telemetry`): route names, scores and counts only.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._telemetry_record import Call, Instruments, Match, details, finish, record_error

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

_explicit: Instruments | None = None  # providers given to configure_telemetry()
_disabled = False  # configure_telemetry(enabled=False)
_record_text = False  # configure_telemetry(record_text=True)
_cached: tuple[object, object, Instruments | None] | None = None  # (tracer p., meter p., result)
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
        return Instruments(tracer, None, None, None)
    meter = meter_provider.get_meter(SCOPE, __version__)
    return Instruments(
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


def _active() -> Instruments | None:
    """The instruments in force, or ``None`` (the cheap path: see the module docstring)."""
    global _cached
    if _explicit is not None or _disabled:
        return _explicit
    modules = sys.modules
    trace = modules.get("opentelemetry.trace")
    metrics = modules.get("opentelemetry.metrics._internal")
    if trace is None and metrics is None:
        return None  # the application never imported OpenTelemetry: nothing can be set
    # The API's public getters read os.environ on every call: 2 us when cold (between two
    # routing calls), more than everything else here. The API keeps what set_*_provider() set
    # in module globals; while both are unset and no provider is named by the environment,
    # there is no SDK. (Were the globals renamed, getattr's default sends us the public way.)
    if (
        _NO_PROVIDER_ENV
        and _unset(trace, "_TRACER_PROVIDER")
        and _unset(metrics, "_METER_PROVIDER")
    ):
        return None
    from opentelemetry import metrics as metrics_api
    from opentelemetry import trace as trace_api

    tracer_provider = trace_api.get_tracer_provider()
    meter_provider = metrics_api.get_meter_provider()
    cached = _cached
    if cached is not None and cached[0] is tracer_provider and cached[1] is meter_provider:
        return cached[2]
    result = _build(tracer_provider, meter_provider)
    _cached = (tracer_provider, meter_provider, result)
    return result  # type: ignore[no-any-return]


_NO_PROVIDER_ENV = not any(
    name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)
_MISSING = object()


def _unset(module: Any, name: str) -> bool:
    """Whether the API module (``None``: never imported) holds no provider in ``name``."""
    return module is None or getattr(module, name, _MISSING) is None


class _NoSpan:
    """What :func:`routing_span` returns when nothing is recorded: does nothing, cheaply."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def observe(self, *args: Any, **kwargs: Any) -> None:
        """Takes what :meth:`_Span.observe` takes, and records nothing."""
        return None


_NO_SPAN = _NoSpan()


class _Span:
    """A routing span made current while encoding and searching (see :func:`routing_span`)."""

    __slots__ = ("kind", "observed", "span", "started", "telemetry", "tenant", "token", "var")

    def __init__(self, telemetry: Instruments, kind: str, tenant: str) -> None:
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
            call = Call(self.kind, self.tenant, self.elapsed(), {})
            record_error(self.telemetry, call, exc, self.span)
        if self.token is not None:
            from opentelemetry import context

            context.detach(self.token)
        if self.span is not None:
            self.span.end()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def observe(
        self,
        matches: Sequence[Match],
        *,
        candidates: int = 0,
        encode_s: float = 0.0,
        search_s: float = 0.0,
        texts: Sequence[str] | None = None,
        record_text: bool = False,
        error: BaseException | None = None,
    ) -> None:
        """:func:`observe` for this span's call (its kind and tenant): no second look-up."""
        self.observed = True
        call = Call(self.kind, self.tenant, self.elapsed(), details(candidates, encode_s, search_s))
        finish(self.telemetry, call, matches, _texts(texts, record_text), error, self.span)


def routing_span(kind: str, *, tenant: str = "") -> _Span | _NoSpan:
    """A context manager around one routing call: its span is the current one while the call
    encodes and searches (the encoder's HTTP spans nest under it), and an exception escaping
    it is recorded (``outcome=error``). Its ``observe(matches, ...)`` (the arguments of
    :func:`observe` less kind and tenant) records the decisions on it; so does :func:`observe`
    called inside it. Nothing recorded: a shared object whose methods do nothing."""
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
    if inside is not None:  # fill in the routing span around the call
        inside.observe(matches, candidates=candidates, encode_s=encode_s, search_s=search_s,
                       texts=texts, record_text=record_text, error=error)  # fmt: skip
        return
    call = Call(kind, tenant, encode_s + search_s, details(candidates, encode_s, search_s))
    texts = _texts(texts, record_text)
    if telemetry.tracer is None:
        finish(telemetry, call, matches, texts, error, None)
        return
    # No routing span around the call: one of its own, backdated to the call's start.
    from opentelemetry import trace

    now = time.time_ns()
    span = telemetry.tracer.start_span(
        f"semrouter {kind}", kind=trace.SpanKind.INTERNAL, start_time=now - int(call.elapsed * 1e9)
    )
    try:
        finish(telemetry, call, matches, texts, error, span)
    finally:
        span.end(end_time=now)


def _texts(texts: Sequence[str] | None, record_text: bool) -> Sequence[str] | None:
    return texts if texts is not None and (record_text or _record_text) else None
