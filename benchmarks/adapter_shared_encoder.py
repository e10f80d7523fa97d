"""Ten adapter components built without encoder=: one shared model versus one model each.

Issue 11 point 7: every SemanticBranch / selector built without ``encoder=`` used to load its
own LocalEncoder (~0.5 s and ~100 MB each). Now they share ``LocalEncoder.shared()``. Each
variant runs in a fresh process (so nothing is cached), side by side in one run, three times:
- shared:   ten ``SemRouterBranch((Route(...), r), r)`` with no encoder (the default now);
- per-call: the same ten with ``encoder=LocalEncoder()`` each (what the default used to do).
Reported: median wall time to build the ten, median RSS growth, and the ratios.

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/adapter_shared_encoder.py \
        > benchmarks/results/adapter_shared_encoder.txt
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys

CHILD = """
import json, time, psutil
from langchain_core.runnables import RunnableLambda
from langchain_semrouter import SemRouterBranch
from semrouter import LocalEncoder, Route
def hit(x):
    return "hit"
process = psutil.Process()
before = process.memory_info().rss
start = time.perf_counter()
branches = []
for i in range(10):
    kwargs = {{"encoder": LocalEncoder()}} if {per_call} else {{}}
    branches.append(SemRouterBranch(
        (Route(f"r{{i}}", [f"hello number {{i}}", "good morning"]), RunnableLambda(hit)),
        RunnableLambda(lambda x: -1), **kwargs))
seconds = time.perf_counter() - start
grown = process.memory_info().rss - before
assert branches[3].invoke("hello number 3") == "hit"
for branch in branches:
    branch.close()
print(json.dumps({{"seconds": seconds, "rss_mb": grown / 2**20}}))
"""


def run(per_call: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(per_call=per_call)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    rounds = 3
    results: dict[str, list[dict[str, float]]] = {"shared": [], "per-call": []}
    for _ in range(rounds):
        results["shared"].append(run(per_call=False))
        results["per-call"].append(run(per_call=True))
    print(f"# {platform.python_version()} on {os.cpu_count()} cores, {rounds} fresh processes each")
    print("ten SemRouterBranch built without encoder= (shared) vs encoder=LocalEncoder() each")
    medians = {}
    for name, rows in results.items():
        seconds = statistics.median(r["seconds"] for r in rows)
        rss = statistics.median(r["rss_mb"] for r in rows)
        medians[name] = (seconds, rss)
        print(f"{name:9s} build {seconds:6.2f} s   RSS +{rss:7.1f} MB")
    (s_sec, s_rss), (p_sec, p_rss) = medians["shared"], medians["per-call"]
    print(f"ratio     build {p_sec / s_sec:6.1f}x   RSS {p_rss / max(s_rss, 1e-9):6.1f}x")


if __name__ == "__main__":
    main()
