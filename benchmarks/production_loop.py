"""A router in production, taught by feedback: how fast does it learn?

Protocol (CLINC150; fixed seeds; the local encoder's real vectors, cached by
``quality/compare.py``'s table): the router starts from 5 utterances per route, no labels.
Traffic is the train split's other requests plus its out-of-scope ones, shuffled. Every 10th
request gets feedback (``router.feedback_many`` with the request's own vector: its true route,
or ``None`` for out-of-scope), committed every 100 requests as one revision, as an application
applying a batch of thumbs-down clicks would. After each 1,000 requests the router is evaluated
on the validation split (in-scope accuracy, out-of-scope recall, overall accuracy with
out-of-scope). Beside it, on the same labels: ``fit()`` on the starting router with the
feedback given so far as labelled texts. The test split is measured once, at the end.

Usage::

    .venv/bin/python benchmarks/production_loop.py [--data ../shared/data] [--requests 5000] \\
        [--out benchmarks/results/production_loop.txt]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "quality"))
from compare import TableEncoder, embed_table, load_clinc, routes_from

from semrouter import Route, SemanticRouter

Rows = list[tuple[str, str | None]]


def evaluate(router: SemanticRouter, rows: Rows, table: dict[str, np.ndarray]) -> dict[str, float]:
    vectors = np.stack([table[t] for t, _ in rows])
    picks = [m.name for m in router.route_vectors(vectors)]
    gold = [label for _, label in rows]
    inscope = [(p, g) for p, g in zip(picks, gold) if g is not None]
    oos = [p for p, g in zip(picks, gold) if g is None]
    return {
        "in-scope": 100 * sum(p == g for p, g in inscope) / len(inscope),
        "oos recall": 100 * sum(p is None for p in oos) / max(1, len(oos)),
        "overall": 100 * sum(p == g for p, g in zip(picks, gold)) / len(gold),
    }


def build(seed_routes: list[tuple[str, list[str]]], table: dict[str, np.ndarray]) -> SemanticRouter:
    routes = [Route(name, utts) for name, utts in seed_routes]
    return SemanticRouter(routes, encoder=TableEncoder(table))


def line(label: str, scores: dict[str, float], extra: str = "") -> str:
    return (
        f"{label:<34} in-scope {scores['in-scope']:5.1f}  oos recall {scores['oos recall']:5.1f}"
        f"  overall {scores['overall']:5.1f}{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared" / "data")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--share", type=float, default=0.1, help="share of requests fed back")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # evaluation warnings about stored utterances
    data = load_clinc(args.data)
    seed_routes = routes_from(data["train"], 5, seed=0)
    used = {t for _, utts in seed_routes for t in utts}
    traffic = [row for row in data["train"] + data["oos_train"] if row[0] not in used]
    order = np.random.default_rng(0).permutation(len(traffic))
    traffic = [traffic[i] for i in order[: args.requests]]
    val = data["val"] + data["oos_val"]
    test = data["test"] + data["oos_test"]
    texts = [t for t, _ in data["train"] + data["oos_train"] + val + test]
    table = embed_table("clinc150", texts, Path("/tmp/semrouter-bench"))  # compare.py's cache

    lines = [
        f"# production_loop.py: CLINC150, 5 utterances per route, {len(traffic)} requests of "
        f"traffic, feedback on {args.share:.0%} (committed every 100 requests), validation "
        "split after each 1,000",
        "",
    ]
    start = build(seed_routes, table)
    lines.append(line("start (no feedback)", evaluate(start, val, table)))
    print(lines[-1], flush=True)
    router = build(seed_routes, table)
    every = max(1, round(1 / args.share))
    given: Rows = []
    pending: Rows = []
    commit_times = []
    for i, (text, label) in enumerate(traffic, 1):
        router.route_vectors(table[text][None, :])  # serve it
        if i % every == 0:
            pending.append((text, label))
        if i % 100 == 0 and pending:
            began = time.perf_counter()
            router.feedback_many(
                [t for t, _ in pending],
                [g for _, g in pending],
                vectors=np.stack([table[t] for t, _ in pending]),
            )
            commit_times.append(time.perf_counter() - began)
            given += pending
            pending = []
        if i % 1000 == 0:
            ours = evaluate(router, val, table)
            fitted = build(seed_routes, table)
            began = time.perf_counter()
            fitted.fit([t for t, _ in given], [g for _, g in given], holdout=0.2)
            took = time.perf_counter() - began
            theirs = evaluate(fitted, val, table)
            fitted.close()
            gap = theirs["overall"] - ours["overall"]
            lines.append(line(f"after {i} requests, {len(given)} fed back", ours))
            lines.append(line("  fit() on the same labels", theirs, f"  (fit {took:.1f} s)"))
            lines.append(f"  gap to fit() (overall): {gap:+.1f} points")
            print("\n".join(lines[-3:]), flush=True)
    median = 1000 * float(np.median(commit_times)) if commit_times else 0.0
    lines += [
        "",
        f"feedback commit (10 requests, one revision, learning included): median {median:.0f} ms",
        "",
        "## test split, once",
        line("start (no feedback)", evaluate(start, test, table)),
        line(f"after {len(traffic)} requests of feedback", evaluate(router, test, table)),
    ]
    fitted = build(seed_routes, table)
    fitted.fit([t for t, _ in given], [g for _, g in given], holdout=0.2)
    lines.append(line("fit() on the same labels", evaluate(fitted, test, table)))
    print("\n".join(lines[-6:]), flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
