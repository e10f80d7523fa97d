"""The language flag: a request the encoder cannot read abstains with a reason that says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from semrouter import FakeEncoder, Route, RouteMatch, SemanticRouter
from semrouter._language import flag_unread, guess_language, unread_language
from semrouter.encoders import Encoder, MultilingualEncoder

SET = Path(__file__).parent / "data" / "non_english.json"


class EnglishFake(FakeEncoder):
    """The fake encoder, declaring that it reads English only (as LocalEncoder does)."""

    languages = frozenset({"en"})


@pytest.fixture
def router() -> Iterator[SemanticRouter]:
    routes = [
        Route("refunds", ["I want my money back", "how do I get a refund"]),
        Route("shipping", ["where is my parcel", "my delivery is late"]),
    ]
    with SemanticRouter(routes, encoder=EnglishFake(dimension=64), threshold=0.5) as router:
        yield router


# -- the guess -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("quiero un reembolso", "es"),
        ("¿dónde está mi pedido?", "es"),
        ("où est mon colis ?", "fr"),
        ("ich möchte mein Geld zurück", "de"),
        ("dov'è il mio pacco?", "it"),
        ("onde está a minha encomenda?", "pt"),
        ("waar is mijn pakket?", "nl"),
        ("Где моя посылка?", "und-Cyrl"),
        ("荷物はどこですか？", "ja"),
        ("我的包裹在哪里？", "und-Hani"),
        ("제 소포는 어디에 있나요?", "ko"),
        ("Πού είναι το δέμα μου;", "el"),
    ],
)
def test_guess_names_the_language(text: str, language: str) -> None:
    assert guess_language(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "where is my parcel?",
        "refund me",
        "book a flight to Los Angeles del Mar",  # names: capitalised words do not count
        "Mon meeting with Ma at the café",
        "a la carte menu please",
        "what does déjà vu mean",
        "play Despacito by Luis Fonsi",
        "XR-200 SKU 4411",
        "",
        "¿",
    ],
)
def test_english_and_too_little_are_not_flagged(text: str) -> None:
    assert guess_language(text) is None


def test_one_word_in_another_script_is_flagged() -> None:
    assert guess_language("Москва") == "und-Cyrl"
    # A name in another script inside an English request is not.
    assert guess_language("how do I say Москва in English") is None


def test_the_committed_set_is_flagged() -> None:
    data = {k: v for k, v in json.loads(SET.read_text()).items() if not k.startswith("_")}
    for language, texts in data.items():
        flagged = [guess_language(t) is not None for t in texts]
        # Measured: 19/20 and more per Latin-script language, every one in other scripts
        # (benchmarks/results/language_flag.txt); a broken word list falls far below.
        assert sum(flagged) >= len(texts) - (0 if language == "other scripts" else 3), language


def test_unread_language_depends_on_what_the_encoder_reads() -> None:
    assert unread_language("quiero un reembolso", frozenset({"en"})) == "es"
    assert unread_language("quiero un reembolso", frozenset({"en", "es"})) is None
    assert unread_language("quiero un reembolso", None) is None  # nothing declared
    assert unread_language("Где моя посылка?", frozenset({"en", "ru"})) is None
    assert unread_language("Где моя посылка?", frozenset({"en"})) == "und-Cyrl"
    assert unread_language("where is my parcel", frozenset({"es"})) is None  # cannot tell


def test_flag_unread_marks_only_abstentions_below_threshold() -> None:
    below = RouteMatch(name=None, score=0.1, threshold=0.3, reason="below_threshold")
    blank = RouteMatch(name=None, score=0.0, reason="blank")
    routed = RouteMatch(name="refunds", score=0.6, threshold=0.3)
    found = [[below], [blank], [routed], []]
    texts = ["quiero un reembolso"] * 4
    out = flag_unread(found, texts, frozenset({"en"}))
    assert out[0][0].reason == "unsupported_language" and out[0][0].language == "es"
    assert out[0][0].score == 0.1 and out[0][0].threshold == 0.3
    assert out[1][0] is blank and out[2][0] is routed and out[3] == []
    assert flag_unread([[below]], texts[:1], None)[0][0] is below
    assert flag_unread([[below]], None, frozenset({"en"}))[0][0] is below


# -- the router ----------------------------------------------------------------------------------
def test_router_flags_a_spanish_request(router: SemanticRouter) -> None:
    match = router.route("quiero que me devuelvan el dinero")
    assert match.name is None
    assert match.reason == "unsupported_language"
    assert match.language == "es"
    assert match.threshold == pytest.approx(0.5)


def test_router_leaves_an_english_abstention_alone(router: SemanticRouter) -> None:
    match = router.route("who painted the mona lisa")
    assert match.name is None
    assert (match.reason, match.language) == ("below_threshold", None)


def test_route_many_and_aroute_flag_too(router: SemanticRouter) -> None:
    many = router.route_many(["où est mon colis ?", "  ", "where is my parcel"])
    assert [(m.reason, m.language) for m in many] == [
        ("unsupported_language", "fr"),
        ("blank", None),
        (None, None),
    ]
    match = asyncio.run(router.aroute("wo ist mein Paket?"))
    assert (match.reason, match.language) == ("unsupported_language", "de")


def test_route_vectors_flag_only_with_texts(router: SemanticRouter) -> None:
    text = "quiero un reembolso"
    vectors = router.encoder.encode([text])
    assert router.route_vectors(vectors, texts=[text])[0].reason == "unsupported_language"
    assert router.route_vectors(vectors)[0].reason == "below_threshold"


def test_an_encoder_that_declares_nothing_is_never_flagged(fake_encoder: FakeEncoder) -> None:
    with SemanticRouter([Route("refunds", ["I want my money back"])], encoder=fake_encoder,
                        threshold=0.5) as router:  # fmt: skip
        assert router.route("quiero un reembolso").reason == "below_threshold"


def test_encoders_declare_their_languages() -> None:
    assert Encoder.languages is None
    assert FakeEncoder.languages is None
    assert MultilingualEncoder.languages is None  # about 100 languages: never flagged


def test_local_encoder_reads_english(local_encoder: Encoder) -> None:
    assert local_encoder.languages == frozenset({"en"})


def test_the_decision_metric_says_why_it_abstained(router: SemanticRouter) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the [otel] test extra is not installed")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from semrouter import configure_telemetry

    reader = InMemoryMetricReader()
    configure_telemetry(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        router.route("quiero un reembolso")
        router.route("who painted the mona lisa")
        router.route("where is my parcel")
    finally:
        configure_telemetry()
    data = reader.get_metrics_data()
    assert data is not None
    counts = {
        (point.attributes.get("semrouter.outcome"), point.attributes.get("semrouter.reason")):
            point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "semrouter.decisions"
        for point in metric.data.data_points
    }  # fmt: skip
    assert counts == {
        ("abstained", "unsupported_language"): 1,
        ("abstained", "below_threshold"): 1,
        ("routed", None): 1,
    }


def test_readme_example_prints_what_it_says(local_encoder: Encoder) -> None:
    from tests.unit.core.test_readme import section_output

    output = section_output("## When the encoder cannot read the request")
    assert output.split() == ["None", "unsupported_language", "es"]
