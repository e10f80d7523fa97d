from __future__ import annotations

import json
from pathlib import Path

import pytest

from semrouter import ConfigurationError, FakeEncoder, Route, SemanticRouter

ROUTES = [
    Route("flights", ["book a flight to paris"], threshold=0.2, description="travel"),
    Route("weather", ["what is the weather today"], metadata={"k": [1, 2]}),
]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_and_load_round_trip(tmp_path: Path, suffix: str) -> None:
    router = SemanticRouter(
        ROUTES,
        encoder=FakeEncoder(dimension=32),
        path=tmp_path / "db",
        threshold=0.25,
        aggregation="max",
        collection="demo",
    )
    file = tmp_path / f"router{suffix}"
    router.save(file)
    router.close()
    encoder = FakeEncoder(dimension=32)
    loaded = SemanticRouter.load(file, encoder=encoder)
    assert loaded.routes == ROUTES
    assert (loaded.threshold, loaded.aggregation, loaded.collection) == (0.25, "max", "demo")
    assert encoder.encoded_texts == 0  # same folder, same vectors
    loaded.close()
    # the encoder spec in the file rebuilds the same fake encoder
    rebuilt = SemanticRouter.load(file)
    assert isinstance(rebuilt.encoder, FakeEncoder) and rebuilt.encoder.dimension == 32
    rebuilt.close()


def test_saved_config_has_no_secrets(tmp_path: Path) -> None:
    router = SemanticRouter(ROUTES, encoder=FakeEncoder())
    file = tmp_path / "r.json"
    router.save(file)
    data = json.loads(file.read_text())
    assert "api_key" not in json.dumps(data)
    assert data["encoder"] == {"type": "fake", "model_id": "fake-bow", "dimension": 64}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.yaml", "routes: [", "not valid YAML"),
        ("r.json", "{", "not valid JSON"),
        ("r.yaml", "- a\n- b\n", "mapping"),
        ("r.yaml", "routes: []\nversion: 99\n", "version 99"),
        ("r.yaml", "routes: [{name: a, utterances: []}]\n", "at least one utterance"),
        ("r.yaml", "routes: []\nsurprise: 1\n", "surprise"),
        ("r.yaml", "routes: !!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
        ("r.toml", "", "yaml"),
    ],
)
def test_bad_config_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    file = tmp_path / name
    file.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        SemanticRouter.load(file, encoder=FakeEncoder())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        SemanticRouter.load(tmp_path / "nope.yaml")
