"""The gate (issue 21, point 5): a candidate that routes a gold set significantly worse is
refused, in Python (``semrouter.gate``) and on the command line (``semrouter eval --baseline
--candidate``), with a report of what got worse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semrouter import (
    ConfigurationError,
    FakeEncoder,
    GateRefusedError,
    GateReport,
    Route,
    SemanticRouter,
    gate,
)
from semrouter.cli import main
from semrouter.training._evaluation import mcnemar_z, significantly_better

ROUTES = [
    Route("flights", ["book a flight to paris", "find me a plane ticket", "cheap flights"]),
    Route("weather", ["will it rain tomorrow", "weather forecast for today", "is it sunny"]),
    Route("billing", ["where is my invoice", "pay my bill", "refund my payment"]),
]
GOLD = [
    ("book a flight to rome", "flights"),
    ("a plane ticket to london", "flights"),
    ("cheap flights to paris", "flights"),
    ("flight to paris tomorrow", "flights"),
    ("rain tomorrow in paris", "weather"),
    ("the weather forecast", "weather"),
    ("is it sunny today", "weather"),
    ("will it rain today", "weather"),
    ("my invoice please", "billing"),
    ("pay my invoice", "billing"),
    ("refund my bill", "billing"),
    ("where is my refund", "billing"),
    ("tell me a joke", None),
    ("what is the meaning of life", None),
]
TEXTS = [t for t, _ in GOLD]
LABELS = [label for _, label in GOLD]


def _router(routes: list[Route] = ROUTES, **kwargs: object) -> SemanticRouter:
    return SemanticRouter(routes, encoder=kwargs.pop("encoder", FakeEncoder()), **kwargs)  # type: ignore[arg-type]


def test_the_z_test_is_the_one_fit_uses() -> None:
    assert mcnemar_z(0, 0) == 0.0
    assert mcnemar_z(9, 1) == pytest.approx(8 / 10**0.5)
    assert significantly_better(9, 1) and not significantly_better(6, 2)  # 4 > 2*sqrt(8)? no
    assert significantly_better(5, 0) and not significantly_better(4, 0)  # 4 = 2 * sqrt(4)


def test_the_same_router_passes_with_nothing_worse() -> None:
    encoder = FakeEncoder()
    with _router(encoder=encoder) as a, _router(encoder=encoder) as b:
        encoder.reset_counts()
        report = gate(a, b, TEXTS, LABELS)
        assert encoder.encoded_texts == len(TEXTS)  # one encoder model: encoded once
    assert isinstance(report, GateReport)
    assert report.passed and report.wins == report.losses == 0 and report.z == 0.0
    assert report.baseline_accuracy == report.candidate_accuracy
    assert report.baseline_accuracy >= 0.8  # the fixture routes sensibly
    assert report.worse_routes == [] and report.regressions == []
    assert {r.route: r.support for r in report.routes} == {
        "flights": 4,
        "weather": 4,
        "billing": 4,
        None: 2,
    }


def test_a_significantly_worse_candidate_is_refused_with_what_got_worse() -> None:
    # The candidate lost the weather route's utterances but one, and abstains much more.
    worse = [ROUTES[0], Route("weather", ["is it sunny"]), ROUTES[2]]
    with _router() as baseline, _router(worse, threshold=0.6) as candidate:
        report = gate(baseline, candidate, TEXTS, LABELS)
    assert not report.passed
    assert report.losses > report.wins and report.z < -2.0
    assert report.candidate_accuracy < report.baseline_accuracy
    worst = report.worse_routes[0]
    assert worst.route in {"flights", "weather", "billing"}
    assert worst.candidate_right < worst.baseline_right
    assert len(report.regressions) == report.losses
    example = report.regressions[0]
    assert example.baseline == example.label and example.candidate != example.label
    table = report.to_table()
    assert "REFUSED" in table and example.text in table
    assert json.loads(report.to_json())["passed"] is False


def test_a_small_loss_is_not_significant() -> None:
    # One route gone: only the rows labelled with it are lost, 4 of 14.
    with _router() as baseline, _router([*ROUTES[:2], Route("billing", ["zzz"])]) as candidate:
        report = gate(baseline, candidate, TEXTS, LABELS, max_examples=2)
    assert report.losses == 4 and report.wins == 0
    assert report.passed  # 4 = 2 * sqrt(4): not beyond z = 2
    assert len(report.regressions) == 2
    assert report.worse_routes[0].route == "billing"
    refused = gate(_router(), _router([*ROUTES[:2], Route("billing", ["zzz"])]), TEXTS, LABELS, z=1)
    assert not refused.passed


def test_labels_are_checked() -> None:
    with _router() as a, _router(ROUTES[:2]) as b:
        with pytest.raises(ConfigurationError, match="neither router"):
            gate(a, b, ["x"], ["nope"])
        with pytest.raises(ConfigurationError, match="labels"):
            gate(a, b, ["x", "y"], ["flights"])
        # a route only the baseline holds: the candidate misses its rows, no error
        report = gate(a, b, TEXTS, LABELS)
    assert [r.route for r in report.worse_routes] == ["billing"]


# -- the command line -----------------------------------------------------------------------


def _files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    old, same, new = tmp_path / "old.yaml", tmp_path / "same.yaml", tmp_path / "new.yaml"
    with _router(path=tmp_path / "db") as router:
        router.save(old)
        router.save(same)
    worse = [ROUTES[0], Route("weather", ["is it sunny"]), ROUTES[2]]
    with _router(worse, threshold=0.6, path=tmp_path / "db2") as router:
        router.save(new)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"text": t, "label": x}) + "\n" for t, x in GOLD))
    return old, same, new, gold


def test_cli_gate_passes_and_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, same, new, gold = _files(tmp_path)
    args = ["eval", "--baseline", str(old), "--candidate"]
    assert main([*args, str(same), str(gold)]) == 0
    assert "gate: PASSED" in capsys.readouterr().out
    report = tmp_path / "gate.json"
    assert main([*args, str(new), str(gold), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "worse on" in out and "texts the candidate now gets wrong" in out
    assert json.loads(report.read_text())["passed"] is False


def test_cli_gate_never_touches_the_files_collections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _, new, gold = _files(tmp_path)
    new.write_text(new.read_text().replace("path: db2", "path: db"))  # the same collection
    before = sorted(p.name for p in (tmp_path / "db").rglob("*"))
    assert main(["eval", "--baseline", str(old), "--candidate", str(new), str(gold)]) == 1
    assert sorted(p.name for p in (tmp_path / "db").rglob("*")) == before
    with SemanticRouter.open(path=tmp_path / "db", encoder=FakeEncoder()) as stored:
        assert len(stored.get("weather").utterances) == 3  # the candidate was not synced


def test_cli_gate_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, _, _, gold = _files(tmp_path)
    assert main(["eval", "--baseline", str(old), str(gold)]) == 2
    assert "--candidate" in capsys.readouterr().err
    assert main(["eval", str(gold)]) == 2
    assert "needs a router file" in capsys.readouterr().err


# -- fit(gate=...): a fit that routes the gold set worse is refused and stores nothing ----------
POISON = [(t, None) for t, label in GOLD if label == "flights"] * 6 + [
    (t, label) for t, label in GOLD if label not in (None, "flights")
] * 3


def test_fit_refused_by_its_gate_stores_nothing() -> None:
    with _router() as router:
        revision, before = router.revision, router.route_many(TEXTS)
        with pytest.raises(GateRefusedError) as refused:
            router.fit(*zip(*POISON), gate=(TEXTS * 2, LABELS * 2), folds=0, seed=1)
        report = refused.value.report
        assert isinstance(report, GateReport) and not report.passed
        assert "flights" in {r.route for r in report.worse_routes}
        assert router.calibration is None and router.revision == revision
        assert [m.name for m in router.route_many(TEXTS)] == [m.name for m in before]
        # The same fit without a gate is stored, and does route the gold set worse.
        router.fit(*zip(*POISON), folds=0, seed=1)
        assert router.calibration is not None and router.revision == revision + 1
        assert not gate_accuracy_kept(router, report.baseline_accuracy)


def test_fit_that_routes_the_gold_set_as_well_passes_its_gate() -> None:
    with _router() as router:
        router.fit(TEXTS * 3, LABELS * 3, gate=(TEXTS, LABELS), folds=0, seed=1)
        assert router.calibration is not None


def test_fit_gate_labels_are_checked() -> None:
    with _router() as router:
        with pytest.raises(ConfigurationError, match="neither router"):
            router.fit(TEXTS * 3, LABELS * 3, gate=(TEXTS, ["flihgts"] * len(TEXTS)))
        assert router.calibration is None


def gate_accuracy_kept(router: SemanticRouter, accuracy: float) -> bool:
    right = [m.name == label for m, label in zip(router.route_many(TEXTS), LABELS)]
    return sum(right) / len(right) >= accuracy
