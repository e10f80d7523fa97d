"""Routing speed of this tree against an earlier commit, side by side in one run.

The same workload runs in child processes, alternating between the two source trees (an
earlier commit checked out with ``git worktree`` in a temporary folder, and this one), each
round in fresh processes: ``route_vectors()`` of one precomputed query (the routing path alone)
and ``route()`` with the FakeEncoder, at 10 and 10k utterances (synthetic unit vectors around
100 route centroids, seeded), p50 over 2,000 calls; then ``refresh()`` when nothing changed.
Reported: each tree's median over the rounds, and the ratio this / earlier.

Usage::

    .venv/bin/python benchmarks/release_ab.py --base 0e72dab [--rounds 3] \\
        [--out benchmarks/results/release_ab.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, statistics, sys, tempfile, time
import numpy as np
from semrouter import Route, SemanticRouter
from semrouter.encoders import Encoder

class Table(Encoder):
    model_id, dimension, default_threshold = "table", 64, 0.3
    def __init__(self, table):
        self.table = table
    def encode_batch(self, texts):
        return np.stack([self.table[t] for t in texts])

def build(n_routes, per_route, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_routes, 64))
    table, routes = {}, []
    for r in range(n_routes):
        texts = [f"r{r} u{u}" for u in range(per_route)]
        vectors = centres[r] + rng.normal(scale=1.0, size=(per_route, 64))
        table.update(zip(texts, (v / np.linalg.norm(v) for v in vectors)))
        routes.append(Route(f"route{r}", texts))
    query = centres[n_routes // 2] + rng.normal(scale=1.0, size=64)
    table["the query"] = (query / np.linalg.norm(query)).astype(np.float32)
    return routes, table

def p50(fn, n=2000):
    for _ in range(50):
        fn()
    times = []
    for _ in range(n):
        began = time.perf_counter(); fn(); times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3

out = {}
for label, (n_routes, per_route) in {"10": (2, 5), "10k": (100, 100)}.items():
    routes, table = build(n_routes, per_route)
    with tempfile.TemporaryDirectory() as folder:
        router = SemanticRouter(routes, encoder=Table(table), path=folder, learn=False)
        vector = table["the query"][None, :]
        out[f"route_vectors {label}"] = p50(lambda: router.route_vectors(vector))
        out[f"route() {label}"] = p50(lambda: router.route("the query"))
        out[f"refresh(), nothing changed {label}"] = p50(router.refresh, 500)
        router.close()
print(json.dumps(out))
"""


def run(tree: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=f"{tree / 'shared'}{os.pathsep}{tree}")
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=tree, capture_output=True, text=True,
        timeout=900, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        try:
            results: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
            for _ in range(args.rounds):
                results["base"].append(run(base))
                results["this"].append(run(ROOT))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT,
                           capture_output=True)  # fmt: skip
    lines = [
        f"# release_ab.py: {args.base} (earlier) against {head} (this tree, with its uncommitted "
        f"changes), {args.rounds} rounds, p50 in ms",
        "",
        f"{'':<34}{'earlier':>10}{'this':>10}{'ratio':>8}",
    ]
    for key in results["base"][0]:
        before = statistics.median(r[key] for r in results["base"])
        after = statistics.median(r[key] for r in results["this"])
        lines.append(f"{key:<34}{before:>10.4f}{after:>10.4f}{after / before:>8.2f}")
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
