"""LangChain's standard unit tests for SemRouterEmbeddings (the langchain-tests package).

langchain-tests brings pytest plugins of its own, so it is not in the project venv: CI runs this
file in the fresh `[langchain]` venv of .ci/extras (where it is installed); elsewhere it skips.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_semrouter import SemRouterEmbeddings
from semrouter import FakeEncoder


class TestSemRouterEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[SemRouterEmbeddings]:
        return SemRouterEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {"encoder": FakeEncoder(dimension=64)}


class TestSemRouterEmbeddingsLocalStandard(TestSemRouterEmbeddingsStandard):
    """The default: the shared offline model."""

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {}
