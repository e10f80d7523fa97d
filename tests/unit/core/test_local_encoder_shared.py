"""LocalEncoder as a shared, copyable, picklable component (issue 11 points 7, 9, 10; 12.10)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semrouter import ConfigurationError, MissingDependencyError
from semrouter.encoders import LocalEncoder


def test_shared_loads_one_model_per_process() -> None:
    first = LocalEncoder.shared()
    assert LocalEncoder.shared() is first
    assert LocalEncoder.shared(max_tokens=64) is not first
    assert LocalEncoder.shared(max_tokens=64) is LocalEncoder.shared(max_tokens=64)


def test_deepcopy_and_copy_share_the_encoder() -> None:
    encoder = LocalEncoder.shared()
    assert copy.deepcopy(encoder) is encoder
    assert copy.copy(encoder) is encoder
    assert copy.deepcopy({"e": encoder})["e"] is encoder


def test_pickle_rebuilds_the_same_model() -> None:
    encoder = LocalEncoder.shared()
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone is encoder  # same process: the shared encoder
    assert clone.to_config() == encoder.to_config()
    # In another process the model is loaded from the packaged files and gives the same vector.
    code = (
        "import pickle, sys, numpy as np; e = pickle.loads(sys.stdin.buffer.read()); "
        "sys.stdout.write(repr(e.encode(['hello world'])[0][:4].tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(encoder),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert np.allclose(eval(out), encoder.encode(["hello world"])[0][:4], atol=1e-6)


def test_bad_model_and_tokenizer_paths_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ConfigurationError, match=r"model_path .*missing.onnx does not exist"):
        LocalEncoder(model_path=missing, tokenizer_path=missing, model_id="x")
    bad_tokenizer = tmp_path / "tokenizer.json"
    bad_tokenizer.write_text("not json")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not onnx")
    with pytest.raises(ConfigurationError, match=r"tokenizer_path .*tokenizer.json is not"):
        LocalEncoder(model_path=model, tokenizer_path=bad_tokenizer, model_id="x")
    from semrouter.encoders import _local

    real_tokenizer = _local._packaged(*_local._TOKENIZER_FILE, _local._TOKENIZER_SHA256)
    with pytest.raises(ConfigurationError, match=r"cannot load ONNX model .*model.onnx"):
        LocalEncoder(model_path=model, tokenizer_path=real_tokenizer, model_id="x")


def test_missing_runtime_names_one_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError) as info:
        LocalEncoder()
    assert str(info.value) == "onnxruntime is not installed; run: pip install 'semrouter[local]'"
