"""Hybrid dense + sparse routing against dense only (issue 15, part 2).

Corpora: CLINC150 and BANKING77 (every train utterance as a route example), and
``benchmarks/data/lexical_routes.json``, routes told apart by a product code, an error code or
a person's name (written for this benchmark). Each in two settings: the default router with no
labelled data (it learns from its own utterances) and after ``fit()``.

Systems, all through the public API with the same vectors (``LocalEncoder``, cached):

* ``dense``: ``hybrid="off"`` (what a router does by default unless ``fit()`` finds hybrid
  routing significantly better on its held-out texts; what ``fit()`` itself chose is printed);
* ``dbsf`` / ``rrf``: ``SemanticRouter(hybrid=..., hybrid_weight=w)``, the lexical ranking
  fused per route (``_lexical.py``), ``w`` in {0.25, 0.5, 1, 2};
* ``qdrant point fusion``: what Qdrant's prefetch + fusion gives on its own: an Edge shard
  holding each utterance's dense and BM25 vectors (IDF modifier), queried with two prefetches
  (dense, sparse) fused by RRF or DBSF; a query goes to the route of the best fused point.
  Shown on validation beside its dense-only counterpart (the nearest-neighbour router,
  ``learn=False``): this is why semrouter fuses per route instead.

The committed output is this script's third full run. The first ran before ``fit()`` learnt to
cross-fit (issue 13) and without the nearest-neighbour line; it chose the same settings except
for CLINC150's ``fit()`` (dbsf 0.25 then, rrf 0.25 now), and its test gains differed by at most
0.1 point. The second ran before ``fit()`` tried hybrid routing itself; the third chose the same
settings and measured the same test figures.

The lexical set was written twice before the first run: the first version was too easy (dense
100 % on test), the second reused the utterance wording in the queries, so the query's intent
words outweighed its code in BM25 as much as in the embedding. The committed version words the
queries differently from the utterances, as users do.

Everything is chosen on validation: the fusion and its weight per corpus and setting (CLINC150
``val``, BANKING77 ``valid``, the lexical set's ``validation``); ``fit()`` is given the even
rows of that split (as ``validation=``: the route utterances train its head) and the choice is
made on the odd rows. Test is measured once, for the
dense router and the chosen hybrid one. Accuracy is top-1 over in-scope queries (no
abstention). Latency: median per-query ``route()`` cost over the lexical set and over CLINC150
(15k utterances, in-process search), hybrid against dense, encoding excluded.

    python benchmarks/hybrid.py --data ../shared/data [--cache /tmp/semrouter-bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "quality"))
from compare import TableEncoder, corpora, embed_table, routes_from

from semrouter import Route, SemanticRouter

Rows = list[tuple[str, str]]
WEIGHTS = (0.25, 0.5, 1.0, 2.0)
HERE = Path(__file__).parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_lexical() -> tuple[list[tuple[str, list[str]]], Rows, Rows]:
    doc = json.loads((HERE / "data" / "lexical_routes.json").read_text())
    routes = [(r["name"], r["utterances"]) for r in doc["routes"]]
    return routes, [tuple(x) for x in doc["validation"]], [tuple(x) for x in doc["test"]]


def accuracy(router: SemanticRouter, encoder: TableEncoder, rows: Rows) -> float:
    texts = [t for t, _ in rows]
    matches = router.top_routes_vectors(
        encoder.encode(texts), 1, apply_threshold=False, texts=texts
    )
    right = sum(bool(m) and m[0].name == gold for m, (_, gold) in zip(matches, rows))
    return right / len(rows)


def build(
    routes: list[tuple[str, list[str]]],
    encoder: TableEncoder,
    fit_rows: Rows | None,
) -> SemanticRouter:
    router = SemanticRouter([Route(n, u) for n, u in routes], encoder=encoder, threshold=-1.0)
    router.learn()
    if fit_rows is not None:
        texts, labels = [t for t, _ in fit_rows], [g for _, g in fit_rows]
        router.fit(validation=(texts, labels))  # the route utterances train the head
    return router


def point_fusion(
    routes: list[tuple[str, list[str]]], encoder: TableEncoder, rows: Rows
) -> dict[str, float]:
    """Qdrant's own prefetch + fusion on an Edge shard, best fused point's route."""
    import qdrant_edge as qe

    bm25 = qe.Bm25(qe.Bm25Config())
    names = [n for n, u in routes for _ in u]
    texts = [t for _, u in routes for t in u]
    vectors = encoder.encode(texts)
    folder = tempfile.mkdtemp(prefix="semrouter-hybrid-")
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=vectors.shape[1], distance=qe.Distance.Cosine),
        sparse_vectors={"lexical": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        wal_enabled=False,
    )
    shard = qe.EdgeShard.create(folder, config)
    points = [
        qe.Point(id=i + 1, vector={"": v.tolist(), "lexical": bm25.embed_document(t)})
        for i, (t, v) in enumerate(zip(texts, vectors))
    ]
    for start in range(0, len(points), 1000):
        shard.update(qe.UpdateOperation.upsert_points(points[start : start + 1000]))
    queries = [t for t, _ in rows]
    qvectors = encoder.encode(queries)
    out = {}
    for label, fusion in (("rrf", qe.Fusion.Rrf(k=2)), ("dbsf", qe.Fusion.Dbsf())):
        requests = [
            qe.QueryRequest(
                limit=1,
                query=fusion,
                prefetches=[
                    qe.Prefetch(limit=32, query=qe.Query.Nearest(v.tolist())),
                    qe.Prefetch(
                        limit=32, query=qe.Query.Nearest(bm25.embed_query(q), using="lexical")
                    ),
                ],
            )
            for q, v in zip(queries, qvectors)
        ]
        results = shard.query_batch(qe.QueryBatchRequest(requests))
        right = sum(
            bool(r) and names[int(r[0].id) - 1] == gold for r, (_, gold) in zip(results, rows)
        )
        out[label] = right / len(rows)
    shard.close()
    return out


def run_corpus(
    title: str,
    routes: list[tuple[str, list[str]]],
    encoder: TableEncoder,
    val: Rows,
    test: Rows,
) -> dict[str, Any]:
    result: dict[str, Any] = {"corpus": title}
    fit_half, choose_half = val[0::2], val[1::2]
    for setting, fit_rows, choose in (
        ("no labels", None, val),
        ("fit()", fit_half, choose_half),
    ):
        log(f"[{title}] {setting}: building ...")
        router = build(routes, encoder, fit_rows)
        calibration = router.calibration
        if calibration is not None:  # fit() tries hybrid routing on its held-out texts itself
            result[f"{setting} fit chose"] = f"{calibration.hybrid} w={calibration.hybrid_weight:g}"
        router.configure(hybrid="off")
        scores = {"dense": accuracy(router, encoder, choose)}
        for method in ("dbsf", "rrf"):
            for weight in WEIGHTS:
                router.configure(hybrid=method, hybrid_weight=weight)
                scores[f"{method} w={weight:g}"] = accuracy(router, encoder, choose)
        best = max(scores, key=lambda k: (scores[k], k == "dense"))  # ties: stay dense
        router.configure(hybrid="off")
        test_dense = accuracy(router, encoder, test)
        test_best = test_dense
        if best != "dense":
            method, weight = best.split(" w=")
            router.configure(hybrid=method, hybrid_weight=float(weight))
            test_best = accuracy(router, encoder, test)
        router.close()
        result[setting] = {
            "validation": scores,
            "chosen": best,
            "test_dense": test_dense,
            "test_chosen": test_best,
        }
        log(f"  chosen {best}: test {test_dense:.3f} -> {test_best:.3f}")
    log(f"[{title}] Qdrant point fusion ...")
    result["point_fusion_validation"] = point_fusion(routes, encoder, val)
    plain = SemanticRouter(
        [Route(n, u) for n, u in routes], encoder=encoder, threshold=-1.0, learn=False
    )
    result["nearest_neighbour_validation"] = accuracy(plain, encoder, val)
    plain.close()
    return result


def latency(
    routes: list[tuple[str, list[str]]], encoder: TableEncoder, rows: Rows, repeat: int
) -> dict[str, float]:
    """Median route() cost per query, encoding excluded (vectors given), dense vs hybrid."""
    router = build(routes, encoder, None)
    texts = [t for t, _ in rows][:repeat]
    vectors = encoder.encode(texts)
    out = {}
    for mode in ("off", "dbsf", "off", "dbsf"):  # twice each, interleaved; the second counts
        router.configure(hybrid=mode)
        times = []
        for text, vector in zip(texts, vectors):
            started = time.perf_counter()
            router.route_vectors(vector[None, :], texts=[text])
            times.append(time.perf_counter() - started)
        out[mode] = statistics.median(times) * 1000
    router.close()
    return out


def render(results: list[dict[str, Any]], timing: dict[str, dict[str, float]]) -> str:
    lines = [
        "Hybrid dense + sparse routing vs dense only (benchmarks/hybrid.py)",
        "encoder: LocalEncoder (all-MiniLM-L6-v2 int8); top-1 accuracy on in-scope queries",
        "",
        "Validation (chooses the fusion and weight; fit() settings: odd rows of validation)",
    ]
    for result in results:
        for setting in ("no labels", "fit()"):
            scores = result[setting]["validation"]
            ranked = sorted(scores.items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{k} {v * 100:.1f}" for k, v in ranked[:4])
            chose = result.get(f"{setting} fit chose")
            lines.append(
                f"  {result['corpus']:<14} {setting:<9}  dense {scores['dense'] * 100:.1f} | "
                f"best: {shown}" + (f" | fit() itself chose: {chose}" if chose else "")
            )
        fusion = result["point_fusion_validation"]
        lines.append(
            f"  {result['corpus']:<14} Qdrant point fusion: rrf {fusion['rrf'] * 100:.1f}, "
            f"dbsf {fusion['dbsf'] * 100:.1f}; its dense-only counterpart (nearest "
            f"neighbour, no head) {result['nearest_neighbour_validation'] * 100:.1f}"
        )
    lines += ["", "Test (measured once)", ""]
    lines.append(
        f"  {'corpus':<14} {'setting':<9}  {'dense':>7}  {'hybrid':>7}  {'gain':>6}  chosen"
    )
    for result in results:
        for setting in ("no labels", "fit()"):
            r = result[setting]
            gain = (r["test_chosen"] - r["test_dense"]) * 100
            lines.append(
                f"  {result['corpus']:<14} {setting:<9}  {r['test_dense'] * 100:6.1f}%  "
                f"{r['test_chosen'] * 100:6.1f}%  {gain:+5.1f}  {r['chosen']}"
            )
    lines += ["", "Per-query route() cost, encoding excluded (median, ms)"]
    for name, t in timing.items():
        lines.append(
            f"  {name:<14} dense {t['off']:.3f}  hybrid {t['dbsf']:.3f}  "
            f"({t['dbsf'] / t['off']:.2f}x)"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrouter-bench"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hybrid.txt")
    args = parser.parse_args()

    lex_routes, lex_val, lex_test = load_lexical()
    lex_texts = [t for _, u in lex_routes for t in u] + [t for t, _ in lex_val + lex_test]
    lex_encoder = TableEncoder(embed_table("lexical", lex_texts, args.cache))
    (clinc, clinc_encoder), (banking, banking_encoder) = corpora(args.data, args.cache)
    clinc_routes = routes_from(clinc["train"], None, 0)
    results = [
        run_corpus("lexical set", lex_routes, lex_encoder, lex_val, lex_test),
        run_corpus("CLINC150", clinc_routes, clinc_encoder, clinc["val"], clinc["test"]),
        run_corpus(
            "BANKING77",
            routes_from(banking["train"], None, 0),
            banking_encoder,
            banking["valid"],
            banking["test"],
        ),
    ]
    timing = {
        "lexical set": latency(lex_routes, lex_encoder, lex_test, 78),
        "CLINC150": latency(clinc_routes, clinc_encoder, clinc["test"], 500),
    }
    text = render(results, timing)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"results": results, "latency_ms": timing}, indent=1) + "\n"
    )
    print(text)


if __name__ == "__main__":
    main()
