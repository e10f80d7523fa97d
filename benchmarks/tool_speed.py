"""Tool index speed at scale (issue 22, item 6) on real toolret (Seal-Tools) tools.

What is measured, with the live ``LocalEncoder`` (all-MiniLM-L6-v2 int8 on ONNX Runtime):

* **What a build encodes**: texts per tool (``ToolSpec.texts()``: name words, "name:
  description", description sentences, arguments), distinct texts, their token counts, and the
  padding a batch of 32 adds in the given order against batches sorted by token count (what
  ``LocalEncoder`` does with a call of more than one batch); the same texts encoded both ways.
* **Build**: ``ToolIndex(tools)`` of the first 1,000 and of all 4,076 tools with an empty
  vector cache (every text encoded) into a folder, split into encoding and the rest (the route
  set's commit into Qdrant, the lexical index, the table). Then, on the same tools: a second
  index in the same process on the same folder, a second process on that folder, and a second
  index on a new collection of its own that shares the process's vector cache: each must
  encode nothing (counted: the texts its own cache receives).
* **A learnt call** at 4,076 tools (``observe`` with the request's vector): one commit.
* **Latency** at 4,076 tools, median of interleaved calls on 200 test requests (each call
  its own variant of the request, so every text is new to the caches):
  ``SemRouterToolSelector.select(request, tools)`` (``max_tools=5``), ``selector.rank``
  and the plain ranking call ``ToolIndex.rank(request, 5)``.
* **Beyond encoding** at 1,000, 4,076 and 10,000 tools: ``rank_vectors`` with the request's
  vectors computed beforehand, and ``select()``/``rank()`` of requests whose vectors the index
  already holds (everything but the model). **The 10,000 tools are the 4,076 toolret tools and
  5,924 renamed copies of them** (``<name>_v2``, ``_v3``: a copy's name text and "name:
  description" text are new; its sentences and arguments are its original's), so the table has
  as many rows as 10,000 toolret-like tools would.

The machine has 2 cores shared with other work: medians, and the load average is printed.

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/tool_speed.py \\
        --data ../shared/data --out benchmarks/results/tool_speed.txt
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import data_parser, machine, write_report

from semrouter import EncodeCache, LocalEncoder, ToolIndex, ToolSpec
from semrouter.encoders import Encoder, Vectors

BATCH = LocalEncoder.batch_size
TARGET_BUILD_S = 15.0  # 1,000 tools, live encoder, empty cache
TARGET_RATIO = 1.1  # select() against the plain ranking call
TARGET_BEYOND_MS = 5.0  # 10,000 tools, beyond encoding


class TimedCache(EncodeCache):
    """An empty vector cache that times the encoding it asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.encoded = 0

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> Vectors:
        start = time.perf_counter()
        self.encoded += len(self.missing(encoder, texts))
        vectors = super().encode(encoder, texts)
        self.seconds += time.perf_counter() - start
        return vectors


def load(data: Path) -> tuple[list[ToolSpec], list[str]]:
    folder = data / "toolret"
    tools = [json.loads(line) for line in (folder / "tools.jsonl").open()]
    specs = [ToolSpec.from_schema(t["name"], t["description"], t["parameters"]) for t in tools]
    requests = [json.loads(line)["query"] for line in (folder / "test.jsonl").open()]
    return specs, requests


def copies(specs: list[ToolSpec], total: int) -> list[ToolSpec]:
    """``specs`` and renamed copies of them (``_v2``, ``_v3`` ...) up to ``total`` tools."""
    out, round_ = list(specs), 2
    while len(out) < total:
        out += [s.model_copy(update={"name": f"{s.name}_v{round_}"}) for s in specs]
        round_ += 1
    return out[:total]


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def interleaved(
    calls: dict[str, Callable[[str], Any]], requests: Sequence[str]
) -> dict[str, float]:
    """Median ms of each call, the calls taking turns on every request (rotating order); each
    call gets its own variant of the request (every text new to the caches)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i, request in enumerate(requests):
        for position, name in enumerate(names[i % len(names) :] + names[: i % len(names)]):
            variant = f"{request} ({name[:3]}{position})"
            start = time.perf_counter()
            calls[name](variant)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


# -- sections -----------------------------------------------------------------------------------
def texts_section(specs: list[ToolSpec], encoder: LocalEncoder, lines: list[str]) -> None:
    texts = [text for spec in specs for _, text in spec.texts()]
    distinct = list(dict.fromkeys(texts))
    tokenizer = encoder._tokenizer  # the encoder's own tokenizer, for counting only
    tokenizer.no_padding()
    try:
        counts = np.array([len(e.ids) for e in tokenizer.encode_batch(distinct)])
    finally:
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def padded(order: np.ndarray) -> int:
        ranked = counts[order]
        return sum(
            int(ranked[i : i + BATCH].max()) * len(ranked[i : i + BATCH])
            for i in range(0, len(ranked), BATCH)
        )

    given, ranked = padded(np.arange(len(counts))), padded(np.argsort(counts, kind="stable"))
    kinds: dict[str, int] = {}
    for spec in specs:
        for kind, _ in spec.texts():
            kinds[kind] = kinds.get(kind, 0) + 1
    lines += [
        f"## What {len(specs):,} tools encode",
        f"texts: {len(texts):,} ({len(texts) / len(specs):.2f} a tool: "
        + ", ".join(f"{k} {v:,}" for k, v in kinds.items())
        + f"), {len(distinct):,} distinct (each encoded once)",
        f"tokens a text: mean {counts.mean():.1f}, median {np.median(counts):.0f}, "
        f"max {counts.max()}; {counts.sum():,} in all",
        f"token positions run in batches of {BATCH}: in the given order {given:,} "
        f"({given / counts.sum():.2f} x the tokens), sorted by token count {ranked:,} "
        f"({ranked / counts.sum():.3f} x)",
    ]


def encode_orders(specs: list[ToolSpec], encoder: LocalEncoder, lines: list[str]) -> None:
    """The first 1,000 tools' distinct texts: batches in the given order (what the encoder did
    before) against ``encode()`` (sorted by token count)."""
    texts = list(dict.fromkeys(t for spec in specs for _, t in spec.texts()))
    encoder.encode(texts[:BATCH])  # warm
    start = time.perf_counter()
    given = np.concatenate(
        [encoder.encode_batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    )
    given_s = time.perf_counter() - start
    start = time.perf_counter()
    ranked = encoder.encode(texts)
    ranked_s = time.perf_counter() - start
    given /= np.linalg.norm(given, axis=1, keepdims=True)
    cosine = float((given * ranked).sum(axis=1).min())
    lines.append(
        f"encoding the {len(texts):,} distinct texts of {len(specs):,} tools: batches in the "
        f"given order {given_s:.1f} s, sorted by token count {ranked_s:.1f} s "
        f"({given_s / ranked_s:.2f} x faster; least cosine between the two vectors of a "
        f"text {cosine:.7f})"
    )


def build_section(
    specs: list[ToolSpec], encoder: LocalEncoder, folder: Path, lines: list[str], script: Path
) -> tuple[dict[str, float], TimedCache]:
    cache = TimedCache()
    start = time.perf_counter()
    first = ToolIndex(specs, encoder=encoder, cache=cache, path=folder)
    total = time.perf_counter() - start
    out = {"build_s": total, "encode_s": cache.seconds}
    lines.append(
        f"{len(specs):,} tools: build {total:.1f} s (encoding {cache.encoded:,} texts "
        f"{cache.seconds:.1f} s = {1000 * cache.seconds / max(cache.encoded, 1):.2f} ms a text; "
        f"the rest, mostly the route set's commit into the folder, {total - cache.seconds:.1f} s)"
    )
    encoded = cache.encoded
    again = EncodeCache()
    start = time.perf_counter()
    second = ToolIndex(specs, encoder=encoder, cache=again, path=folder)
    lines.append(
        f"  a second index on the same folder, same process: {time.perf_counter() - start:.2f} s,"
        f" {len(again)} texts encoded"
    )
    second.close()
    start = time.perf_counter()
    shared = ToolIndex(specs, encoder=encoder, cache=cache)  # a new collection, same cache
    lines.append(
        f"  a second index on a new collection sharing the process's vector cache: "
        f"{time.perf_counter() - start:.2f} s, {cache.encoded - encoded} texts "
        "encoded (the time is its commit)"
    )
    shared.close()
    first.close()
    result = subprocess.run(
        [sys.executable, str(script), "--child", str(folder), "--tools", str(len(specs))],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    child = json.loads(result.stdout.strip().splitlines()[-1])
    lines.append(
        f"  another process on the same folder: ToolIndex(tools, path=...) {child['seconds']:.2f}"
        f" s, {child['encoded']} texts encoded, ranks {child['tools']:,} tools"
    )
    return out, cache


def child(folder: Path, count: int, data: Path) -> None:
    specs, _ = load(data)
    encoder = LocalEncoder.shared()
    cache = EncodeCache()
    start = time.perf_counter()
    index = ToolIndex(specs[:count], encoder=encoder, cache=cache, path=folder)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "encoded": len(cache), "tools": len(index)}))
    index.close()


def beyond_encoding(
    index: ToolIndex, requests: list[str], selector: Any = None, lc_tools: Any = None
) -> dict[str, float]:
    """Median ms of ``rank_vectors`` on vectors computed beforehand, and of ``rank``/``select``
    on a request the index has just encoded (its request cache answers: no model)."""
    encoded = [index.encode_request(r) for r in requests]
    times: dict[str, list[float]] = {"rank_vectors ms": [], "rank(q, 5) ms": []}
    if selector is not None:
        times["select() ms"] = []
    for request, (texts, vectors) in zip(requests, encoded):
        calls: dict[str, Callable[[], Any]] = {
            "rank_vectors ms": lambda v=vectors, t=texts: index.rank_vectors(v, t, 5),
            "rank(q, 5) ms": lambda r=request: index.rank(r, 5),
        }
        if selector is not None:
            calls["select() ms"] = lambda r=request: selector.select(r, lc_tools)
        index.encode_request(request)  # in the request cache again
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tools", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.tools, args.data)
        return
    load_before = os.getloadavg()[0]
    specs, requests = load(args.data)
    sample = random.Random(1).sample(requests, min(args.requests, len(requests)))
    encoder = LocalEncoder.shared()
    encoder.encode(["warm up"])
    lines = [f"Tool index speed at scale (benchmarks/tool_speed.py); {machine(load_before)}", ""]
    texts_section(specs, encoder, lines)
    encode_orders(specs[:1000], encoder, lines)

    lines += ["", "## Build (live encoder, empty vector cache)"]
    builds: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1000, len(specs)):
            builds[count], cache = build_section(
                specs[:count], encoder, Path(tmp) / f"tools{count}", lines, Path(__file__)
            )
    one = builds[1000]["build_s"]
    lines.append(
        f"target: 1,000 tools build in < {TARGET_BUILD_S:.0f} s: {one:.1f} s "
        + ("(met)" if one < TARGET_BUILD_S else f"(missed by {one - TARGET_BUILD_S:.1f} s)")
    )

    # -- 4,076 tools: a learnt call, latency, beyond encoding --------------------------------------
    from tool_selection import langchain_tools

    from langchain_semrouter import SemRouterToolSelector

    tools = [json.loads(line) for line in (args.data / "toolret" / "tools.jsonl").open()]
    lc_tools = langchain_tools(tools)
    index = ToolIndex(encoder=encoder, cache=cache)  # the 4,076 tools' texts are in it
    selector = SemRouterToolSelector(index, max_tools=5, conversation=False)
    before = cache.encoded
    start = time.perf_counter()
    selector.index(lc_tools)
    lines += [
        "",
        f"## {len(specs):,} tools: the LangChain selector's index (built in "
        f"{time.perf_counter() - start:.1f} s from the vector cache of the build above: "
        f"{cache.encoded - before} texts encoded)",
    ]
    vectors = [index.encode_request(r)[1][0] for r in sample[:6]]
    learnt = [
        median_ms(lambda i=i: index.observe(specs[i].name, f"learnt call {i}", vectors[i]), 1)
        for i in range(6)
    ]
    lines.append(
        f"a learnt call (observe() with the request's vector): median "
        f"{statistics.median(learnt):.0f} ms (one commit of the route set)"
    )
    latency = interleaved(
        {
            "select() ms": lambda q: selector.select(q, lc_tools),
            "selector.rank(q, tools, 5) ms": lambda q: selector.rank(q, lc_tools, 5),
            "ToolIndex.rank(q, 5) ms": lambda q: index.rank(q, 5),
        },
        sample,
    )
    ratio = latency["select() ms"] / latency["ToolIndex.rank(q, 5) ms"]
    lines.append(
        "latency, live encoder, median of interleaved calls: "
        + ", ".join(f"{k} {v:.2f}" for k, v in latency.items())
    )
    lines.append(
        f"target: select() within {TARGET_RATIO} x the plain ranking call "
        f"(ToolIndex.rank): {ratio:.2f} x "
        + ("(met)" if ratio <= TARGET_RATIO else f"(missed by {ratio - TARGET_RATIO:.2f})")
    )

    lines += ["", "## Beyond encoding (request vectors computed beforehand), median ms"]
    beyond: dict[int, dict[str, float]] = {}
    for count in (1000, len(specs), 10_000):
        if count == len(specs):
            found = beyond_encoding(index, sample, selector, lc_tools)
        else:
            chosen = copies(specs, count) if count > len(specs) else specs[:count]
            start = time.perf_counter()
            before = cache.encoded
            other = ToolIndex(chosen, encoder=encoder, cache=cache)
            built = time.perf_counter() - start
            found = beyond_encoding(other, sample)
            found["build s (texts not in the cache)"] = built
            found["texts encoded"] = cache.encoded - before
            other.close()
        beyond[count] = found
        note = " (4,076 toolret tools + 5,924 renamed copies)" if count > len(specs) else ""
        lines.append(
            f"{count:,} tools{note}: " + ", ".join(f"{k} {v:.2f}" for k, v in found.items())
        )
    ten = beyond[10_000]["rank_vectors ms"]
    lines.append(
        f"target: 10,000 tools route in < {TARGET_BEYOND_MS:.0f} ms beyond encoding: "
        f"{ten:.2f} ms "
        + ("(met)" if ten < TARGET_BEYOND_MS else f"(missed by {ten - TARGET_BEYOND_MS:.2f})")
    )
    index.close()
    write_report("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
