"""What the decision log costs ``route()``: without it, with the default sample, logging all.

One process, 20 routes x 5 utterances in an embedded folder; requests alternate between the
three routers (same routes, each its own folder) so that each sees the same machine state;
medians of ``route()`` per router. Two encoders: the FakeEncoder (the floor: routing alone) and
the real LocalEncoder (as users run it). The log writes in its background thread; its cost on
the request path is the sampling decision and a queue put.

Usage::

    .venv/bin/python benchmarks/decision_log_cost.py [--requests 2000] \\
        [--out benchmarks/results/decision_log_cost.txt]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter.encoders import Encoder

ROUTES = [Route(f"topic{i}", [f"question {j} about subject {i} and its details" for j in range(5)])
          for i in range(20)]  # fmt: skip
#: Distinct requests: every call encodes (the encoder's query cache never answers).
REQUESTS = [f"tell me about subject {i % 23} please, case {i}" for i in range(10_000)]


def measure(encoder: Encoder, requests: int, folder: str) -> list[str]:
    settings = {"no log": None, "log, sample 0.05": 0.05, "log everything": 1.0}
    routers = {}
    for i, (name, sample) in enumerate(settings.items()):
        router = SemanticRouter(ROUTES, encoder=encoder, path=Path(folder) / f"r{i}")
        if sample is not None:
            router.log_decisions(sample=sample)
        routers[name] = router
    times: dict[str, list[float]] = {name: [] for name in routers}
    for text in REQUESTS[-20:]:  # warm up
        for router in routers.values():
            router.route(text)
    for i in range(requests):
        for k, (name, router) in enumerate(routers.items()):
            text = REQUESTS[(3 * i + k) % (len(REQUESTS) - 20)]  # each router its own texts
            began = time.perf_counter()
            router.route(text)
            times[name].append(time.perf_counter() - began)
    base = statistics.median(times["no log"])
    lines = []
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"  {name:<18} route() median {1e3 * median:.3f} ms  ({median / base:.3f}x)")
    logged = len(routers["log everything"].decisions())
    lines.append(f"  decisions written by 'log everything': {logged}")
    for router in routers.values():
        router.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lines = [f"# decision_log_cost.py: {args.requests} route() calls per router, medians", ""]
    for label, encoder in (("FakeEncoder (routing alone)", FakeEncoder()), ("LocalEncoder", None)):
        if encoder is None:
            from semrouter.encoders import LocalEncoder

            encoder = LocalEncoder.shared()
        with tempfile.TemporaryDirectory() as folder:
            lines.append(f"## {label}")
            lines += measure(encoder, args.requests, folder)
            print("\n".join(lines), flush=True)
            lines.append("")
    if args.out is not None:
        args.out.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
