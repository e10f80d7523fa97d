"""The package surface: exports and the missing-extra error."""

from __future__ import annotations

import llama_index_semrouter
from tests.support.processes import missing_dependency_error, run_python


def test_exports_match_all() -> None:
    public = {name for name in dir(llama_index_semrouter) if not name.startswith("_")}
    modules = {"annotations", "embeddings", "retrievers", "selectors"}
    assert set(llama_index_semrouter.__all__) == public - modules


def test_public_classes_have_class_name() -> None:
    for name in ("SemRouterSelector", "SemRouterToolRetriever", "SemRouterEmbedding"):
        assert getattr(llama_index_semrouter, name).class_name() == name


def test_missing_llama_index_names_the_install_command() -> None:
    error = missing_dependency_error(
        "import llama_index_semrouter", hidden=["llama_index", "llama_index.core"]
    )
    assert "pip install 'semrouter[llama-index]'" in error


def test_semrouter_does_not_import_llama_index() -> None:
    out = run_python("import sys, semrouter; print('llama_index' in sys.modules)")
    assert out.stdout.strip() == "False", out.stderr
