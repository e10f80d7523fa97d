"""The decision log (kept in Qdrant beside the route set) and review."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from qdrant_client import QdrantClient

from semrouter import FakeEncoder, Route, SemanticRouter

ROUTES = [
    Route("refunds", ["I want my money back", "refund my order"], threshold=0.5),
    Route("shipping", ["where is my parcel", "track my delivery"], threshold=0.5),
]
REPO = Path(__file__).resolve().parents[3]


def test_abstentions_are_always_kept_and_confident_decisions_sampled(tmp_path: Path) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as router:
        router.log_decisions(sample=0.0)
        router.route_many(["where is my parcel", "quantum chromodynamics lecture"])
        logged = router.decisions()
        assert [d.route for d in logged] == [None]  # the confident one was not sampled
        (miss,) = logged
        assert miss.text == "quantum chromodynamics lecture" and miss.threshold == 0.5
        assert miss.revision == router.revision and miss.best in {"refunds", "shipping"}
        router.log_decisions(sample=1.0, keep_text=False)
        router.route("track my delivery")
        last = router.decisions(with_vectors=True)[-1]
        assert last.route == "shipping" and last.text is None and len(last.text_sha256) == 64
        assert last.vector is not None and last.vector.shape == (64,)


def test_every_process_of_a_folder_logs_and_one_reads_them_all(tmp_path: Path) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as writer:
        writer.log_decisions(sample=0.0)
        writer.route("astronomy telescope mirror")
        worker = textwrap.dedent(
            """
            import sys
            from semrouter import FakeEncoder, SemanticRouter
            with SemanticRouter.open(path=sys.argv[1], encoder=FakeEncoder()) as reader:
                assert reader.read_only
                reader.log_decisions(sample=0.0)
                reader.route("gardening tomato seedlings")
            """
        )
        subprocess.run([sys.executable, "-c", worker, str(tmp_path)], check=True, cwd=REPO,
                       timeout=120)  # fmt: skip
        texts = {d.text for d in writer.decisions()}
        assert texts == {"astronomy telescope mirror", "gardening tomato seedlings"}


def test_replicas_on_a_server_share_one_log() -> None:
    client = QdrantClient(":memory:")
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) as a,
        SemanticRouter.open(client=client, encoder=FakeEncoder()) as b,
    ):
        a.log_decisions(sample=0.0)
        b.log_decisions(sample=0.0)
        a.route("astronomy telescope mirror")
        b.route("gardening tomato seedlings")
        b.decisions()  # flushes b's queue
        assert {d.text for d in a.decisions()} == {
            "astronomy telescope mirror", "gardening tomato seedlings",
        }  # fmt: skip


def test_the_log_keeps_its_latest_entries() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        router.log_decisions(sample=0.0, max_entries=5)
        for i in range(12):
            router.route(f"unrelated request number {i}")
            router.decisions()  # one flush each
        kept = [d.text for d in router.decisions()]
        assert kept == [f"unrelated request number {i}" for i in range(7, 12)]


def test_review_lists_near_misses_and_proposes_a_route() -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder()) as router:
        router.log_decisions(sample=0.0)
        requests = [
            "cancel my subscription plan",
            "cancel the subscription now",
            "please cancel subscription",
            "subscription cancel request",
            "refund my order money",  # close to refunds: near the line or routed
        ]
        router.route_many(requests)
        result = router.review(similarity=0.45)  # the fake encoder: shared words only
        (proposal,) = result.proposals
        assert "subscription" in proposal.name_hint and "cancel" in proposal.name_hint
        assert proposal.size == 4 and proposal.examples[0].startswith(("cancel", "subscription",
                                                                        "please"))  # fmt: skip
        assert all(item.reason in {"near_miss", "close_call"} for item in result.items)


def test_review_csv_labelled_by_a_person_is_applied_by_feedback(
    tmp_path: Path, capsys: object
) -> None:
    import csv

    from semrouter.cli import main

    config = tmp_path / "router.yaml"
    strict = [route.model_copy(update={"threshold": 0.6}) for route in ROUTES]
    with SemanticRouter(strict, encoder=FakeEncoder(), path=tmp_path / "db") as router:
        router.save(config)
        router.log_decisions(sample=0.0)
        router.route_many(["track my parcel", "my parcel is very late now"])
        router.decisions()  # written
    review = tmp_path / "review.csv"
    assert main(["review", str(config), "-o", str(review)]) == 0
    rows = list(csv.DictReader(review.open(encoding="utf-8")))
    assert {row["text"] for row in rows} >= {"track my parcel"}  # just under 0.6
    for row in rows:  # the person's labels
        row["label"] = "shipping" if row["text"] == "track my parcel" else "-"
    with review.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["feedback", str(config), str(review)]) == 0
    with SemanticRouter.open(path=tmp_path / "db", encoder=FakeEncoder()) as router:
        assert router.examples() == {"shipping": ["track my parcel"]}
        assert router.route("track my parcel").name == "shipping"
