"""Measure the core performance targets of semrouter side by side, in one run.

Targets (from the core issue):

1. routing overhead beyond encoding, p50, embedded default: <= 0.15 ms at 10 utterances,
   <= 0.3 ms at 10k and <= 1 ms at 100k (1k reported too), next to a bare NumPy top-k,
   qdrant-client ``:memory:`` ``query_points`` and a bare Qdrant Edge shard;
2. ``route()`` end to end with the local encoder <= 1.1 x the encoder's single-query time;
3. reopening a persisted 10k-utterance router encodes 0 texts and is ready in < 0.2 s;
4. ``route_many`` throughput >= 0.95 x the encoder's own batch throughput;
5. the demo's peak RSS < 400 MB (``examples/demo.py``, or a stand-in seed example);
6. a fitted router's ``route()`` <= 1.1 x an unfitted one's.

Everything goes through the public API (``route``, ``route_vectors``, ``route_many``, ``fit``,
``SemanticRouter(path=...)``).

Vectors: 1k and 10k use real all-MiniLM-L6-v2 embeddings of generated texts (100 routes); 10k
and 100k also use synthetic vectors clustered around 100 route centroids (intra-route cosine
about 0.5, as MiniLM gives for paraphrases). The routing path is timed with a pre-computed
query vector: ``router.route_vectors`` (the public seam), i.e. ``route()`` minus
``encode()``; ``route()`` itself is also timed with an encoder that looks vectors up.

With ``--data`` (the folder holding ``clinc150/``), speed as users run it (``users_run.py``):
``route()`` with the real encoder interleaved at 10 / 10k / 100k CLINC150 utterances, straight
after building and after ``learn()``, beside the free-encoder floor; targets 2u (route() <= 1.1 x
encode() at 10k, <= 1.2 x at 100k) and 2f (overhead beyond encoding <= 1.3 x the floor).

Usage (every benchmark run under the shared lock)::

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/core_perf.py   # 5-8 minutes
    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/core_perf.py --quick
    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/core_perf.py \
        --data ../shared/data [--users-only] --out benchmarks/results/core_perf.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from semrouter import Route, SemanticRouter
from semrouter.encoders import Encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
import users_run
from benchtools import pct, time_pairs, write_report

try:  # optional: reports BLAS threads and times the exact search with one BLAS thread
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_info = threadpool_limits = None

ROOT = Path(__file__).resolve().parent.parent
DIM = 384
ROUTES = 100
SEED = 20240611

# -- data ------------------------------------------------------------------------------------

_TOPIC_WORDS = (
    "password account invoice refund flight hotel train ticket pizza order delivery parcel "
    "laptop phone printer wifi router email calendar meeting salary payslip holiday "
    "insurance mortgage loan credit card debit card bank transfer tax return pension doctor "
    "appointment prescription dentist gym membership yoga class recipe dinner wine coffee "
    "weather forecast football match tennis lesson movie ticket concert playlist podcast "
    "book loan library card car rental parking fine fuel price bicycle repair bus timetable "
    "taxi booking visa passport vaccine allergy headache sleep schedule diet plan grocery "
    "list shopping cart discount code gift card birthday party wedding venue photo album "
    "backup drive cloud storage antivirus software update keyboard monitor headphones "
    "camera smart watch thermostat heating boiler electricity bill water leak plumber "
    "electrician garden lawn mower pet food vet visit dog walking cat litter aquarium "
    "homework exam results course enrolment scholarship internship job interview resume "
    "cover letter promotion"
)
_TOPICS = tuple(dict.fromkeys(_TOPIC_WORDS.split()))
_TEMPLATES = (
    "how do I {v} my {t}",
    "I need help to {v} the {t}",
    "can you {v} a {t} for me",
    "what is the fastest way to {v} my {t}",
    "please {v} my {t} today",
    "is it possible to {v} the {t} online",
    "where can I {v} a new {t}",
    "my {t} is broken, can you {v} it",
    "I want to {v} my {t} as soon as possible",
    "who should I call to {v} the {t}",
)
_VERBS = ("change", "cancel", "check", "renew", "book", "fix", "pay for", "find", "update", "track")


def route_texts(routes: int, per_route: int) -> list[list[str]]:
    """``per_route`` distinct texts for each of ``routes`` topics (at most 100 per route)."""
    topics = [
        _TOPICS[i] if i < len(_TOPICS) else f"{_TOPICS[i % len(_TOPICS)]} {i}"
        for i in range(routes)
    ]
    out = []
    for topic in topics:
        texts = [tpl.format(v=v, t=topic) for tpl in _TEMPLATES for v in _VERBS]
        out.append(texts[:per_route])
    return out


def query_texts(count: int, seed: int = SEED) -> list[str]:
    """Held-out phrasings (not utterances) of the topics."""
    return labelled_queries(count, seed)[0]


def labelled_queries(count: int, seed: int = SEED) -> tuple[list[str], list[str]]:
    """Held-out phrasings and the route each belongs to."""
    rng = np.random.default_rng(seed)
    forms = ("could you {v} my {t} please", "{t}: I'd like to {v} it", "help, I must {v} a {t}")
    texts, labels = [], []
    for i in range(count):
        topic = int(rng.integers(ROUTES))
        texts.append(forms[i % 3].format(v=_VERBS[rng.integers(len(_VERBS))], t=_TOPICS[topic]))
        labels.append(f"route-{topic:03d}")
    return texts, labels


def synthetic(routes: int, per_route: int, queries: int, seed: int = SEED) -> tuple[Any, Any]:
    """Unit vectors clustered around route centroids, plus queries drawn the same way."""
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(DIM)
    common /= np.linalg.norm(common)
    centres = rng.standard_normal((routes, DIM)) / np.sqrt(DIM) + 0.35 * common
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(route_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        noise = rng.standard_normal((len(route_ids), DIM)) / np.sqrt(DIM)
        vectors = centres[route_ids] + noise  # same-route cosine about 0.5
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    utterances = draw(np.repeat(np.arange(routes), per_route)).reshape(routes, per_route, DIM)
    return utterances, draw(rng.integers(0, routes, queries))


class TableEncoder(Encoder):
    """Looks vectors up by text (no model): the routing path without encoder time.

    Counts the texts it was asked to encode, so a reopen can prove it encoded nothing.
    """

    default_threshold = 0.4

    def __init__(self, table: dict[str, npt.NDArray[np.float32]], model_id: str) -> None:
        self.table = table
        self.model_id = model_id
        self.dimension = DIM
        self.encoded_texts = 0

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.encoded_texts += len(texts)
        return np.stack([self.table[t] for t in texts])


# -- timing helpers --------------------------------------------------------------------------


def timings(func: Callable[[int], object], count: int, warmup: int = 10) -> list[float]:
    """Seconds per call of ``func(i)`` for i in range(count), after ``warmup`` calls."""
    for i in range(min(warmup, count)):
        func(i)
    out = []
    for i in range(count):
        start = time.perf_counter()
        func(i)
        out.append(time.perf_counter() - start)
    return out


def stats(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p90": pct(ordered, 0.9),
        "n": len(ordered),
    }


def ms(value: float) -> str:
    return f"{value * 1e3:.3f} ms" if value < 1 else f"{value:.2f} s"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- target 1: the routing path and its comparators ------------------------------------------


def routing_path(router: SemanticRouter, text: str, vector: npt.NDArray[np.float32]) -> Any:
    """route() minus encode(), through the public seam: search, score, decide."""
    return router.route_vectors(vector)


def build_router(
    label: str,
    groups: list[list[str]],
    table: dict[str, Any],
    *,
    search: str = "auto",
    path: str | None = None,
) -> tuple[SemanticRouter, float]:
    routes = [Route(f"route-{i:03d}", texts) for i, texts in enumerate(groups)]
    encoder = TableEncoder(table, model_id=f"bench-{label}")
    start = time.perf_counter()
    router = SemanticRouter(routes, encoder=encoder, search=search, path=path)  # type: ignore[arg-type]
    router.learn()  # measure the steady state, not a background learning run
    return router, time.perf_counter() - start


def edge_raw(
    matrix: npt.NDArray[np.float32], folder: str
) -> Callable[[npt.NDArray[np.float32]], Any]:
    """A bare Qdrant Edge shard of ``matrix`` (HNSW after optimize), queried directly."""
    import qdrant_edge as edge

    config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=DIM, distance=edge.Distance.Cosine))
    shard = edge.EdgeShard.create(folder, config)
    for lo in range(0, len(matrix), 1024):
        points = [
            edge.Point(id=lo + i, vector=v.tolist(), payload={})
            for i, v in enumerate(matrix[lo : lo + 1024])
        ]
        shard.update(edge.UpdateOperation.upsert_points(points))
    shard.optimize()

    def query(vector: npt.NDArray[np.float32]) -> Any:
        return shard.query(edge.QueryRequest(query=edge.Query.Nearest(vector.tolist()), limit=33))

    return query


def client_memory(matrix: npt.NDArray[np.float32]) -> tuple[Callable[[Any], Any], float]:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    start = time.perf_counter()
    client.create_collection(
        "bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    for lo in range(0, len(matrix), 4096):
        chunk = matrix[lo : lo + 4096]
        client.upsert(
            "bench", models.Batch(ids=list(range(lo, lo + len(chunk))), vectors=chunk.tolist())
        )
    build = time.perf_counter() - start
    return (lambda v: client.query_points("bench", query=v.tolist(), limit=33)), build


def numpy_topk(matrix: npt.NDArray[np.float32], k: int = 32) -> Callable[[Any], Any]:
    def query(vector: npt.NDArray[np.float32]) -> Any:
        sims = matrix @ vector
        top = np.argpartition(-sims, k - 1)[:k]
        return top[np.argsort(-sims[top])]

    return query


def bench_size(
    label: str,
    groups: list[list[str]],
    vectors: npt.NDArray[np.float32],
    queries: npt.NDArray[np.float32],
    n_queries: int,
    *,
    comparators: bool,
) -> dict[str, Any]:
    """Time the router's routing path at one size and, with ``comparators``, the alternatives."""
    texts = [t for g in groups for t in g]
    matrix = vectors.reshape(len(texts), DIM)
    qtexts = [f"query {i}" for i in range(len(queries))]
    table = dict(zip(texts, matrix, strict=False))
    table.update(zip(qtexts, queries, strict=False))
    qv = [q[None, :] for q in queries]
    out: dict[str, Any] = {"label": label, "utterances": len(texts)}

    log(f"{label}: building router (search=auto)")
    router, build = build_router(label, groups, table)
    mode = "exact" if router.index_size <= router.options.exact_limit else "qdrant-hnsw"
    out["router"] = {"mode": mode, "build_s": build}
    n = min(n_queries, len(queries))
    out["router"]["path"] = stats(timings(lambda i: routing_path(router, qtexts[i], qv[i]), n))
    out["router"]["route"] = stats(timings(lambda i: router.route(qtexts[i]), n))
    if mode == "exact" and threadpool_limits is not None:
        with threadpool_limits(1):
            blas1 = timings(lambda i: routing_path(router, qtexts[i], qv[i]), n)
        out["router"]["path_blas1"] = stats(blas1)
    if not comparators:
        router.close()
        return out
    out["numpy_topk"] = stats(timings(lambda i: numpy_topk(matrix)(queries[i]), n))
    if mode == "exact":
        log(f"{label}: building router (search=qdrant, optimize)")
        hnsw, build = build_router(label + "-q", groups, table, search="qdrant")
    else:
        hnsw = router
    out["router_qdrant"] = {
        "build_s": build,
        "path": stats(timings(lambda i: routing_path(hnsw, qtexts[i], qv[i]), n)),
    }
    with tempfile.TemporaryDirectory(prefix="semrouter-bench-edge-") as folder:
        raw = edge_raw(matrix, folder)
        out["edge_raw"] = stats(timings(lambda i: raw(queries[i]), n))
    if hnsw is not router:
        hnsw.close()
    router.close()
    log(f"{label}: qdrant-client :memory:")
    query, build = client_memory(matrix)
    out["client_memory"] = stats(timings(lambda i: query(queries[i]), min(n, 100), warmup=3))
    out["client_memory"]["build_s"] = build
    return out


# -- targets 2-5 -----------------------------------------------------------------------------


def bench_local(
    router: SemanticRouter, encoder: Any, n_single: int, n_batch: int
) -> dict[str, Any]:
    """Targets 2 and 4 (and the fitted router's cost), encoder and router timed interleaved.

    ``router`` was reopened with the real encoder on a folder filled from pre-computed MiniLM
    vectors: nothing is re-encoded, exactly as a user's reopened router.
    """
    texts = query_texts(max(n_single, n_batch), seed=SEED + 1)
    for text in texts[:10]:
        encoder.encode([text])
        router.route(text)

    def singles() -> tuple[list[float], list[float]]:
        return time_pairs(texts[:n_single], lambda text: encoder.encode([text]), router.route)

    enc, rte = singles()
    blas1: dict[str, Any] = {}
    if threadpool_limits is not None:  # the proposed fix: one BLAS thread for the query
        with threadpool_limits(1, user_api="blas"):
            enc1, rte1 = singles()
        blas1 = {"encode_single": stats(enc1), "route_single": stats(rte1)}
    vectors = encoder.encode(texts[:n_single])
    unfitted_path = timings(lambda i: router.route_vectors(vectors[i : i + 1]), n_single)
    fit_texts, fit_labels = labelled_queries(600, seed=SEED + 7)
    router.fit(fit_texts, fit_labels)
    enc_f, rte_f = singles()
    fitted_path = timings(lambda i: router.route_vectors(vectors[i : i + 1]), n_single)
    router.set_calibration(None)
    batch = texts[:n_batch]
    enc_b, rte_b = time_pairs([batch] * 2, encoder.encode, router.route_many)
    router.close()
    return {
        "utterances": router.index_size,
        "encode_single": stats(enc),
        "route_single": stats(rte),
        "batch_texts": n_batch,
        "encode_batch_s": min(enc_b),
        "route_many_s": min(rte_b),
        "blas1": blas1,
        "fitted": {
            "encode_single": stats(enc_f),
            "route_single": stats(rte_f),
            "path": stats(fitted_path),
            "unfitted_path": stats(unfitted_path),
        },
    }


def bench_reopen(groups: list[list[str]], table: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Target 3: reopen a persisted router; nothing encoded, time to ready."""
    routes = [Route(f"route-{i:03d}", g) for i, g in enumerate(groups)]
    with tempfile.TemporaryDirectory(prefix="semrouter-bench-") as folder:
        first = TableEncoder(table, "bench-reopen")
        start = time.perf_counter()
        SemanticRouter(routes, encoder=first, path=folder).close()
        create = time.perf_counter() - start
        times, encoded = [], []
        for _ in range(repeats):
            encoder = TableEncoder(table, "bench-reopen")
            start = time.perf_counter()
            router = SemanticRouter(routes, encoder=encoder, path=folder)
            times.append(time.perf_counter() - start)
            encoded.append(router.last_sync.encoded + encoder.encoded_texts)
            router.close()
    return {
        "utterances": sum(map(len, groups)),
        "create_s": create,
        "open": stats(times),
        "encoded": max(encoded),
    }


_SEED_EXAMPLE = """
from semrouter import Route, SemanticRouter
router = SemanticRouter([
    Route("greeting", ["hello", "hi there", "good morning", "hey, how are you?",
                       "nice to meet you"]),
    Route("weather", ["what's the weather like", "will it rain today", "is it sunny outside",
                      "how cold is it", "weather forecast for tomorrow"]),
])
print(router.route("hi, how is it going?").name, router.route("do I need an umbrella?").name)
"""


def bench_rss() -> dict[str, Any]:
    """Target 5: peak RSS of the demo (or of the seed example) in a child process."""
    demo = ROOT / "examples" / "demo.py"
    command = (
        [sys.executable, str(demo)] if demo.exists() else [sys.executable, "-c", _SEED_EXAMPLE]
    )
    # Output goes to a file (a full pipe would block the child); os.wait4 gives this child's
    # own rusage, the per-child form of resource.getrusage(RUSAGE_CHILDREN).
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed:\n{text[-2000:]}")
    return {
        "script": "examples/demo.py"
        if demo.exists()
        else "seed example (examples/demo.py missing)",
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "output": text.strip().splitlines()[-1][-120:] if text.strip() else "",
    }


# -- report ----------------------------------------------------------------------------------


def verdict(value: float, limit: float, *, higher_is_better: bool = False) -> str:
    ok = value >= limit if higher_is_better else value <= limit
    if ok:
        return "MET"
    factor = limit / value if higher_is_better else value / limit
    return f"MISSED by {factor:.2f}x"


def ratio_row(
    target: str,
    value: float,
    limit: float,
    *,
    p90: float | None = None,
    higher_is_better: bool = False,
) -> dict[str, str]:
    """A target row for a ratio that must stay at most ``limit`` (at least: higher_is_better)."""
    row = {
        "target": target,
        "limit": f"{'>=' if higher_is_better else '<='} {limit:.2f}",
        "p50": f"{value:.3f}",
    }
    if p90 is not None:
        row["p90"] = f"{p90:.3f}"
    row["verdict"] = verdict(value, limit, higher_is_better=higher_is_better)
    return row


def blas_info() -> str:
    if threadpool_info is None:
        config = np.show_config(mode="dicts") or {}
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')} (threadpoolctl not installed)"
    return "; ".join(
        f"{p['internal_api']} {p.get('version')} threads={p['num_threads']}"
        for p in threadpool_info()
    )


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    env = results["env"]
    add("semrouter core performance  (" + env["when"] + ")")
    add(f"python {env['python']}, numpy {env['numpy']}, {env['cpus']} cpus, load avg {env['load']}")
    add(f"BLAS: {env['blas']} (env left as is)")
    add(f"mode: {'quick' if env['quick'] else 'full'}; times are median (p50) / p90 over n queries")
    add("")
    add("== targets ==")
    add(f"{'target':<52} {'limit':>10} {'p50':>11} {'p90':>11}  verdict")
    for row in results["targets"]:
        p90 = row.get("p90", "")
        add(f"{row['target']:<52} {row['limit']:>10} {row['p50']:>11} {p90:>11}  {row['verdict']}")
    add("")
    add("== target 1 side by side: time per single query, pre-computed query vector ==")
    header = f"{'index':<15} {'mode':<12} {'router path':>16} {'path BLAS 1thr':>16}"
    header += f" {'route() no-enc':>16} {'router qdrant':>16} {'numpy top-k':>16}"
    header += f" {'edge raw query':>16} {'client :memory:':>16}"
    add(header)

    def cell(entry: Any) -> str:
        return f"{ms(entry['p50'])}/{entry['p90'] * 1e3:.2f}" if entry else "-"

    for size in results["sizes"]:
        r = size["router"]
        add(
            f"{size['label']:<15} {r['mode']:<12} {cell(r['path']):>16} "
            f"{cell(r.get('path_blas1')):>16} {cell(r['route']):>16} "
            f"{cell(size.get('router_qdrant', {}).get('path')):>16} "
            f"{cell(size.get('numpy_topk')):>16} {cell(size.get('edge_raw')):>16} "
            f"{cell(size.get('client_memory')):>16}"
        )
    add("(cells: p50 / p90 in ms)")
    add("build times (sync + index; encoding is a table lookup):")
    for size in results["sizes"]:
        parts = [f"router {size['router']['build_s']:.1f} s ({size['router']['mode']})"]
        if "router_qdrant" in size:
            parts.append(
                f"router search=qdrant incl. optimize {size['router_qdrant']['build_s']:.1f} s"
            )
        if "client_memory" in size:
            parts.append(f"qdrant-client :memory: upsert {size['client_memory']['build_s']:.1f} s")
        add(f"  {size['label']:<15} " + "; ".join(parts))
    local = results["local"]
    add("")
    add(f"== targets 2 and 4: LocalEncoder, router of {local['utterances']} real utterances ==")
    add(
        f"encode([text])  {cell(local['encode_single'])} ms   "
        f"route(text) {cell(local['route_single'])} ms  (p50/p90, interleaved)"
    )
    if local["blas1"]:
        add(
            f"with numpy BLAS at 1 thread: encode([text]) {cell(local['blas1']['encode_single'])}"
            f" ms   route(text) {cell(local['blas1']['route_single'])} ms"
        )
    n = local["batch_texts"]
    add(
        f"encode({n})  {local['encode_batch_s']:.2f} s = {n / local['encode_batch_s']:.0f} "
        f"texts/s;  route_many({n})  {local['route_many_s']:.2f} s = "
        f"{n / local['route_many_s']:.0f} texts/s  (best of 2, interleaved)"
    )
    reopen = results["reopen"]
    add("")
    add(
        f"== target 3: reopen {reopen['utterances']} utterances: first build "
        f"{reopen['create_s']:.2f} s, reopen {cell(reopen['open'])} ms, "
        f"encoded {reopen['encoded']} =="
    )
    rss = results["rss"]
    add(
        f"== target 5: {rss['script']}: peak RSS {rss['peak_rss_mb']:.0f} MB "
        f"(output: {rss['output']!r}) =="
    )
    add(f"total run time {results['total_s']:.0f} s")
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    by_label = {s["label"]: s for s in results["sizes"]}
    for label, limit in (
        ("10 real", 0.15e-3),
        ("1k real", None),
        ("10k real", 0.3e-3),
        ("10k synthetic", None),
        ("100k synthetic", 1e-3),
    ):
        if label not in by_label:
            continue
        path = by_label[label]["router"]["path"]
        rows.append(
            {
                "target": f"1. routing overhead p50, {label}",
                "limit": f"{limit * 1e3:.1f} ms" if limit else "(report)",
                "p50": ms(path["p50"]),
                "p90": ms(path["p90"]),
                "verdict": verdict(path["p50"], limit) if limit else "-",
            }
        )
    local = results["local"]
    for target, timed in (
        ("2. route() / encode() single, p50 ratio", local),
        ("2'. same, numpy BLAS at 1 thread (proposal)", local["blas1"]),
    ):
        if timed:
            route, encode = timed["route_single"], timed["encode_single"]
            p90 = route["p90"] / encode["p90"]
            rows.append(ratio_row(target, route["p50"] / encode["p50"], 1.1, p90=p90))
    reopen = results["reopen"]
    rows.append(
        {
            "target": f"3a. reopen {reopen['utterances'] // 1000}k: texts encoded",
            "limit": "0",
            "p50": str(reopen["encoded"]),
            "verdict": "MET" if reopen["encoded"] == 0 else f"MISSED ({reopen['encoded']} encoded)",
        }
    )
    rows.append(
        {
            "target": f"3b. reopen {reopen['utterances'] // 1000}k: ready time",
            "limit": "< 0.2 s",
            "p50": ms(reopen["open"]["p50"]),
            "p90": ms(reopen["open"]["p90"]),
            "verdict": verdict(reopen["open"]["p50"], 0.2),
        }
    )
    share = local["encode_batch_s"] / local["route_many_s"]
    target = f"4. route_many / encode throughput ({local['batch_texts']} texts)"
    rows.append(ratio_row(target, share, 0.95, higher_is_better=True))
    fitted = local["fitted"]
    ratio = fitted["route_single"]["p50"] / local["route_single"]["p50"]
    rows.append(ratio_row("6. fitted / unfitted route(), p50 ratio", ratio, 1.1))
    rows.append(
        {
            "target": "6'. routing overhead fitted (unfitted), 10k",
            "limit": "(report)",
            "p50": ms(fitted["path"]["p50"]),
            "p90": ms(fitted["unfitted_path"]["p50"]),
            "verdict": "-",
        }
    )
    rss = results["rss"]["peak_rss_mb"]
    rows.append(
        {
            "target": "5. demo peak RSS",
            "limit": "< 400 MB",
            "p50": f"{rss:.0f} MB",
            "verdict": verdict(rss, 400),
        }
    )
    return rows


# -- as users run (issue 24, point 1): users_run.py ---------------------------------------------


def users_targets(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Targets 2u and 2f on the as-users-run rows (after learn())."""
    out = []
    for row in rows:
        if row["state"] != "after learn()":
            continue
        live, free = row["live"], row["free"]
        ratio = live["route"] / live["encode"]
        limit = {"10k": 1.1, "100k": 1.2}.get(row["size"])
        out.append(
            {
                "target": f"2u. route()/encode() real encoder, {row['size']}",
                "limit": f"<= {limit:.2f}" if limit else "(report)",
                "p50": f"{ratio:.3f}",
                "verdict": verdict(ratio, limit) if limit else "-",
            }
        )
        beyond = live["route"] - live["encode"]
        floor = free["route"] - free["encode"]
        out.append(
            {
                "target": f"2f. beyond encoding / floor, {row['size']}",
                "limit": "<= 1.30",
                "p50": f"{beyond / floor:.2f}",
                "p90": f"{beyond:.3f}/{floor:.3f}",
                "verdict": verdict(beyond / floor, 1.3),
            }
        )
        evicted = row["evicted"]["route"] - row["evicted"]["encode"]
        out.append(
            {
                "target": f"2e. beyond encoding / floor, caches evicted, {row['size']}",
                "limit": "(report)",
                "p50": f"{beyond / evicted:.2f}",
                "p90": f"{beyond:.3f}/{evicted:.3f}",
                "verdict": "-",
            }
        )
    return out


def users_report(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["", "== as users run: LocalEncoder interleaved, CLINC150 utterances =="]
    lines += users_run.table(rows)
    for row in rows:
        if row["learn_wait_s"] > 0.05:
            lines.append(
                f"{row['utterances']} utterances: learn() waited {row['learn_wait_s']:.1f} s "
                f"for background learning (build {row['build_s']:.1f} s): the 'after build' "
                "row was measured while it ran"
            )
    return "\n".join(lines)


def users_only(args: argparse.Namespace) -> int:
    begin = time.perf_counter()
    env = (
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; python {platform.python_version()}, "
        f"{os.cpu_count()} cpus, load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rows = users_run.measure(
        users_run.Corpus(args.data, queries=60 if args.quick else 300),
        args.sizes.split(","),
        log=log,
        spinning=not args.no_spinning,
    )
    spin = "LocalEncoder(spinning=False)" if args.no_spinning else "LocalEncoder() defaults"
    lines = [f"semrouter speed as users run, {spin}  ({env})", "", "== targets =="]
    lines.append(f"{'target':<52} {'limit':>10} {'p50':>11} {'p90':>11}  verdict")
    for row in users_targets(rows):
        lines.append(
            f"{row['target']:<52} {row['limit']:>10} {row['p50']:>11} "
            f"{row.get('p90', ''):>11}  {row['verdict']}"
        )
    lines.append("(2f, 2e: p90 column = beyond encoding / floor in ms)")
    text = "\n".join(lines) + users_report(rows)
    text += f"\nload avg at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
    text += f"run time {time.perf_counter() - begin:.0f} s"
    write_report(text, args.out, json_out=args.json, data=rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few queries (smoke run)"
    )
    parser.add_argument("--json", type=Path, help="also write machine-readable results here")
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument("--data", type=Path, help="benchmark data (clinc150/): as users run it")
    parser.add_argument(
        "--users-only", action="store_true", help="with --data: only the as-users-run part"
    )
    parser.add_argument("--sizes", default="10,10k,100k", help="as-users-run sizes")
    parser.add_argument(
        "--no-spinning", action="store_true", help="as users run with LocalEncoder(spinning=False)"
    )
    args = parser.parse_args(argv)
    if args.users_only:
        if args.data is None:
            parser.error("--users-only needs --data")
        return users_only(args)
    begin = time.perf_counter()
    quick = args.quick
    n_queries = 60 if quick else 300
    results: dict[str, Any] = {
        "env": {
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "blas": blas_info(),
            "quick": quick,
        },
        "sizes": [],
    }

    log("target 5: demo RSS")
    results["rss"] = bench_rss()

    from semrouter.encoders import LocalEncoder

    encoder = LocalEncoder()
    per_route_real = 10 if quick else 100
    groups = route_texts(ROUTES, per_route_real)
    texts = [t for g in groups for t in g]
    log(f"encoding {len(texts)} utterances with LocalEncoder (real embeddings)")
    real = encoder.encode(texts)
    real_queries = encoder.encode(query_texts(n_queries))
    tiny = [g[:5] for g in groups[:2]]
    tiny_vectors = real.reshape(ROUTES, per_route_real, DIM)[:2, :5]
    results["sizes"].append(
        bench_size("10 real", tiny, tiny_vectors, real_queries, n_queries, comparators=False)
    )
    small = [g[:10] for g in groups]
    small_vectors = real.reshape(ROUTES, per_route_real, DIM)[:, :10]
    results["sizes"].append(
        bench_size("1k real", small, small_vectors, real_queries, n_queries, comparators=True)
    )
    if not quick:
        results["sizes"].append(
            bench_size("10k real", groups, real, real_queries, n_queries, comparators=True)
        )

    sizes = (
        [("10k synthetic", 100)] if quick else [("10k synthetic", 100), ("100k synthetic", 1000)]
    )
    for label, per_route in sizes:
        vectors, queries = synthetic(ROUTES, per_route, n_queries)
        syn_groups = [[f"r{r} utterance {j}" for j in range(per_route)] for r in range(ROUTES)]
        results["sizes"].append(
            bench_size(label, syn_groups, vectors, queries, n_queries, comparators=True)
        )

    log("target 3: reopen")
    table = dict(zip(texts, real, strict=False))
    reopen_groups = groups if not quick else route_texts(ROUTES, 100)
    if quick:
        table.update(
            zip(
                [t for g in reopen_groups for t in g],
                synthetic(ROUTES, 100, 1)[0].reshape(-1, DIM),
                strict=False,
            )
        )
    results["reopen"] = bench_reopen(reopen_groups, table, repeats=3 if quick else 7)

    log("targets 2 and 4: LocalEncoder end to end (a reopened persisted router)")
    with tempfile.TemporaryDirectory(prefix="semrouter-bench-local-") as folder:
        routes = [Route(f"route-{i:03d}", g) for i, g in enumerate(groups)]
        stand_in = TableEncoder(dict(zip(texts, real, strict=False)), encoder.model_id)
        SemanticRouter(routes, encoder=stand_in, path=folder).close()  # the same fingerprint
        local_router = SemanticRouter(routes, encoder=encoder, path=folder)
        assert local_router.last_sync.encoded == 0
        local_router.learn()  # the stand-in's learning run may still be going: steady state
        results["local"] = bench_local(
            local_router, encoder, n_single=50 if quick else 300, n_batch=200 if quick else 1000
        )

    if args.data is not None:
        log("as users run: the real encoder beside the search (CLINC150)")
        results["users_run"] = users_run.measure(
            users_run.Corpus(args.data, queries=60 if quick else 300), log=log
        )
    results["total_s"] = time.perf_counter() - begin
    results["targets"] = targets(results) + users_targets(results.get("users_run", []))
    text = report(results) + users_report(results.get("users_run", []))
    write_report(text, args.out, json_out=args.json, data=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
