"""OpenTelemetry spans and metrics of routing decisions (issue 21, point 1).

Tested with the SDK's in-memory exporters, calling the instrumentation as the router does.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from semrouter import RouteMatch, configure_telemetry
from semrouter._telemetry import observe, routing_span

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

ROUTED = RouteMatch(
    name="billing",
    score=0.82,
    scores={"billing": 0.82, "refunds": 0.61, "chitchat": 0.2},
    utterance="where is my invoice",
    threshold=0.5,
)
ABSTAINED = RouteMatch(name=None, score=0.41, scores={"billing": 0.41, "refunds": 0.38})


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = sdk_trace.TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "semrouter"
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    sink = Otel()
    configure_telemetry(tracer_provider=sink.tracer_provider, meter_provider=sink.meter_provider)
    yield sink
    configure_telemetry()  # back to the default: the global providers


def _observe(matches: Any, **kwargs: Any) -> None:
    observe(
        "route",
        matches,
        tenant=kwargs.pop("tenant", "acme"),
        candidates=32,
        encode_s=0.002,
        search_s=0.0005,
        **kwargs,
    )


def test_a_routed_decision_is_one_span_with_its_attributes(otel: Otel) -> None:
    _observe([ROUTED], texts=["where is my bill?"])
    (span,) = otel.finished()
    assert span.name == "semrouter route"
    assert span.kind == trace.SpanKind.INTERNAL
    attrs = dict(span.attributes)
    assert attrs == {
        "semrouter.operation": "route",
        "semrouter.tenant": "acme",
        "semrouter.candidates": 32,
        "semrouter.encode.duration": 0.002,
        "semrouter.search.duration": 0.0005,
        "semrouter.batch.size": 1,
        "semrouter.outcome": "routed",
        "semrouter.abstained": False,
        "semrouter.route": "billing",
        "semrouter.score": 0.82,
        "semrouter.threshold": 0.5,
        "semrouter.margin": pytest.approx(0.82 - 0.61),
    }
    # backdated to the call's start: encode + search
    assert span.end_time - span.start_time == pytest.approx(2_500_000, abs=1_000)


def test_no_request_text_unless_asked(otel: Otel) -> None:
    _observe([ROUTED], texts=["my secret question"])
    _observe([ROUTED], texts=["asked for"], record_text=True)
    first, second = otel.finished()
    assert "semrouter.text" not in first.attributes
    assert not any("secret" in str(v) for v in first.attributes.values())
    assert second.attributes["semrouter.text"] == "asked for"
    configure_telemetry(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, record_text=True
    )
    _observe([ROUTED], texts=["configured"])
    assert otel.finished()[-1].attributes["semrouter.text"] == "configured"


def test_an_abstention_without_threshold(otel: Otel) -> None:
    _observe([ABSTAINED], tenant="")
    (span,) = otel.finished()
    attrs = dict(span.attributes)
    assert attrs["semrouter.outcome"] == "abstained"
    assert attrs["semrouter.abstained"] is True
    assert attrs["semrouter.score"] == 0.41
    assert attrs["semrouter.margin"] == pytest.approx(0.03)
    for absent in ("semrouter.route", "semrouter.threshold", "semrouter.tenant"):
        assert absent not in attrs


def test_metrics_count_decisions_by_route_and_outcome(otel: Otel) -> None:
    _observe([ROUTED, ROUTED, ABSTAINED, []])  # [] : top_routes found nothing
    counts = {
        (p.attributes.get("semrouter.route"), p.attributes["semrouter.outcome"]): p.value
        for p in otel.points("semrouter.decisions")
    }
    assert counts == {("billing", "routed"): 2, (None, "abstained"): 2}
    scores = {p.attributes["semrouter.outcome"]: p for p in otel.points("semrouter.decision.score")}
    assert scores["routed"].count == 2 and scores["routed"].sum == pytest.approx(1.64)
    assert scores["abstained"].count == 1  # the empty list has no score
    assert scores["routed"].explicit_bounds[0] == pytest.approx(-0.2)
    (latency,) = otel.points("semrouter.routing.duration")
    assert latency.count == 1 and latency.sum == pytest.approx(0.0025)
    assert dict(latency.attributes) == {"semrouter.operation": "route", "semrouter.tenant": "acme"}


def test_a_batch_is_one_span_with_one_event_per_decision(otel: Otel) -> None:
    observe("route_many", [ROUTED, ABSTAINED], texts=["a", "b"], record_text=True)
    (span,) = otel.finished()
    assert span.attributes["semrouter.batch.size"] == 2
    assert span.attributes["semrouter.routed"] == 1
    assert span.attributes["semrouter.abstained"] == 1
    events = [dict(e.attributes) for e in span.events]
    assert [e.get("semrouter.route") for e in events] == ["billing", None]
    assert [e["semrouter.text"] for e in events] == ["a", "b"]


def test_the_span_nests_under_the_callers_span(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("chain run") as parent:
        _observe([ROUTED])
    ours, theirs = otel.finished()
    assert ours.name == "semrouter route"
    assert ours.parent is not None and ours.parent.span_id == parent.get_span_context().span_id
    assert ours.context.trace_id == theirs.context.trace_id


def test_routing_span_is_current_while_encoding_and_observe_fills_it(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request"), routing_span("route", tenant="acme"):
        with tracer.start_as_current_span("POST /embeddings"):  # the encoder's HTTP call
            pass
        _observe([ROUTED])
    encoder, ours, request = otel.finished()
    assert ours.name == "semrouter route" and encoder.parent.span_id == ours.context.span_id
    assert ours.parent.span_id == request.context.span_id
    assert ours.attributes["semrouter.route"] == "billing"
    assert len(otel.points("semrouter.routing.duration")) == 1


def test_the_routing_spans_own_observe(otel: Otel) -> None:
    with routing_span("route_many", tenant="acme") as span:
        span.observe([ROUTED], candidates=8, encode_s=0.001, search_s=0.0002, texts=["q"])
    (ours,) = otel.finished()
    assert ours.name == "semrouter route_many"
    assert ours.attributes["semrouter.candidates"] == 8
    assert ours.attributes["semrouter.tenant"] == "acme"
    assert "semrouter.text" not in ours.attributes
    (point,) = otel.points("semrouter.decisions")
    assert point.attributes["semrouter.operation"] == "route_many"


def test_an_error_is_recorded_on_the_span_and_counted(otel: Otel) -> None:
    with pytest.raises(RuntimeError), routing_span("route", tenant="acme"):
        raise RuntimeError("encoder down")
    (span,) = otel.finished()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["semrouter.outcome"] == "error"
    assert span.attributes["error.type"] == "RuntimeError"
    assert span.events[0].name == "exception"
    (point,) = otel.points("semrouter.decisions")
    assert point.attributes["semrouter.outcome"] == "error" and point.value == 1
    observe("route", [], error=ValueError("bad"))
    assert otel.finished()[-1].attributes["error.type"] == "ValueError"


def test_disabled_records_nothing(otel: Otel) -> None:
    configure_telemetry(enabled=False)
    with routing_span("route"):
        _observe([ROUTED])
    assert otel.finished() == []
    assert otel.points("semrouter.decisions") == []


def _child(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_the_global_providers_are_used_once_an_sdk_is_set() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import "
        "InMemorySpanExporter\n"
        "from semrouter import RouteMatch\n"
        "from semrouter._telemetry import observe, _active\n"
        "m = [RouteMatch(name='a', score=0.9, scores={'a': 0.9})]\n"
        "observe('route', m)  # API imported, no SDK: nothing recorded\n"
        "assert _active() is None\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "observe('route', m)\n"
        "print([s.attributes['semrouter.route'] for s in exporter.get_finished_spans()])"
    )
    assert _child(code) == "['a']"


def test_a_meter_provider_alone_is_found_too() -> None:
    code = (
        "from opentelemetry import metrics\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from opentelemetry.sdk.metrics.export import InMemoryMetricReader\n"
        "from semrouter import RouteMatch\n"
        "from semrouter._telemetry import observe\n"
        "reader = InMemoryMetricReader()\n"
        "metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))\n"
        "observe('route', [RouteMatch(name='a', score=0.9, scores={'a': 0.9})])\n"
        "data = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics\n"
        "print(sorted(m.name for m in data))"
    )
    assert _child(code) == (
        "['semrouter.decision.score', 'semrouter.decisions', 'semrouter.routing.duration']"
    )


def test_every_routing_method_of_the_router_records_one_span(otel: Otel) -> None:
    import asyncio

    from semrouter import FakeEncoder, Route, SemanticRouter

    routes = [Route("greet", ["hello there", "hi how are you"]), Route("bye", ["goodbye now"])]
    router = SemanticRouter(routes, encoder=FakeEncoder())
    tracer = otel.tracer_provider.get_tracer("app")
    with router, tracer.start_as_current_span("request") as parent:
        router.route_many(["hello, how are you?", "zzz qqq"])
        router.top_routes("goodbye now", 2)
        router.route_vectors(router.encoder.encode(["hi how are you"]))
        asyncio.run(router.aroute("hello there"))
    spans = {span.name: span for span in otel.finished()}
    assert set(spans) == {
        "request", "semrouter route", "semrouter top_routes", "semrouter route_vectors",
        "semrouter aroute",
    }  # fmt: skip
    ours = spans["semrouter route"]
    assert ours.parent is not None and ours.parent.span_id == parent.get_span_context().span_id
    assert ours.attributes["semrouter.batch.size"] == 2
    events = [dict(e.attributes) for e in ours.events]
    assert events[0]["semrouter.route"] == "greet" and events[0]["semrouter.threshold"] > 0
    assert events[1]["semrouter.outcome"] == "abstained"
    assert ours.attributes["semrouter.encode.duration"] > 0
    assert spans["semrouter route_vectors"].attributes["semrouter.encode.duration"] == 0
