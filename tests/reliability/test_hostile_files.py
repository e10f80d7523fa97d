"""Files and folders from someone else (issue 20, points 1, 4 and 5).

- A symbolic link planted where semrouter writes (the writer lock, the marker's temporary file,
  the temporary file of a save) is never followed: the file it points at is left alone. An
  untrusted router file's collection folder holding a link, a FIFO or a device is refused.
- Every file semrouter reads goes through one guard (regular file, opened without blocking,
  size-capped): a FIFO or ``/dev/zero`` given to the importers or the command line is refused
  at once instead of blocking or reading without end.
- Odd values in an imported file, and an unwritable ``-o``, are semrouter errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from semrouter import (
    ConfigurationError,
    FakeEncoder,
    SemanticRouter,
    SemRouterError,
    StoreDamagedError,
    import_router,
)
from semrouter._stores._edge_files import (
    DIRTY_FILE,
    MARKER_FILE,
    mark_dirty,
    read_marker,
    write_marker,
)
from semrouter.cli import main

ROUTES = [{"name": "greet", "utterances": ["hello there"]}, {"name": "bye", "utterances": ["bye"]}]
PRECIOUS = "the user's own file\n"
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(PRECIOUS)
    return victim


def _bundle(tmp_path: Path) -> tuple[Path, Path]:
    """A router file with an embedded index beside it; returns (file, collection folder)."""
    home = tmp_path / "bundle"
    collection = home / "db" / "semrouter"
    collection.mkdir(parents=True)
    file = home / "router.json"
    encoder = {"type": "fake", "dimension": 8}
    file.write_text(json.dumps({"routes": ROUTES, "encoder": encoder, "index": {"path": "db"}}))
    return file, collection


def _outcome(call: Callable[[], Any], timeout: float = 10.0) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised (``None`` if none); fails on a hang."""
    caught: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            caught.append(None)
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"still blocked after {timeout} s")
    return caught[0]


def _unblock(fifo: Path) -> None:
    """Open the writing end of ``fifo`` (so an old reader blocked on it can end)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# -- 1. never write through a planted link --------------------------------------------------


def test_a_symlinked_lock_in_an_untrusted_bundle_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    # Old code: load() opened the lock with O_CREAT, truncated the target and wrote a pid in it.
    victim = _victim(tmp_path)
    file, collection = _bundle(tmp_path)
    (collection / "semrouter.lock").symlink_to(victim)
    with pytest.raises(ConfigurationError, match="symbolic link") as caught:
        SemanticRouter.load(file)
    assert "trusted=True" in str(caught.value)
    assert victim.read_text() == PRECIOUS
    # Trusting the file lets links elsewhere through; the lock is still never followed.
    with pytest.raises(StoreDamagedError, match=r"semrouter\.lock is a symbolic link"):
        SemanticRouter.load(file, trusted=True)
    assert victim.read_text() == PRECIOUS
    assert main(["route", str(file), "hello there"]) == 2
    assert victim.read_text() == PRECIOUS


def test_the_writer_lock_never_follows_a_link_in_a_folder_the_caller_names(
    tmp_path: Path,
) -> None:
    victim = _victim(tmp_path)
    folder = tmp_path / "db"
    (folder / "semrouter").mkdir(parents=True)
    (folder / "semrouter" / "semrouter.lock").symlink_to(victim)
    with pytest.raises(StoreDamagedError, match="symbolic link"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8), path=folder)
    assert victim.read_text() == PRECIOUS


def test_a_planted_temporary_marker_file_is_not_written_through(tmp_path: Path) -> None:
    # Old code wrote the marker through ".semrouter.json.partial", whatever it pointed at.
    victim = _victim(tmp_path)
    folder = tmp_path / "collection"
    folder.mkdir()
    (folder / ".semrouter.json.partial").symlink_to(victim)
    write_marker(folder, "ready")
    assert victim.read_text() == PRECIOUS
    assert read_marker(folder) == "ready"
    assert not (folder / MARKER_FILE).is_symlink()


def test_the_dirty_mark_is_not_created_through_a_link(tmp_path: Path) -> None:
    folder = tmp_path / "collection"
    folder.mkdir()
    elsewhere = tmp_path / "made-elsewhere"
    (folder / DIRTY_FILE).symlink_to(elsewhere)
    with pytest.raises(SemRouterError):
        mark_dirty(folder)
    assert not elsewhere.exists()


def test_saving_never_writes_through_a_planted_temporary_file(tmp_path: Path) -> None:
    # Old code: save() wrote "router.yaml.tmp" (and import "x.yaml.tmp") through any link there.
    victim = _victim(tmp_path)
    target = tmp_path / "router.yaml"
    (tmp_path / "router.yaml.tmp").symlink_to(victim)
    with SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8)) as router:
        router.save(target)
    assert victim.read_text() == PRECIOUS
    with SemanticRouter.load(target) as again:
        assert again.route("bye").name == "bye"
    source = tmp_path / "source.json"
    source.write_text(json.dumps({"encoder_type": "huggingface", "routes": ROUTES}))
    imported = tmp_path / "imported.json"
    (tmp_path / "imported.json.tmp").symlink_to(victim)
    import_router(source, local_fallback=True).save(imported)
    assert victim.read_text() == PRECIOUS
    assert json.loads(imported.read_text())["routes"][0]["name"] == "greet"
    assert oct(imported.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("kind", ["linked-folder", "linked-segments", "fifo", "dot-dot"])
def test_an_untrusted_collection_folder_with_links_or_fifos_is_refused(
    tmp_path: Path, kind: str
) -> None:
    file, collection = _bundle(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    if kind == "linked-folder":  # the collection folder itself, pointing inside the bundle
        (file.parent / "real").mkdir()
        collection.rmdir()
        collection.symlink_to(file.parent / "real")
    elif kind == "linked-segments":  # Edge would write its segments outside the bundle
        (collection / "segments").symlink_to(outside)
    elif kind == "fifo":  # the checks before Edge read edge_config.json: old code blocked
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs FIFOs")
        os.mkfifo(collection / "edge_config.json")
    else:  # a collection name that leads out of the file's folder
        data = json.loads(file.read_text())
        data["index"] = {"path": ".", "collection": ".."}
        file.write_text(json.dumps(data))
    try:
        error = _outcome(lambda: SemanticRouter.load(file).close())
    finally:
        if kind == "fifo":
            _unblock(collection / "edge_config.json")
    assert isinstance(error, ConfigurationError), error
    assert "trusted=True" in str(error)
    assert list(outside.iterdir()) == []


# -- 4. one guarded reader ----------------------------------------------------------------


@needs_fifo
def test_import_of_a_fifo_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "router.json"
    os.mkfifo(fifo)
    try:
        error = _outcome(lambda: import_router(fifo))
        assert isinstance(error, ConfigurationError), error
        assert "regular file" in str(error)
        codes: list[int] = []
        assert _outcome(lambda: codes.append(main(["import", str(fifo)]))) is None
        assert codes == [2]
        assert "regular file" in capsys.readouterr().err
    finally:
        _unblock(fifo)


_ISOLATED = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
    from semrouter import import_router, SemRouterError
    from semrouter._cli_quality import read_labelled
    from semrouter._config import read_config
    for read in (import_router, read_labelled, read_config):
        try:
            read(Path(sys.argv[1]))
        except SemRouterError as exc:
            print(type(exc).__name__, exc)
        else:
            print("read it")
    """
)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_file_linked_to_dev_zero_is_refused_not_read_without_end(tmp_path: Path) -> None:
    # Run apart, with a memory cap: the old importer read /dev/zero until memory ran out.
    linked = tmp_path / "router.yaml"
    linked.symlink_to("/dev/zero")
    done = subprocess.run(
        [sys.executable, "-c", _ISOLATED, str(linked)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(lines) == 3, lines
    assert all(line.startswith("ConfigurationError") for line in lines), lines
    assert all("is not a regular file" in line for line in lines), lines


def test_labelled_data_over_the_cap_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semrouter._cli_quality as quality

    monkeypatch.setattr(quality, "MAX_LABELLED_BYTES", 1024, raising=False)
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "hello there,greet\n" * 100)
    with pytest.raises(ConfigurationError, match="limit is 1024"):
        quality.read_labelled(data)


# -- 5. odd values and outputs --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_import_of_a_five_thousand_digit_number_is_a_configuration_error(
    tmp_path: Path, suffix: str
) -> None:
    digits = "9" * 5000
    path = tmp_path / f"router.{suffix}"
    if suffix == "json":
        path.write_text(
            '{"encoder_type": "openai", "routes": [{"name": "a", "utterances": ["hi"], '
            f'"score_threshold": {digits}}}]}}'
        )
    else:
        path.write_text(
            "encoder_type: openai\nroutes:\n- name: a\n  utterances: [hi]\n"
            f"  score_threshold: {digits}\n"
        )
    with pytest.raises(ConfigurationError, match="not valid JSON or YAML"):
        import_router(path)


@pytest.mark.parametrize("metadata", [["a", "b"], "text", 3])
def test_import_of_metadata_that_is_not_a_mapping_names_the_route(
    tmp_path: Path, metadata: Any
) -> None:
    path = tmp_path / "router.json"
    route = {"name": "billing", "utterances": ["hi"], "metadata": metadata}
    path.write_text(json.dumps({"encoder_type": "openai", "routes": [route]}))
    with pytest.raises(ConfigurationError, match="route 'billing': metadata must be a mapping"):
        import_router(path)


def test_cli_import_to_an_unwritable_output_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.json"
    source.write_text(json.dumps({"encoder_type": "huggingface", "routes": ROUTES}))
    target = "/proc/nope/router.yaml"
    assert main(["import", str(source), "--local", "-o", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"semrouter: cannot write {target}")
    assert len(err.strip().splitlines()) == 1
