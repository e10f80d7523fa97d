"""How the encoder and the search share the cores (issue 24, point 2): ONNX Runtime's threads.

For each ``LocalEncoder(threads=, spinning=)`` setting, in a fresh process each, a router of 10k
CLINC150 train utterances: 200 test queries encoded alone and routed, interleaved (as
``users_run.py``), the free-encoder floor, and the encoder's batch throughput. Two conditions:
the machine as it is, and beside one busy CPU thread at the same priority (another process, a
router learning in the background, a neighbour's job). Settings alternate in rounds.

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/encoder_threads.py \\
        --data ../shared/data --out benchmarks/results/encoder_threads.txt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import data_parser, machine, write_report

SETTINGS = {
    "threads=2, spinning (default)": {"threads": 2, "spinning": True},
    "threads=2, no spinning": {"threads": 2, "spinning": False},
    "threads=1": {"threads": 1, "spinning": True},
}


def child(data: Path, options: dict) -> None:
    from users_run import BenchEncoder, Corpus, batch, floor, interleaved

    from semrouter import SemanticRouter

    corpus = Corpus(data, queries=200)
    encoder = BenchEncoder(corpus.table, **options)
    router = SemanticRouter(corpus.routes("10k"), encoder=encoder)
    router.learn()
    live = interleaved(router, encoder, corpus.queries)
    free = floor(router, encoder, corpus.queries)
    rates = batch(router, encoder, corpus.queries)
    router.close()
    print(json.dumps({"live": live, "free": free, **rates}))


def run(data: Path, options: dict, busy: bool) -> dict:
    spinner = None
    if busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(options), "--data", str(data)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, json.loads(args.child))
        return
    load = os.getloadavg()[0]
    found: dict[tuple[str, bool], list[dict]] = {}
    for _ in range(args.rounds):
        for busy in (False, True):
            for label, options in SETTINGS.items():
                found.setdefault((label, busy), []).append(run(args.data, options, busy))

    def med(rows: list[dict], *keys: str) -> float:
        values = []
        for row in rows:
            value = row
            for key in keys:
                value = value[key]
            values.append(value)
        return statistics.median(values)

    lines = [
        f"LocalEncoder thread settings  ({machine(load)})",
        f"router of 10k CLINC150 utterances; medians of 200 queries, median of {args.rounds} "
        "rounds; 'beyond' = route() p50 - encode() p50, interleaved; floor = free encoder",
        "",
        f"{'setting':<32} {'condition':<16} {'encode p50':>10} {'route p50':>10} "
        f"{'beyond':>9} {'floor':>8} {'batch texts/s':>13}",
    ]
    for (label, busy), rows in found.items():
        enc, rte = med(rows, "live", "encode"), med(rows, "live", "route")
        free = med(rows, "free", "route") - med(rows, "free", "encode")
        lines.append(
            f"{label:<32} {'one busy thread' if busy else 'as is':<16} {enc:>7.2f} ms "
            f"{rte:>7.2f} ms {rte - enc:>6.3f} ms {free:>5.3f} ms "
            f"{med(rows, 'encode_tps'):>13.0f}"
        )
    write_report("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
