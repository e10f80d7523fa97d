"""``semrouter calibrate`` (issue 21, point 5): thresholds chosen from labelled replayed traffic,
never worse than the current ones on it, written as a new file or a diff."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from semrouter import ConfigurationError, FakeEncoder, SemanticRouter
from semrouter._traffic import _replay, calibrate_from_traffic
from semrouter.cli import main
from tests.unit.core.test_gate import GOLD, LABELS, ROUTES, TEXTS


def _right(router: SemanticRouter, texts: list[str], labels: list[str | None]) -> int:
    return sum(m.name == x for m, x in zip(router.route_many(texts), labels))


def test_too_high_a_threshold_is_lowered_and_routes_better() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), threshold=0.7) as router:
        before = _right(router, TEXTS, LABELS)
        result = calibrate_from_traffic(router, TEXTS, LABELS)
        assert router.threshold_for("flights") == 0.7  # the router is not changed
    assert result.changed and not result.per_route
    assert result.before_right == before and result.after_right > before
    assert result.wins - result.losses == result.after_right - result.before_right
    assert len(set(result.thresholds.values())) == 1  # one for all by default
    assert {c.route for c in result.changes} == {"flights", "weather", "billing"}
    assert all(c.before == 0.7 and c.after < 0.7 for c in result.changes)
    # the promise, checked by routing for real with the new thresholds on every route
    routes = [r.model_copy(update={"threshold": result.thresholds[r.name]}) for r in ROUTES]
    with SemanticRouter(routes, encoder=FakeEncoder()) as new:
        assert _right(new, TEXTS, LABELS) == result.after_right
    assert "thresholds changed" in result.summary()


def test_no_change_when_nothing_routes_the_traffic_better() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        first = calibrate_from_traffic(router, TEXTS, LABELS)
    routes = [r.model_copy(update={"threshold": first.thresholds[r.name]}) for r in ROUTES]
    with SemanticRouter(routes, encoder=FakeEncoder()) as calibrated:
        again = calibrate_from_traffic(calibrated, TEXTS, LABELS, per_route=True)
    assert not again.changed and again.changes == []
    assert again.after_right == again.before_right
    assert "the current ones stay" in again.summary()


@pytest.mark.parametrize("seed", range(6))
def test_never_worse_on_the_traffic_whatever_the_thresholds(seed: int) -> None:
    # Random per-route thresholds and a random labelled sample: whatever calibrate proposes
    # routes the traffic at least as well, checked by routing for real.
    rng = random.Random(seed)
    routes = [r.model_copy(update={"threshold": rng.uniform(0.0, 0.9)}) for r in ROUTES]
    sample = rng.sample(GOLD, 10)
    texts, labels = [t for t, _ in sample], [x for _, x in sample]
    with SemanticRouter(routes, encoder=FakeEncoder()) as router:
        before = _right(router, texts, labels)
        result = calibrate_from_traffic(router, texts, labels, per_route=seed % 2 == 1)
    new = [r.model_copy(update={"threshold": result.thresholds[r.name]}) for r in routes]
    with SemanticRouter(new, encoder=FakeEncoder()) as calibrated:
        after = _right(calibrated, texts, labels)
    assert after >= before and after == result.after_right


def test_the_two_decision_rules() -> None:
    import numpy as np

    order = np.array([[0, 1], [1, 0], [-1, -1]])
    scores = np.array([[0.4, 0.3], [0.9, 0.1], [-2.0, -2.0]])
    cut = np.array([0.5, 0.2])
    assert _replay(order, scores, cut, 0).tolist() == [1, 1, -1]  # the first that passes
    assert _replay(order, scores, cut, 1).tolist() == [-1, 1, -1]  # the first, if it passes


def test_labels_are_checked() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        with pytest.raises(ConfigurationError, match="does not hold"):
            calibrate_from_traffic(router, ["x"], ["nope"])
        with pytest.raises(ConfigurationError, match="labels"):
            calibrate_from_traffic(router, ["x"], [])


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "router.yaml"
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), threshold=0.7, path=tmp_path / "db") as r:
        r.save(config)
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("".join(json.dumps({"text": t, "label": x}) + "\n" for t, x in GOLD))
    return config, traffic


def test_cli_writes_a_new_file_that_routes_better(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, traffic = files
    original = config.read_text()
    out = config.with_name("calibrated.yaml")
    assert main(["calibrate", str(config), str(traffic), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert config.read_text() == original
    routes = yaml.safe_load(out.read_text())["routes"]
    assert all(route["threshold"] < 0.7 for route in routes)
    with SemanticRouter.load(config) as old, SemanticRouter.load(out) as new:
        assert _right(new, TEXTS, LABELS) > _right(old, TEXTS, LABELS)


def test_cli_diff_prints_only_the_thresholds(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, traffic = files
    original = config.read_text()
    assert main(["calibrate", str(config), str(traffic), "--diff"]) == 0
    captured = capsys.readouterr()
    assert config.read_text() == original  # nothing written
    changed = [
        line
        for line in captured.out.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed and all("threshold:" in line for line in changed)
    assert captured.out.startswith(f"--- a/{config}")
    assert "thresholds changed" in captured.err


def test_cli_in_place_and_refusals(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, traffic = files
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert main(["calibrate", str(config), str(traffic), "-o", str(other / "x.yaml")]) == 2
    assert "beside it" in capsys.readouterr().err
    assert main(["calibrate", str(config), str(traffic)]) == 0  # in place, as fit does
    assert all(r["threshold"] < 0.7 for r in yaml.safe_load(config.read_text())["routes"])
    assert main(["calibrate", str(config), str(traffic)]) == 0
    assert "the current ones stay" in capsys.readouterr().out
