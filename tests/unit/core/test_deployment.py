"""One route set for many processes: routes stored in the collection, sync policies, readers
that follow a writer, refresh, tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from semrouter import (
    FakeEncoder,
    ReadOnlyRouterError,
    Route,
    SemanticRouter,
)
from semrouter._exceptions import RouteSetMismatchError
from tests.unit.core.test_fit import make_data, make_router

ROUTES = [
    Route("greet", ["hello there", "hi how are you"], description="greetings", threshold=0.2),
    Route("bye", ["goodbye now", "see you later"], metadata={"team": "b"}),
]
EXTRA = Route("weather", ["will it rain", "sunny forecast"])


def test_open_serves_the_stored_route_set_whole_and_encodes_nothing(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path).close()
    encoder = FakeEncoder()
    with SemanticRouter.open(path=tmp_path, encoder=encoder) as router:
        assert router.routes == ROUTES  # description, threshold, metadata included
        assert encoder.encoded_texts == 0 and router.last_sync.encoded == 0
        assert router.route("hello there").name == "greet"


def test_leaving_routes_out_never_deletes(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path).close()
    SemanticRouter(encoder=FakeEncoder(), path=tmp_path).close()
    SemanticRouter([], encoder=FakeEncoder(), path=tmp_path).close()  # merge: nothing to add
    with SemanticRouter.open(path=tmp_path, encoder=FakeEncoder()) as router:
        assert router.routes == ROUTES and router.index_size == 4


def test_merge_is_the_default_and_deletes_nothing(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path).close()
    changed = Route("bye", ["goodbye now", "farewell"])
    encoder = FakeEncoder()
    with SemanticRouter([changed, EXTRA], encoder=encoder, path=tmp_path) as router:
        assert router.route_names == ["greet", "bye", "weather"]
        assert router.get("bye") == changed  # the declared route wins on a name
        assert encoder.encoded_texts == 3  # farewell and the two weather utterances


def test_replace_makes_the_store_match(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path).close()
    with SemanticRouter([EXTRA], encoder=FakeEncoder(), path=tmp_path, sync="replace") as r:
        assert r.route_names == ["weather"] and r.last_sync.deleted == 4


def test_check_names_the_differences_and_changes_nothing(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path).close()
    with pytest.raises(RouteSetMismatchError, match=r"'weather' is not stored.*'bye'"):
        SemanticRouter([ROUTES[0], EXTRA], encoder=FakeEncoder(), path=tmp_path, sync="check")
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path, sync="check") as router:
        assert router.routes == ROUTES


def test_a_reader_follows_the_writer_and_never_writes(tmp_path: Path) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as writer:
        reader_encoder = FakeEncoder()
        with SemanticRouter.open(path=tmp_path, encoder=reader_encoder, mode="read") as reader:
            assert reader.read_only and reader.routes == ROUTES
            with pytest.raises(ReadOnlyRouterError, match="only reads"):
                reader.add(EXTRA)
            with pytest.raises(ReadOnlyRouterError):
                reader.fit(*make_data(0))
            assert not reader.refresh()  # nothing new: nothing swapped
            writer.add(EXTRA)
            assert reader.route("will it rain").name != "weather"  # not refreshed yet
            encoded = reader_encoder.encoded_texts
            assert reader.refresh()
            assert reader_encoder.encoded_texts == encoded  # vectors came from the writer
            assert reader.route("will it rain").name == "weather"
            assert reader.revision == writer.revision
            writer.remove("greet")
            assert reader.refresh() and "greet" not in reader.route_names


def test_refresh_interval_picks_changes_up_while_routing(tmp_path: Path) -> None:
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as writer,
        SemanticRouter.open(path=tmp_path, encoder=FakeEncoder(), refresh_interval=0) as r,
    ):
        writer.add(EXTRA)
        assert r.route("will it rain").name == "weather"


async def test_async_refresh_after_another_routers_change() -> None:
    client = QdrantClient(":memory:")
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) as a,
        SemanticRouter.open(client=client, encoder=FakeEncoder()) as b,
    ):
        a.add(EXTRA)
        assert await b.arefresh()
        assert (await b.aroute("will it rain")).name == "weather"
        b.remove("weather")  # a writer on a shared server starts from the latest set
        assert a.refresh() and "weather" not in a.route_names


def test_the_fitted_calibration_is_part_of_the_stored_set(tmp_path: Path) -> None:
    with make_router(path=tmp_path) as writer:
        writer.fit(*make_data(0))
        with SemanticRouter.open(path=tmp_path, encoder=FakeEncoder()) as reader:
            assert reader.calibration == writer.calibration
            for text in ("unrelated99 gibberish3 noise", "jazz album guitar"):
                mine, theirs = reader.route(text), writer.route(text)
                assert mine.name == theirs.name and mine.threshold == theirs.threshold
                assert mine.scores == pytest.approx(theirs.scores, abs=1e-6)


def test_tenants_keep_their_route_sets_apart() -> None:
    client = QdrantClient(":memory:")
    acme = SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client, tenant="acme")
    globex = SemanticRouter([EXTRA], encoder=FakeEncoder(), client=client, tenant="globex")
    # the same (route, utterance) in two tenants are two points
    shared = SemanticRouter([ROUTES[0]], encoder=FakeEncoder(), client=client, tenant="initech")
    acme.set_routes([ROUTES[1]])  # a tenant's sync touches only its own points
    assert globex.refresh() is False and globex.route_names == ["weather"]
    assert shared.route("hello there").name == "greet"
    assert acme.tenants() == ["acme", "globex", "initech"]
    globex.delete_route_set()
    assert acme.tenants() == ["acme", "initech"]
    with SemanticRouter.open(client=client, encoder=FakeEncoder(), tenant="acme") as again:
        assert again.route_names == ["bye"]
    with SemanticRouter.open(client=client, encoder=FakeEncoder(), tenant="initech") as again:
        assert again.route_names == ["greet"] and again.index_size == 2


def test_cli_routes_beside_a_running_writer_and_sync_names_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import os
    import subprocess
    import sys

    from semrouter.cli import main

    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path / "db") as app:
        app.save(tmp_path / "router.yaml")
        config = tmp_path / "router.yaml"
        assert main(["route", str(config), "hello there"]) == 0
        assert json.loads(capsys.readouterr().out)["name"] == "greet"
        # another process: the app holds the folder, which the refusal names
        other = subprocess.run(
            [sys.executable, "-m", "semrouter", "sync", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 2 and str(os.getpid()) in other.stderr
        # this process shares the app's writer (as a notebook cell run again does)
        assert main(["sync", str(config)]) == 0
        assert app.route("hello there").name == "greet"
    assert main(["sync", str(config), "--policy", "check"]) == 0


def test_a_refresh_racing_a_writers_delete_reads_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from semrouter import IndexMismatchError
    from semrouter._stores import ClientStore

    client = QdrantClient(":memory:")
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) as writer,
        SemanticRouter.open(client=client, encoder=FakeEncoder()) as reader,
    ):
        writer.add(EXTRA)
        real = ClientStore.retrieve_vectors
        calls = []

        def vanishing_once(self: ClientStore, ids: list[str]) -> object:
            calls.append(len(ids))
            if len(calls) == 1:  # the writer deleted them between the document and the read
                raise IndexMismatchError("2 points vanished from the collection")
            return real(self, ids)

        monkeypatch.setattr(ClientStore, "retrieve_vectors", vanishing_once)
        assert reader.refresh()  # read again, not failed
        assert reader.route("will it rain").name == "weather" and len(calls) == 2


@pytest.mark.parametrize("tenant", ["acme", ""])
@pytest.mark.parametrize("where", ["edge", "edge-reader", "client"])
def test_qdrant_search_sees_only_its_tenants_points(
    where: str, tenant: str, tmp_path: Path
) -> None:
    """Searching in Qdrant (large route sets, or search="qdrant"), a tenant's nearest points
    must be its own: another tenant's near-identical utterances must not crowd them out of
    the candidates (dense and lexical search alike)."""
    location: dict[str, Any] = (
        {"client": QdrantClient(":memory:")} if where == "client" else {"path": tmp_path}
    )
    crowd = [Route("crowd", [f"book a flight to paris please {i}" for i in range(80)])]
    options = {"encoder": FakeEncoder(), "search": "qdrant", "hybrid": "dbsf", **location}
    # an embedded folder has one writer at a time: the other tenant writes first
    SemanticRouter(crowd, tenant="globex", **options).close()  # type: ignore[arg-type]
    mine = SemanticRouter(
        [Route("flights", ["book a flight"]), Route("weather", ["rain tomorrow"])],
        tenant=tenant,  # the default tenant "" too: its points carry no tenant key
        candidates=8,
        **options,  # type: ignore[arg-type]
    )
    router = mine
    if where == "edge-reader":
        router = SemanticRouter.open(tenant=tenant, candidates=8, mode="read", **options)
    assert router.route("book a flight to paris please").name == "flights"
    for r in {router, mine}:
        r.close()
