"""Learning from the agent's tool calls (issue 22, point 4): replayed calls from the train
split against ``fit()`` on the same requests.

For each tool, the first 1, 3 and 5 train requests labelled with it are replayed as observed
calls: the request becomes an example of the tool through ``ToolIndex.observe_many`` with the
request's own vector (what ``learn_from_calls=True`` stores, in one stored change instead of
one per call), on a fresh selector each time; the same requests go to ``tool_index.fit()``
on another fresh selector (which also picks the lexical weight). Both are ranked on the split's
requests with ``selector.rank`` and compared with the selector that saw no calls. Sets, tools
and vectors as in ``tool_selection.py`` (toolret: Seal-Tools, 4,076 tools, mostly multi-tool
requests; clinc-tools: CLINC150's 150 intents as tools, one-tool paraphrases, 5 train requests
per tool, seed 0). Coverage: the share of the split's needed tools that have at least one
replayed call (a tool never called cannot learn anything).

Cost of learning as users run it: the median ms of ``selector.record_call(request, tool)``
(one stored change per call, the request ranked just before, so its vector is reused) over 30
new requests, on the tool set's temporary embedded collection; and the build time of the
selector with every vector already cached (the cost of storing the tool set).

    python benchmarks/tool_learning.py --data ../shared/data [--split valid|test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from tool_selection import (
    HERE,
    Rows,
    TableEncoder,
    load_clinc_tools,
    load_toolret,
    log,
    metrics,
    selector,
)

CALLS = (1, 3, 5)
TARGET_R1, TARGET_R5 = 75.0, 90.0  # after 5 observed calls per tool (issue 22)


def calls_per_tool(train: Rows, k: int) -> list[tuple[str, str]]:
    """(request, tool): the first ``k`` train requests of each tool, in train order."""
    seen: dict[str, int] = {}
    out = []
    for request, names in train:
        for name in names:
            if seen.get(name, 0) < k:
                seen[name] = seen.get(name, 0) + 1
                out.append((request, name))
    return out


def run_set(
    name: str, tools: list[dict[str, Any]], rows: Rows, train: Rows, args: argparse.Namespace
) -> dict[str, Any]:
    table = TableEncoder(args.cache)
    queries = [q for q, _ in rows]
    table.encode([*queries, *(q for q, _ in train)])
    results: dict[str, dict[str, float]] = {}
    extra: dict[str, Any] = {}

    def measure(label: str, chosen: Any) -> None:
        log(f"{name}: {label}")
        ranked = [[m.name for m in chosen.rank(q, limit=10)] for q in queries]
        results[label] = metrics(ranked, rows)

    start = time.perf_counter()
    base = selector(tools, table)
    extra["build_s (vectors cached)"] = round(time.perf_counter() - start, 2)
    measure("selector, no calls", base)
    needed = {g for _, gold in rows for g in gold}
    for k in CALLS:
        pairs = calls_per_tool(train, k)
        called = {tool for _, tool in pairs}
        extra[f"coverage k={k}"] = round(100 * len(needed & called) / len(needed), 1)
        learnt = selector(tools, table)
        requests = [r for r, _ in pairs]
        start = time.perf_counter()
        kept = learnt.tool_index.observe_many(
            requests, [t for _, t in pairs], vectors=table.encode(requests)
        )
        extra[f"observe_many k={k}"] = f"{kept} examples in {time.perf_counter() - start:.2f} s"
        measure(f"{k} observed call(s) per tool", learnt)
        learnt.close()
        fitted = selector(tools, table)
        grouped: dict[str, list[str]] = {}
        for request, tool in pairs:
            grouped.setdefault(request, []).append(tool)
        fitted.tool_index.fit(list(grouped.items()))
        measure(f"  fit() on the same {len(grouped)} requests", fitted)
        fitted.close()
    # One stored change per call, as the middleware makes them.
    fresh = [f"{q} (learnt)" for q in queries[:30]]
    gold = [g[0] for _, g in rows[:30]]
    times = []
    for request, tool in zip(fresh, gold):
        base.rank(request, limit=5)  # the model call that led to the tool call
        start = time.perf_counter()
        base.record_call(request, tool)
        times.append((time.perf_counter() - start) * 1000)
    extra["record_call ms (median)"] = round(statistics.median(times), 1)
    base.close()
    return {"name": name, "tools": len(tools), "requests": len(rows), "results": results,
            "extra": extra}  # fmt: skip


def render(runs: list[dict[str, Any]], split: str) -> str:
    lines = [f"Learning from tool calls, split {split!r} (benchmarks/tool_learning.py)"]
    columns = ("R@1", "R@3", "R@5", "R@10", "MRR", "multi R@5")
    for run in runs:
        lines += ["", f"## {run['name']}: {run['tools']} tools, {run['requests']} requests"]
        lines.append(f"{'system':42}" + "".join(f"{c:>11}" for c in columns))
        for label, values in run["results"].items():
            cells = "".join(
                f"{values[c]:>11.3f}" if c == "MRR" else f"{values[c]:>11.1f}" for c in columns
            )
            lines.append(f"{label:42}{cells}")
        five = run["results"]["5 observed call(s) per tool"]
        r1, r5 = five["R@1"], five["R@5"]
        lines.append(
            f"target after 5 calls per tool: R@1 >= {TARGET_R1:g}: {r1:.1f} "
            f"({'met' if r1 >= TARGET_R1 else f'missed by {TARGET_R1 - r1:.1f}'}), "
            f"R@5 >= {TARGET_R5:g}: {r5:.1f} "
            f"({'met' if r5 >= TARGET_R5 else f'missed by {TARGET_R5 - r5:.1f}'})"
        )
        lines += [f"{key}: {value}" for key, value in run["extra"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--sets", default="toolret,clinc-tools")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrouter-bench"))
    args = parser.parse_args()
    loaders = {"toolret": load_toolret, "clinc-tools": load_clinc_tools}
    runs = []
    for name in args.sets.split(","):
        tools, rows, train = loaders[name](args.data, args.split)
        runs.append(run_set(name, tools, rows, train, args))
    text = render(runs, args.split)
    print(text)
    suffix = "" if args.split == "test" else "_valid"
    out = HERE / "results" / f"tool_learning{suffix}.txt"
    out.write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
