"""Importers: semantic-router 0.x / 1.x files, RedisVL files, semantic-router Qdrant collections.

The source files are written here, in each library's documented format; nothing is read from
outside the test.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from semrouter import ConfigurationError, FakeEncoder, Route, SemanticRouter
from semrouter._importers import import_qdrant_collection, import_router
from semrouter.cli import main

SR0_ROUTER_JSON: dict[str, Any] = {
    # What semantic-router 0.x's RouteLayer.to_json (and LiteLLM's auto-router) writes.
    "encoder_type": "huggingface",
    "encoder_name": "sentence-transformers/all-MiniLM-L6-v2",
    "routes": [
        {
            "name": "politics",
            "utterances": ["isn't politics the best thing ever", "don't you love the president"],
            "description": "political talk",
            "function_schemas": None,
            "llm": None,
            "score_threshold": 0.82,
            "metadata": {"team": "news"},
        },
        {
            "name": "get_time",
            "utterances": ["what time is it in Rome", "tell me the time in Tokyo"],
            "description": None,
            "function_schemas": [{"name": "get_time", "parameters": {"timezone": "str"}}],
            "llm": {"module": "semantic_router.llms.openai", "class": "OpenAILLM"},
            "score_threshold": None,
            "metadata": {},
        },
    ],
}

SR1_ROUTER_YAML = """\
router_type: indexed
encoder:
  type: huggingface
  name: sentence-transformers/all-MiniLM-L6-v2
sparse_encoder: null
alpha: 0.3
top_k: 5
aggregation: mean
index:
  type: qdrant
  index_name: sr-index
  url: http://localhost:6333
confidence_threshold: 0.4
calibrator: null
refresh_interval: 60
routes:
  - name: chitchat
    utterances: ["how's the weather today?", "lovely weather today"]
    description: small talk
    confidence_threshold: 0.35
    metadata: {}
  - name: billing
    utterances: ["my invoice is wrong", "I was charged twice"]
    metadata: {queue: finance}
"""

REDISVL_YAML = """\
name: topic-router
routes:
  - name: technology
    references: ["what are the latest advancements in AI?", "tell me about new gadgets"]
    metadata: {category: tech}
    distance_threshold: 0.3
  - name: sports
    references: ["who won the game last night?", "football scores today"]
    metadata: {category: sports}
    distance_threshold: 0.45
vectorizer:
  type: hf
  model: sentence-transformers/all-MiniLM-L6-v2
routing_config:
  max_k: 1
  aggregation_method: avg
"""


def write(path: Path, content: str | dict[str, Any]) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def notes_with(result: Any, *words: str) -> list[str]:
    return [n for n in result.notes if all(w in n for w in words)]


# -- semantic-router 0.x ------------------------------------------------------------------------


def test_semantic_router_0_json(tmp_path: Path) -> None:
    result = import_router(write(tmp_path / "router.json", SR0_ROUTER_JSON))
    assert result.source_format == "semantic-router-0"
    assert result.encoder == {"type": "local"}
    politics, get_time = result.routes
    assert politics.threshold == pytest.approx(0.82)  # a cosine similarity, same model
    assert politics.description == "political talk"
    assert politics.metadata == {"team": "news"}
    assert get_time.threshold is None
    # The dynamic route's schema is kept and reported, never dropped silently.
    assert get_time.metadata["function_schemas"][0]["name"] == "get_time"
    assert notes_with(result, "get_time", "function_schemas")
    assert notes_with(result, "get_time", "'llm'")
    assert result.aggregation == "max"


def test_saved_import_loads_and_routes(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    result = import_router(write(tmp_path / "router.json", SR0_ROUTER_JSON))
    saved = result.save(tmp_path / "out" / "router.yaml")
    with SemanticRouter.load(saved, encoder=fake_encoder) as router:
        assert router.route_names == ["politics", "get_time"]
        assert router.get("politics").threshold == pytest.approx(0.82)
        assert router.aggregation == "max"
        assert router.route("what time is it in Paris").name == "get_time"
    assert yaml.safe_load(saved.read_text())["encoder"] == {"type": "local"}


def test_openai_encoder_maps_to_openai_encoder(tmp_path: Path) -> None:
    data = {**SR0_ROUTER_JSON, "encoder_type": "openai", "encoder_name": "text-embedding-3-small"}
    result = import_router(write(tmp_path / "r.json", data))
    assert result.encoder == {"type": "openai", "model": "text-embedding-3-small"}
    assert result.routes[0].threshold == pytest.approx(0.82)


def test_unknown_encoder_needs_the_local_fallback(tmp_path: Path) -> None:
    data = {**SR0_ROUTER_JSON, "encoder_type": "cohere", "encoder_name": "embed-english-v3.0"}
    source = write(tmp_path / "r.json", data)
    result = import_router(source)
    assert result.encoder is None
    assert notes_with(result, "cohere:embed-english-v3.0", "no semrouter counterpart")
    with pytest.raises(ConfigurationError, match="local_fallback"):
        result.save(tmp_path / "out.yaml")
    assert not (tmp_path / "out.yaml").exists()

    fallback = import_router(source, local_fallback=True)
    assert fallback.encoder == {"type": "local"}
    # Thresholds measured with another model do not carry over, and say so.
    assert fallback.routes[0].threshold is None
    assert fallback.aggregation is None
    assert notes_with(fallback, "'politics'", "score_threshold=0.82", "dropped")


def test_sr0_yaml_and_unknown_keys_are_reported(tmp_path: Path) -> None:
    data = {**SR0_ROUTER_JSON, "extra_setting": 1}
    result = import_router(write(tmp_path / "r.yaml", yaml.safe_dump(data)))
    assert [r.name for r in result.routes] == ["politics", "get_time"]
    assert notes_with(result, "'extra_setting'", "not imported")


# -- semantic-router 1.x ------------------------------------------------------------------------


def test_semantic_router_1_yaml(tmp_path: Path) -> None:
    result = import_router(write(tmp_path / "router.yaml", SR1_ROUTER_YAML))
    assert result.source_format == "semantic-router-1"
    assert result.threshold == pytest.approx(0.4)
    chitchat, billing = result.routes
    assert chitchat.threshold == pytest.approx(0.35)
    assert billing.threshold is None
    assert billing.metadata == {"queue": "finance"}
    for key in ("alpha", "refresh_interval", "index", "top_k=5"):
        assert notes_with(result, key), key
    assert notes_with(result, "sr-index", "not reused")


def test_calibrated_thresholds_are_dropped(tmp_path: Path) -> None:
    text = SR1_ROUTER_YAML.replace(
        "calibrator: null", "calibrator: {method: platt, params: {a: 1.0, b: 0.0}}"
    )
    result = import_router(write(tmp_path / "router.yaml", text))
    assert result.threshold is None
    assert all(r.threshold is None for r in result.routes)
    assert result.aggregation is None
    assert notes_with(result, "platt", "calibrated")


def test_sr1_with_top_level_encoder_keys(tmp_path: Path) -> None:
    text = SR1_ROUTER_YAML.replace(
        "encoder:\n  type: huggingface\n  name: sentence-transformers/all-MiniLM-L6-v2\n",
        "encoder_type: openai\nencoder_name: text-embedding-3-large\n",
    )
    result = import_router(write(tmp_path / "router.yaml", text))
    assert result.source_format == "semantic-router-1"
    assert result.encoder == {"type": "openai", "model": "text-embedding-3-large"}
    assert not notes_with(result, "encoder_type")


@pytest.mark.parametrize("kind", ["decision", "chain", "merge"])
def test_other_router_types_are_reported(tmp_path: Path, kind: str) -> None:
    text = SR1_ROUTER_YAML.replace("router_type: indexed", f"router_type: {kind}")
    result = import_router(write(tmp_path / "router.yaml", text))
    assert notes_with(result, f"router_type {kind!r}")
    assert len(result.routes) == 2


# -- RedisVL ------------------------------------------------------------------------------------


def test_redisvl_distance_becomes_similarity(tmp_path: Path) -> None:
    result = import_router(write(tmp_path / "router.yaml", REDISVL_YAML))
    assert result.source_format == "redisvl"
    technology, sports = result.routes
    assert technology.threshold == pytest.approx(0.7)
    assert sports.threshold == pytest.approx(0.55)
    assert technology.utterances[0] == "what are the latest advancements in AI?"
    assert technology.metadata == {"category": "tech"}
    assert result.collection == "topic-router"
    assert notes_with(result, "aggregation_method")
    config = result.to_config()
    assert config["index"] == {"collection": "topic-router"}
    assert config["aggregation"] == "max"


def test_redisvl_default_hf_model_is_not_minilm(tmp_path: Path) -> None:
    text = REDISVL_YAML.replace("  model: sentence-transformers/all-MiniLM-L6-v2\n", "")
    result = import_router(write(tmp_path / "router.yaml", text), local_fallback=True)
    assert "all-mpnet-base-v2" in (result.source_encoder or "")
    assert all(r.threshold is None for r in result.routes)


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", "mapping"),
        ("name: x\n", "routes"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("routes: [{name: a, references: [hi], distance_threshold: high}]\n", "number"),
        ("routes: [{name: a, utterances: []}]\n", "no route"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        import_router(write(tmp_path / "bad.yaml", content))


def test_route_without_utterances_is_reported(tmp_path: Path) -> None:
    data = {**SR0_ROUTER_JSON}
    data["routes"] = [*SR0_ROUTER_JSON["routes"], {"name": "empty", "utterances": []}]
    result = import_router(write(tmp_path / "r.json", data))
    assert "empty" not in [r.name for r in result.routes]
    assert notes_with(result, "'empty'", "no utterances")


# -- semantic-router Qdrant collections --------------------------------------------------------


def sr_collection(client: QdrantClient, name: str, encoder: FakeEncoder, **extra: Any) -> None:
    """A collection as semantic-router's QdrantIndex writes it."""
    client.create_collection(
        name, vectors_config=models.VectorParams(size=encoder.dimension, distance="Cosine")
    )
    rows = [
        ("greet", "hello there", {"sr_description": "greetings", "sr_confidence_threshold": 0.5}),
        ("greet", "hi how are you", {"sr_description": "greetings"}),
        ("bye", "goodbye now", {}),
        ("bye", "see you later", {"owner": "ops"}),
    ]
    vectors = encoder.encode([text for _, text, _ in rows])
    client.upsert(
        name,
        points=[
            models.PointStruct(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{route}:{text}:{extra}")),
                vector=vector.tolist(),
                payload={"sr_route": route, "sr_utterance": text, "metadata": meta, **extra},
            )
            for (route, text, meta), vector in zip(rows, vectors)
        ],
    )


def test_qdrant_collection_reuses_vectors_of_the_same_model() -> None:
    client = QdrantClient(":memory:")
    sr_collection(client, "sr-index", FakeEncoder(dimension=64))
    encoder = FakeEncoder(dimension=64)
    result = import_qdrant_collection(client, "sr-index", encoder=encoder, sample=2)
    assert result.source_format == "semantic-router-qdrant"
    greet, bye = sorted(result.routes, key=lambda r: r.name != "greet")
    assert sorted(greet.utterances) == ["hello there", "hi how are you"]  # Qdrant keeps no order
    assert greet.description == "greetings"
    assert greet.threshold == pytest.approx(0.5)
    assert bye.metadata == {"owner": "ops"}
    assert len(result.vectors) == 4
    assert notes_with(result, "reused")
    assert encoder.encoded_texts == 2  # the check re-encoded its sample, nothing more

    encoder.reset_counts()
    with SemanticRouter(result.routes, encoder=result.seeded_encoder(encoder)) as router:
        assert encoder.encoded_texts == 0  # the index was filled from the stored vectors
        assert router.route("hello there, how are you").name == "greet"
    assert encoder.encoded_texts == 1  # only the query


def test_qdrant_collection_of_another_model_is_re_encoded() -> None:
    client = QdrantClient(":memory:")
    sr_collection(client, "sr-index", FakeEncoder(dimension=64, model_id="other"))
    # A target of another width cannot have made the stored 64-d vectors.
    narrow = FakeEncoder(dimension=32)
    result = import_qdrant_collection(client, "sr-index", encoder=narrow)
    assert result.vectors == {}
    assert result.seeded_encoder(narrow) is narrow
    assert notes_with(result, "re-encoded")
    assert all(r.threshold is None for r in result.routes)
    assert notes_with(result, "sr_confidence_threshold=0.5", "dropped")


def test_qdrant_same_width_other_vectors_are_not_reused() -> None:
    client = QdrantClient(":memory:")
    sr_collection(client, "sr-index", FakeEncoder(dimension=64))
    other = FakeEncoder(dimension=64)
    # Another "model" of the same width: rotate the words by prefixing every text.
    other.encode_batch = lambda texts: FakeEncoder.encode_batch(  # type: ignore[method-assign]
        other, [f"zz {t} qq" for t in texts]
    )
    result = import_qdrant_collection(client, "sr-index", encoder=other)
    assert result.vectors == {}
    assert notes_with(result, "do not match")


def test_qdrant_namespaces() -> None:
    client = QdrantClient(":memory:")
    encoder = FakeEncoder(dimension=64)
    sr_collection(client, "sr", encoder, namespace="a")
    client.upsert(
        "sr",
        points=[
            models.PointStruct(
                id=str(uuid.uuid4()),
                vector=encoder.encode(["other space"])[0].tolist(),
                payload={"sr_route": "other", "sr_utterance": "other space", "namespace": "b"},
            )
        ],
    )
    with pytest.raises(ConfigurationError, match="namespace"):
        import_qdrant_collection(client, "sr", encoder=encoder)
    result = import_qdrant_collection(client, "sr", encoder=encoder, namespace="b")
    assert [r.name for r in result.routes] == ["other"]


def test_qdrant_missing_collection() -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        import_qdrant_collection(QdrantClient(":memory:"), "nope", encoder=FakeEncoder())


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_import_writes_a_loadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_encoder: FakeEncoder
) -> None:
    source = write(tmp_path / "router.yaml", REDISVL_YAML)
    out = tmp_path / "semrouter.yaml"
    assert main(["import", str(source), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "redisvl" in captured.out
    assert "distance_threshold 0.3 -> similarity threshold 0.7" in captured.out
    with SemanticRouter.load(out, encoder=fake_encoder) as router:
        assert router.get("technology").threshold == pytest.approx(0.7)


def test_cli_import_unknown_encoder_fails_without_local(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "router.yaml", REDISVL_YAML.replace("type: hf", "type: cohere"))
    out = tmp_path / "semrouter.yaml"
    assert main(["import", str(source), "-o", str(out)]) == 2
    assert "--local" in capsys.readouterr().err
    assert not out.exists()
    assert main(["import", str(source), "-o", str(out), "--local"]) == 0
    assert yaml.safe_load(out.read_text())["encoder"] == {"type": "local"}


def test_cli_import_without_output_prints_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "router.json", SR0_ROUTER_JSON)
    assert main(["import", str(source)]) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out)["routes"][0]["name"] == "politics"
    assert "function_schemas" in captured.err  # notes go to stderr when YAML goes to stdout


def test_cli_info_summarises_the_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_encoder: FakeEncoder
) -> None:
    words = {"flights": ["flight", "plane", "airport"], "weather": ["rain", "sunny", "forecast"]}
    routes = [Route(name, [" ".join(w)]) for name, w in words.items()]
    texts = [f"{w} {w} please" for ws in words.values() for w in ws] * 4
    labels = [name for name, ws in words.items() for _ in ws] * 4
    file = tmp_path / "router.yaml"
    with SemanticRouter(routes, encoder=fake_encoder, path=tmp_path / "db") as router:
        router.fit([*texts, "zz qq", "xx yy"] * 2, [*labels, None, None] * 2)
        router.save(file)
    head = yaml.safe_load(file.read_text())["calibration"]["head"]
    assert len(head["weights"]) > 100  # base64 float32 bytes in the file...
    assert main(["info", str(file)]) == 0
    out = capsys.readouterr().out
    assert head["weights"] not in out  # ...but not on the screen
    assert "head: logistic, 2 routes" in out
    assert "calibration: fitted for 'fake-bow|dim=64|l2'" in out
    assert "- flights: 1 utterances" in out


def test_to_router_applies_the_imported_options(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    result = import_router(write(tmp_path / "router.yaml", REDISVL_YAML))
    with result.to_router(encoder=fake_encoder) as router:
        assert router.collection == "topic-router"
        assert router.aggregation == "max"
        assert router.threshold_for("sports") == pytest.approx(0.55)
        assert router.route("football scores today").name == "sports"


def test_cli_imports_a_collection_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = QdrantClient(path=str(tmp_path / "sr"))
    sr_collection(source, "sr-index", FakeEncoder(dimension=64))
    source.close()
    out = tmp_path / "router.yaml"
    argv = ["import", "sr-index", "--qdrant-path", str(tmp_path / "sr"), "--encoder", "fake"]
    assert main([*argv, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 vectors reused" in printed
    assert "router_db" in printed
    encoder = FakeEncoder(dimension=64)
    with SemanticRouter.load(out, encoder=encoder) as router:
        assert encoder.encoded_texts == 0  # the imported index was kept, nothing re-encoded
        assert router.threshold_for("greet") == pytest.approx(0.5)
        assert router.route("hello there").name == "greet"
    assert main(argv) == 2  # a collection import needs somewhere to write
    assert "--output" in capsys.readouterr().err


@settings(max_examples=40, deadline=None)
@given(
    distance=st.floats(min_value=0.0, max_value=2.0, allow_nan=False),
    names=st.lists(
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1).filter(
            lambda s: s.strip() == s and s.strip()
        ),
        min_size=1,
        max_size=4,
        unique=True,
    ),
)
def test_redisvl_round_trip_property(
    tmp_path_factory: Any, distance: float, names: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    data = {
        "name": "r",
        "vectorizer": {"type": "hf", "model": "sentence-transformers/all-MiniLM-L6-v2"},
        "routes": [
            {"name": n, "references": [f"{n} example"], "distance_threshold": distance}
            for n in names
        ],
    }
    result = import_router(write(folder / "r.yaml", yaml.safe_dump(data)))
    assert [r.name for r in result.routes] == names
    assert all(r.threshold == pytest.approx(1.0 - distance, abs=1e-6) for r in result.routes)
    saved = result.save(folder / "out.yaml")
    again = yaml.safe_load(saved.read_text(encoding="utf-8"))
    assert [r["name"] for r in again["routes"]] == names
    assert [r["utterances"] for r in again["routes"]] == [[f"{n} example"] for n in names]
