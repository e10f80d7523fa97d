"""The real offline encoder (a few end-to-end tests; the model loads once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from semrouter import EncoderError, Route, SemanticRouter
from semrouter.encoders import LocalEncoder


def test_vectors_are_normalised_and_meaningful(local_encoder: LocalEncoder) -> None:
    vectors = local_encoder.encode(
        ["how is the weather today", "what's the weather like", "pay my bill"]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_padding_to_longest_gives_the_same_vector(local_encoder: LocalEncoder) -> None:
    alone = local_encoder.encode(["short text"])[0]
    local_encoder.cache_clear()  # encode it again, padded, not from the query cache
    batched = local_encoder.encode(["short text", "a much longer text " * 20])[0]
    assert float(alone @ batched) > 0.9999


def test_a_one_megabyte_query_is_truncated_not_refused(local_encoder: LocalEncoder) -> None:
    vector = local_encoder.encode(["word " * 200_000])
    assert vector.shape == (1, 384)


def test_fingerprint_and_config(local_encoder: LocalEncoder) -> None:
    assert (
        local_encoder.fingerprint == "sentence-transformers/all-MiniLM-L6-v2@onnx-int8|dim=384|l2"
    )
    assert local_encoder.to_config() == {
        "type": "local",
        "model_id": "sentence-transformers/all-MiniLM-L6-v2@onnx-int8",
    }


def test_custom_model_needs_all_paths() -> None:
    with pytest.raises(EncoderError, match="model_path, tokenizer_path and model_id"):
        LocalEncoder(model_path="/nonexistent.onnx")


def test_seed_example_routes(local_encoder: LocalEncoder, seed_routes: list[Route]) -> None:
    router = SemanticRouter(seed_routes, encoder=local_encoder)
    assert router.route("What have you been upto?").name == "chitchat"
    assert router.route("don't you love politics?").name == "politics"
    assert router.route("What is the melting point of tungsten?").name is None


def test_a_batch_of_mixed_lengths_runs_in_sub_batches_with_the_same_vectors(
    local_encoder: LocalEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = [f"hi {i}" for i in range(12)]
    long = [
        f"please tell me everything about my account balance and card number {i}" * 3
        for i in range(4)
    ]
    texts = [t for pair in zip(short[:4], long) for t in pair] + short[4:]  # mixed order
    alone = np.stack([local_encoder.encode([text])[0] for text in texts])
    widths: list[int] = []
    pooled = local_encoder._pooled

    def recording(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        widths.append(ids.shape[1])
        return pooled(ids, mask)

    monkeypatch.setattr(local_encoder, "_pooled", recording)
    together = local_encoder.encode_batch(texts)
    together /= np.linalg.norm(together, axis=1, keepdims=True)
    assert np.min(np.sum(together * alone, axis=1)) > 0.99999  # each row is its own text's
    assert len(widths) == 2 and widths[0] < widths[1]  # short ones apart, cut to their width
    widths.clear()
    local_encoder.encode_batch(short + short)  # similar lengths: little padding, one run
    assert len(widths) == 1
