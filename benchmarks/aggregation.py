"""Pick the router's default aggregation by measurement (CLINC150 and BANKING77).

For each corpus: every train utterance (and a seeded 5-per-route sample) becomes a route
example; test queries are routed with ``max`` and ``mean`` of the top-k hits (k = 2, 3, 5),
through the router's own index code. Prints in-scope accuracy and, for CLINC150, the
out-of-scope AUROC of the winning route's score.

    python benchmarks/aggregation.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from semrouter import Route, SemanticRouter
from semrouter.encoders import Encoder, LocalEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "quality"))
from benchtools import CachedEncoder
from compare import load_banking, load_clinc


def routes_from(rows: list[tuple[str, str]], per_route: int | None, seed: int) -> list[Route]:
    by: dict[str, list[str]] = {}
    for text, label in rows:
        by.setdefault(label, []).append(text)
    rng = np.random.default_rng(seed)
    routes = []
    for label in sorted(by):
        utts = by[label]
        if per_route is not None:
            utts = [utts[i] for i in sorted(rng.choice(len(utts), per_route, replace=False))]
        routes.append(Route(label, utts))
    return routes


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    scores = np.concatenate([pos, neg])
    ranks = scores.argsort().argsort() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def overall_curve(router: SemanticRouter, rows, oos, grid: np.ndarray) -> np.ndarray:
    """Accuracy on in-scope plus out-of-scope rows (which should match nothing), per threshold."""
    found = router.route_many([t for t, _ in rows] + [t for t, _ in oos])
    gold = [label for _, label in rows] + [None] * len(oos)
    right_route = np.array([m.name == g for m, g in zip(found, gold)])
    scores = np.array([m.score for m in found])
    in_scope = np.array([g is not None for g in gold])
    passed = scores[None, :] >= grid[:, None]
    correct = np.where(in_scope[None, :], passed & right_route[None, :], ~passed)
    return correct.mean(axis=1)


def evaluate(
    encoder: Encoder, routes: list[Route], test, oos, val, oos_val
) -> dict[str, dict[str, float]]:
    results = {}
    texts = [t for t, _ in test]
    gold = [label for _, label in test]
    for aggregation, k in (("max", 1), ("mean", 2), ("mean", 3), ("mean", 5)):
        router = SemanticRouter(
            routes, encoder=encoder, aggregation=aggregation, top_k=k, threshold=-1.0
        )
        matches = router.route_many(texts)
        acc = float(np.mean([m.name == g for m, g in zip(matches, gold)]))
        row = {"in_scope_accuracy": acc}
        if oos:
            neg = np.array([m.score for m in router.route_many([t for t, _ in oos])])
            row["oos_auroc"] = auroc(np.array([m.score for m in matches]), neg)
            # the global threshold that is best on validation, then applied to test
            grid = np.round(np.arange(0.10, 0.81, 0.01), 2)
            best = grid[int(np.argmax(overall_curve(router, val, oos_val, grid)))]
            row["threshold"] = float(best)
            row["overall_accuracy"] = float(overall_curve(router, test, oos, np.array([best]))[0])
        results[f"{aggregation}@{k}"] = row
        router.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrouter-emb-cache"))
    args = parser.parse_args()
    encoder = CachedEncoder(LocalEncoder(), args.cache)
    start = time.perf_counter()
    clinc, banking = load_clinc(args.data), load_banking(args.data)
    c_val, c_oos = clinc["val"], clinc["oos_val"]
    settings = [
        (
            "CLINC150 all train",
            routes_from(clinc["train"], None, 0),
            clinc["test"],
            clinc["oos_test"],
            c_val,
            c_oos,
        ),
        (
            "CLINC150 5/route",
            routes_from(clinc["train"], 5, 0),
            clinc["test"],
            clinc["oos_test"],
            c_val,
            c_oos,
        ),
        (
            "BANKING77 all train",
            routes_from(banking["train"], None, 0),
            banking["test"],
            [],
            [],
            [],
        ),
        ("BANKING77 5/route", routes_from(banking["train"], 5, 0), banking["test"], [], [], []),
    ]
    header = ("setting", "aggregation", "in-scope acc", "oos AUROC", "val thr", "overall acc")
    print(f"{header[0]:<22}{header[1]:<12}" + "".join(f"{h:>13}" for h in header[2:]))
    for name, routes, test, oos, val, oos_val in settings:
        for agg, row in evaluate(encoder, routes, test, oos, val, oos_val).items():
            oos_text = f"{row['oos_auroc']:.3f}" if "oos_auroc" in row else "-"
            thr = f"{row['threshold']:.2f}" if "threshold" in row else "-"
            over = f"{row['overall_accuracy'] * 100:.1f}%" if "overall_accuracy" in row else "-"
            acc = f"{row['in_scope_accuracy'] * 100:.1f}%"
            print(f"{name:<22}{agg:<12}{acc:>13}{oos_text:>13}{thr:>13}{over:>13}")
    print(f"(all-MiniLM-L6-v2 int8, {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
