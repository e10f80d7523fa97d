"""router.fit / router.evaluate on small synthetic data (FakeEncoder: words decide meaning)."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from semrouter import (
    ConfigurationError,
    FakeEncoder,
    Route,
    SemanticRouter,
    StaleCalibrationWarning,
)
from semrouter._learned import FLOOR_RATIO
from semrouter.cli import main

TOPICS = {
    "flights": ["flight", "plane", "airport", "ticket", "fly", "boarding"],
    "weather": ["rain", "sunny", "forecast", "weather", "cold", "umbrella"],
    "music": ["song", "jazz", "play", "album", "band", "guitar"],
}


def make_data(seed: int, per_route: int = 30, none: int = 30) -> tuple[list[str], list[str | None]]:
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[str | None] = []
    for name, words in TOPICS.items():
        for _ in range(per_route):
            texts.append(" ".join(rng.choice(words, 3)))
            labels.append(name)
    for i in range(none):
        texts.append(f"unrelated{i} gibberish{i % 7} noise")
        labels.append(None)
    return texts, labels


def make_router(**options: object) -> SemanticRouter:
    routes = [
        Route(name, [f"{a} {b}" for a, b in itertools.pairwise(words)])
        for name, words in TOPICS.items()
    ]
    return SemanticRouter(routes, encoder=FakeEncoder(), **options)  # type: ignore[arg-type]


def test_fit_learns_to_route_and_to_abstain() -> None:
    router = make_router()
    texts, labels = make_data(0)
    report = router.fit(texts, labels)
    assert report.n == pytest.approx(0.2 * len(texts), abs=4)  # held out, not training data
    assert report.accuracy >= 0.9
    test_texts, test_labels = make_data(1)
    after = router.evaluate(test_texts, test_labels)
    assert after.accuracy >= 0.9 and after.oos_recall is not None and after.oos_recall >= 0.8
    assert router.route("jazz album guitar").name == "music"
    assert router.route("unrelated99 gibberish3 noise").name is None


def test_fit_beats_unfitted_thresholds_on_out_of_scope() -> None:
    texts, labels = make_data(0)
    test_texts, test_labels = make_data(1)
    before = make_router().evaluate(test_texts, test_labels)
    router = make_router()
    router.fit(texts, labels)
    assert router.evaluate(test_texts, test_labels).accuracy >= before.accuracy


def test_fit_is_deterministic_under_a_seed() -> None:
    texts, labels = make_data(0)
    a, b, c = make_router(), make_router(), make_router()
    a.fit(texts, labels, seed=3)
    b.fit(texts, labels, seed=3)
    c.fit(texts, labels, seed=4)
    assert a.calibration == b.calibration
    assert a.calibration is not None and c.calibration is not None
    assert a.calibration.heldout["rows"] == c.calibration.heldout["rows"]


def test_fit_embeds_each_text_once() -> None:
    router = make_router()
    encoder = router.encoder
    assert isinstance(encoder, FakeEncoder)
    encoder.reset_counts()
    texts, labels = make_data(0)
    router.fit(texts, labels)
    assert encoder.encoded_texts == len(texts)


def test_thresholds_only_without_head() -> None:
    router = make_router()
    texts, labels = make_data(0)
    router.fit(texts, labels, head=False, per_route_thresholds=True)
    assert router.calibration is not None and router.calibration.head is None
    assert set(router.calibration.thresholds) == set(TOPICS)
    assert all(-1 <= t <= 1 for t in router.calibration.thresholds.values())
    assert router.threshold_for("music") == router.calibration.thresholds["music"]


def test_explicit_validation_set() -> None:
    router = make_router()
    texts, labels = make_data(0)
    val_texts, val_labels = make_data(2, per_route=5, none=5)
    report = router.fit(texts, labels, validation=(val_texts, val_labels))
    assert report.n == len(val_texts)


def test_stale_after_a_route_change() -> None:
    router = make_router()
    router.fit(*make_data(0))
    assert not router.calibration_stale
    with pytest.warns(StaleCalibrationWarning):  # said when the routes change
        router.add(Route("food", ["pizza pasta", "sushi noodles"]))
    assert router.calibration_stale
    learned = router._state.learned
    assert learned is not None
    unfitted = max(
        learned.training.thresholds_by_route()["food"],
        FLOOR_RATIO * router.encoder.default_threshold,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        match = router.route("pizza pasta")  # warned once only
        router.update(Route("food", ["pizza pasta", "sushi noodles", "ramen"]))
    assert match.name == "food"  # plain routing still works
    assert match.threshold == unfitted  # not the fitted one: learnt from the utterances
    router.update(Route("food", ["pizza pasta", "sushi noodles"]))
    router.remove("food")
    assert not router.calibration_stale  # the same routes again: the fit applies again


def test_persisted_and_reloaded_without_refitting(tmp_path: Path) -> None:
    router = make_router(path=tmp_path / "db")
    router.fit(*make_data(0))
    file = tmp_path / "router.json"
    router.save(file)
    queries = ["jazz album guitar", "rain forecast umbrella", "unrelated5 gibberish5 noise"]
    expected = router.route_many(queries)
    router.close()
    assert json.loads(file.read_text())["calibration"]["head"]["format"]
    loaded = SemanticRouter.load(file)
    assert loaded.calibration == router.calibration
    for got, want in zip(loaded.route_many(queries), expected):  # vectors read back: float32
        assert (got.name, got.threshold) == (want.name, want.threshold)
        assert got.utterance == want.utterance
        assert got.scores == pytest.approx(want.scores, abs=1e-6)
    loaded.close()


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (["a"], ["nope"], "does not hold"),
        (["a", "b"], ["music"], "2 texts but 1 labels"),
        ([], [], "labelled example queries"),
        ("jazz", ["music"], "lists"),
    ],
)
def test_bad_fit_input(texts: list[str], labels: list[str | None], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_router().fit(texts, labels)


def test_evaluate_warns_about_stored_utterances() -> None:
    router = make_router()
    with pytest.warns(UserWarning, match="stored route utterances"):
        report = router.evaluate(["jazz play", "rain sunny"], ["music", "weather"])
    assert report.accuracy == 1.0


def test_cli_fit_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    router = make_router(path=tmp_path / "db")
    config = tmp_path / "router.yaml"
    router.save(config)
    router.close()
    texts, labels = make_data(0)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": x}) for t, x in zip(texts, labels)))
    assert main(["fit", str(config), str(data), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr()
    assert "accuracy" in out.out and "encoding [" in out.err
    assert json.loads((tmp_path / "r.json").read_text())["accuracy"] >= 0.9
    test_texts, test_labels = make_data(1)
    csv_file = tmp_path / "test.csv"
    csv_file.write_text(
        "text,label\n" + "\n".join(f"{t},{x or ''}" for t, x in zip(test_texts, test_labels))
    )
    assert main(["eval", str(config), str(csv_file)]) == 0
    assert "out-of-scope recall" in capsys.readouterr().out
    assert main(["eval", str(config), str(tmp_path / "missing.csv")]) == 2


def test_none_share_weighs_the_held_out_none_rows() -> None:
    from semrouter.training._fitting import _share_weights

    labels = np.array([0, 0, 0, 1, 1, 1, -1, -1])
    weights = _share_weights(labels, 0.5)
    assert weights is not None
    assert weights[labels < 0].sum() == pytest.approx(weights[labels >= 0].sum())
    assert weights.sum() == pytest.approx(len(labels))
    assert _share_weights(labels, None) is None
    assert _share_weights(np.array([0, 1]), 0.5) is None  # no None rows: nothing to weigh


def test_validation_alone_is_enough() -> None:
    router = make_router()
    val_texts, val_labels = make_data(2, per_route=10, none=10)
    report = router.fit([], [], validation=(val_texts, val_labels))
    assert report.n == len(val_texts) and router.calibration is not None


# --- cross-fitting: the held-out texts choose the thresholds out of fold, then train the head ---


def test_held_out_texts_also_train_the_head() -> None:
    """Words only the validation texts use are learnt: they train the head kept (without
    that, "zeppelin blimp" lies nearest to flights: 0.35 against music's 0.10)."""
    router = make_router()
    texts, labels = make_data(0, none=10)
    val_texts, val_labels = make_data(2, per_route=20, none=10)
    val_texts += [f"zeppelin blimp dirigible{i}" for i in range(20)]
    val_labels += ["music"] * 20
    router.fit(texts, labels, validation=(val_texts, val_labels))
    match = router.route("zeppelin blimp")
    assert match.name == "music"
    assert match.scores["music"] > max(match.scores["flights"], match.scores["weather"]) + 0.2


def test_the_report_is_measured_out_of_fold() -> None:
    """Labels that are noise: the head kept fits them, the report must not claim it did."""
    router = make_router()
    rng = np.random.default_rng(5)
    names = sorted(TOPICS)
    noise = [f"word{i} other{i} thing{i}" for i in range(90)]
    noise_labels: list[str | None] = [names[i] for i in rng.integers(0, 3, size=90)]
    report = router.fit(*make_data(0), validation=(noise, noise_labels))
    assert report.n == 90
    assert report.in_scope_accuracy is not None and report.in_scope_accuracy < 0.6  # chance
    router.configure(threshold=-1.0)  # measure the ranking only
    seen = router.evaluate(noise, noise_labels)  # the texts the final head trained on
    assert seen.accuracy > report.in_scope_accuracy + 0.25


def test_few_held_out_texts_only_choose_thresholds() -> None:
    """Below MIN_ROWS_PER_FOLD rows per fold the held-out texts never reach the head."""
    texts, labels = make_data(0)
    heads = []
    for seed in (2, 3):
        router = make_router()
        small = make_data(seed, per_route=3, none=3)  # 12 rows < 5 folds x 10
        router.fit(texts, labels, validation=small)
        assert router.calibration is not None and router.calibration.head is not None
        heads.append(router.calibration.head["weights"])
    assert heads[0] == heads[1]  # same training rows: the same head, bit for bit
