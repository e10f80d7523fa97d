"""Floats in route metadata survive Qdrant Edge, whose JSON reader does not round-trip every
double exactly: a reopen is neither refused as bit rot nor rewrites the payloads."""

from __future__ import annotations

from pathlib import Path

from semrouter import FakeEncoder, Route, SemanticRouter


def test_float_metadata_reopens_without_a_false_damage_report(tmp_path: Path) -> None:
    routes = [
        Route("a", ["hello there"], metadata={"x": -0.47915218808433363, "y": [0.1 + 0.2]}),
        Route("b", ["goodbye now"]),
    ]
    SemanticRouter(routes, encoder=FakeEncoder(), path=tmp_path).close()
    with SemanticRouter(routes, encoder=FakeEncoder(), path=tmp_path) as again:
        assert again.last_sync.updated == 0 and again.get("a").metadata["x"] == -0.47915218808433363
