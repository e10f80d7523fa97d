"""Routing with no labelled data (issue 13): a head trained on the route utterances + an
abstention threshold from their leave-one-out similarities, on CLINC150 and BANKING77.

The rule (``semrouter.training._selftrain``): the route is the head's most probable one; the router
abstains when that route's similarity (mean of its best 2 cosine hits, the router's default
aggregation) is under its cut: the ``reject_share`` quantile of the utterances' leave-one-out
similarities to their own route, moved by ``shift`` times how far the route's own mean
leave-one-out similarity lies from the mean of all (``route_thresholds``). No labelled query
is used anywhere.

1. Validation (chooses ``reject_share`` and ``shift``): CLINC150 ``val`` (in-scope) with all
   train utterances and with 5 seeded utterances per route, BANKING77 ``valid``, and
   CLINC150 ``val`` + ``oos_train`` + ``oos_val`` (200 out-of-scope queries, weighted to the
   test's share, 1000 / 5500). Rule fixed before looking: the setting with the best
   CLINC+oos validation accuracy among those that lose at most 1.25 points of in-scope
   accuracy to abstentions in every in-scope validation setting.
2. Test, once, with that setting: CLINC150 ``test`` (+ ``oos_test``), BANKING77 ``test``; beside
   the current default (nearest neighbour, mean of the best 2, threshold 0.28) and ``fit()``
   (its figures read from benchmarks/results/quality.json, compare.py's run).
3. Costs: head training for 10 routes x 10 utterances, 150 x 100 and 100 x 100 (10k), cold
   and warm-started after one route changed; the leave-one-out threshold.
4. The README's seed example, encoded for real: the score margin over the threshold.

Route similarities are computed exactly in NumPy (what the router returns when the chosen
route is among the retrieved candidates). Embeddings come from ``LocalEncoder`` and are cached
as .npz under ``--cache``. Run under the bench lock:

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/quality/zero_label.py
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from semrouter.training._abstention import (
    DEFAULT_REJECT_SHARE,
    DEFAULT_ROUTE_SHIFT,
    abstention_threshold,
    own_route_scores,
    route_thresholds,
)
from semrouter.training._selftrain import DEFAULT_MAX_ITER, decide, train_route_head

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import data_parser, routes_from

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
Split = tuple[Matrix, Labels]
SHARES = (0.0, 0.005, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.05)
SHIFTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # how far a route's cut follows its own utterances
MAX_IN_SCOPE_LOSS = 0.0125
DEFAULT_THRESHOLD = 0.28  # LocalEncoder.default_threshold, the unfitted router today
TOP_K = 2
WARM_ITER = 15  # L-BFGS iterations after a warm start (cold: DEFAULT_MAX_ITER)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------------
def read_corpora(root: Path) -> dict[str, dict[str, list[tuple[str, str | None]]]]:
    clinc = json.loads((root / "clinc150" / "data_full.json").read_text())
    out: dict[str, dict[str, list[tuple[str, str | None]]]] = {
        "clinc150": {
            split: [(t, None if split.startswith("oos") else i) for t, i in rows]
            for split, rows in clinc.items()
        }
    }
    banking: dict[str, list[tuple[str, str | None]]] = {}
    for split in ("train", "valid", "test"):
        folder = root / "banking77" / split
        texts = (folder / "seq.in").read_text().splitlines()
        labels = (folder / "label").read_text().splitlines()
        banking[split] = [(t, lab) for t, lab in zip(texts, labels, strict=True)]
    out["banking77"] = banking
    return out


def embeddings(name: str, texts: list[str], cache: Path) -> dict[str, Matrix]:
    """LocalEncoder vectors by text, cached as ``{name}-{hash}.npz``."""
    from semrouter.encoders import LocalEncoder
    from semrouter.encoders._local import MODEL_ID

    texts = sorted(set(texts))
    key = hashlib.sha256(json.dumps([MODEL_ID, texts]).encode()).hexdigest()[:24]
    file = cache / f"{name}-{key}.npz"
    if file.exists():
        vectors = np.load(file)["vectors"]
    else:
        legacy = Path("/tmp/semrouter-bench") / f"{name}-{key}.npy"  # compare.py's cache
        if legacy.exists():
            vectors = np.load(legacy)
        else:
            log(f"embedding {len(texts)} {name} texts (cached afterwards) ...")
            vectors = LocalEncoder().encode(texts)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(file, vectors=vectors)
    return dict(zip(texts, vectors, strict=True))


def as_arrays(
    rows: list[tuple[str, str | None]], table: dict[str, Matrix], index: dict[str, int]
) -> Split:
    X = np.stack([table[t] for t, _ in rows]).astype(np.float32)
    y = np.array([-1 if lab is None else index[lab] for _, lab in rows], dtype=np.int64)
    return X, y


def few_per_route(rows: list[tuple[str, str | None]], per_route: int, seed: int) -> list[Any]:
    """compare.py's ``routes_from`` sample (the same 5 utterances per route for each seed), as
    (utterance, route) rows."""
    return [(u, label) for label, utts in routes_from(rows, per_route, seed) for u in utts]


# -- the systems -----------------------------------------------------------------------------------
def route_similarities(queries: Matrix, X: Matrix, y: Labels, n_routes: int) -> Matrix:
    """(n, R) mean of each route's best ``TOP_K`` cosine similarities, exactly."""
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(n_routes + 1))
    out = np.empty((queries.shape[0], n_routes), np.float32)
    for start in range(0, queries.shape[0], 1000):
        sims = queries[start : start + 1000] @ X[order].T
        for r in range(n_routes):
            block = sims[:, bounds[r] : bounds[r + 1]]
            k = min(TOP_K, block.shape[1])
            top = np.partition(block, block.shape[1] - k, axis=1)[:, block.shape[1] - k :]
            out[start : start + 1000, r] = top.mean(axis=1)
    return out


class ZeroLabel:
    """One route set: the head, the leave-one-out scores, and queries scored once."""

    def __init__(self, utterances: Split, n_routes: int) -> None:
        X, y = utterances
        self.X, self.y, self.n_routes = X, y, n_routes
        names = [str(i) for i in range(n_routes)]
        self.head = train_route_head(X, y, names)
        self.own = own_route_scores(X, y, n_routes, top_k=TOP_K)

    def global_cut(self, share: float) -> float:
        value = abstention_threshold(self.own, reject_share=share)
        return -1.0 if value is None else value

    def cut(self, share: float, shift: float) -> npt.NDArray[np.float64]:
        """The per-route cuts (``self_train``'s rule)."""
        return route_thresholds(
            self.own, self.y, self.n_routes, self.global_cut(share), shift=shift
        )

    def score(self, queries: Matrix) -> tuple[Matrix, Matrix]:
        p = self.head.predict_proba(queries)
        return p, route_similarities(queries, self.X, self.y, self.n_routes)


def metrics(
    pred: Labels, gold: Labels, weight: npt.NDArray[np.float64] | None = None
) -> dict[str, float]:
    w = np.ones(gold.shape[0]) if weight is None else weight
    inside = gold >= 0
    right = pred == gold
    out = {"in_scope_accuracy": float(right[inside].mean())}
    if (~inside).any():
        out["accuracy"] = float((w * right).sum() / w.sum())
        out["oos_recall"] = float((pred[~inside] == -1).mean())
    return out


def nearest_neighbour(sims: Matrix, threshold: float) -> Labels:
    best = sims.argmax(axis=1)
    return np.where(sims.max(axis=1) >= threshold, best, -1).astype(np.int64)


# -- phases -------------------------------------------------------------------------------------
def validation(
    systems: dict[str, ZeroLabel], val: dict[str, Split], oos_weight: float
) -> dict[str, Any]:
    """Per (share, shift): in-scope accuracy in each setting, CLINC + oos accuracy, recall."""
    scored = {key: systems[key].score(val[key][0]) for key in systems}
    table: dict[str, Any] = {}
    for share in SHARES:
        for shift in SHIFTS:
            row: dict[str, Any] = {}
            for key, (p, sims) in scored.items():
                gold = val[key][1]
                pred, _ = decide(p, sims, systems[key].cut(share, shift))
                weight = np.where(gold < 0, oos_weight, 1.0)
                m = metrics(pred, gold, weight)
                no_abstain = metrics(p.argmax(axis=1).astype(np.int64), gold)
                m["loss"] = no_abstain["in_scope_accuracy"] - m["in_scope_accuracy"]
                m["threshold"] = systems[key].global_cut(share)
                row[key] = m
            table[f"{share}/{shift}"] = row
    return table


def choose(table: dict[str, Any]) -> tuple[float, float]:
    """Best CLINC+oos accuracy among the settings that lose at most MAX_IN_SCOPE_LOSS of
    in-scope accuracy in every in-scope setting; ties: the lower share, then shift."""
    ok = [
        key
        for key, row in table.items()
        if all(m["loss"] <= MAX_IN_SCOPE_LOSS for k, m in row.items() if k != "clinc_oos")
    ]
    best = max(
        ok,
        key=lambda k: (table[k]["clinc_oos"]["accuracy"], *(-float(v) for v in k.split("/"))),
    )
    share, shift = (float(v) for v in best.split("/"))
    return share, shift


def timed(fn: Callable[[], Any], repeat: int = 3) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def costs(X: Matrix, y: Labels, val: Split) -> dict[str, Any]:
    """Training time: 10 x 10, 100 x 100 (10k), 150 x 100; warm start after one route changed."""
    out: dict[str, Any] = {}
    for label, routes, per in (("10x10", 10, 10), ("100x100", 100, 100), ("150x100", 150, 100)):
        keep = np.concatenate([np.flatnonzero(y == r)[:per] for r in range(routes)])
        Xs, ys = X[keep], y[keep]
        names = [str(i) for i in range(routes)]
        out[label] = {
            "utterances": int(keep.size),
            "head": timed(partial(train_route_head, Xs, ys, names)),
            "threshold": timed(partial(own_route_scores, Xs, ys, routes)),
        }
        if label == "150x100":
            # One route's utterances replaced: warm start from the head without that route.
            names_before = [n if n != "7" else "old" for n in names]
            before = train_route_head(Xs, ys, names_before)
            out[label]["head_warm_one_route_changed"] = timed(
                partial(train_route_head, Xs, ys, names, previous=before, max_iter=WARM_ITER)
            )
            warm = train_route_head(Xs, ys, names, previous=before, max_iter=WARM_ITER)
            cold = train_route_head(Xs, ys, names)
            out[label]["val_accuracy_cold_warm"] = [
                float(np.mean(h.predict_proba(val[0]).argmax(axis=1) == val[1]))
                for h in (cold, warm)
            ]
    return out


def seed_example() -> dict[str, Any]:
    """README's quickstart routes, encoded for real: the zero-label decision and its margin."""
    from semrouter.encoders import LocalEncoder

    routes = {
        "politics": ["isn't politics the best thing ever", "don't you just love the president"],
        "chitchat": ["how's the weather today?", "how are things going?"],
    }
    queries = {"What have you been upto?": 1, "What is the melting point of tungsten?": -1}
    encoder = LocalEncoder()
    X = encoder.encode([u for utts in routes.values() for u in utts])
    y = np.array([0, 0, 1, 1], dtype=np.int64)
    system = ZeroLabel((X, y), 2)
    cuts = system.cut(*CHOSEN)
    p, sims = system.score(encoder.encode(list(queries)))
    pred, score = decide(p, sims, cuts)
    best = p.argmax(axis=1)
    return {
        "threshold": float(cuts.max()),
        "queries": {
            q: {"want": w, "got": int(g), "score": float(s), "margin": float(s - cuts[b])}
            for (q, w), g, s, b in zip(queries.items(), pred, score, best, strict=True)
        },
        "default_0.28": {
            q: int(v) for q, v in zip(queries, nearest_neighbour(sims, DEFAULT_THRESHOLD))
        },
    }


#: main() sets the validation choice (reject_share, route shift); the package's defaults here.
CHOSEN = (DEFAULT_REJECT_SHARE, DEFAULT_ROUTE_SHIFT)


# -- report ----------------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}"


def render(results: dict[str, Any]) -> str:
    val, test, fit = results["validation"], results["test"], results["fit"]
    lines = [
        "Routing with no labelled data (issue 13): head on the utterances + leave-one-out "
        "abstention",
        "encoder: LocalEncoder (all-MiniLM-L6-v2 int8); route similarity = mean of best 2;"
        " benchmarks/quality/zero_label.py",
        "",
        "1. Validation (chooses reject_share and the route shift; loss = in-scope points lost"
        " to abstentions)",
        f"{'share/shift':>11}{'CLINC full':>17}{'CLINC 5/route':>17}{'BANKING77':>17}"
        f"{'CLINC+oos':>11}{'oos rec':>9}{'cut full/5':>13}",
    ]
    for share, row in val.items():
        five = [row[f"clinc_5_s{s}"] for s in range(3)]
        five_acc = float(np.mean([m["in_scope_accuracy"] for m in five]))
        five_loss = max(m["loss"] for m in five)
        full = row["clinc_full"]
        lines.append(
            f"{share:>11}"
            f"{pct(full['in_scope_accuracy'])} (-{100 * full['loss']:.1f})"
            f"{pct(five_acc):>9} (-{100 * five_loss:.1f})"
            f"{pct(row['banking']['in_scope_accuracy']):>9} (-{100 * row['banking']['loss']:.1f})"
            f"{pct(row['clinc_oos']['accuracy']):>11}{pct(row['clinc_oos']['oos_recall']):>9}"
            f"{row['clinc_full']['threshold']:>7.3f}/{row['clinc_5_s0']['threshold']:.3f}"
        )
    lines += [
        f"chosen reject_share / shift = {results['chosen']} (best CLINC+oos validation accuracy"
        f" with every in-scope loss <= {100 * MAX_IN_SCOPE_LOSS:.2f} points)",
        "(5/route: mean of 3 seeds, loss = the worst seed; CLINC+oos: val + oos_train + oos_val,"
        " oos rows weighted to the test share 1000/5500)",
        "",
        "2. Test, measured once",
        f"{'system':<48}{'CLINC in-scope':>15}{'CLINC 5/route':>15}{'CLINC +oos':>12}"
        f"{'oos recall':>12}{'BANKING77':>11}",
    ]
    for key, label in (
        ("default", "current default (nearest neighbour, 0.28)"),
        ("head_only", "head on utterances, never abstains"),
        ("zero_label", "zero-label rule (head + adaptive threshold)"),
    ):
        lines.append(
            f"{label:<48}{pct(test['clinc_full'][key]['in_scope_accuracy']):>13} %"
            f"{pct(test['clinc_5'][key]):>13} %"
            f"{pct(test['clinc_oos'][key]['accuracy']):>10} %"
            f"{pct(test['clinc_oos'][key]['oos_recall']):>10} %"
            f"{pct(test['banking'][key]['in_scope_accuracy']):>9} %"
        )
    if fit:
        lines.append(
            f"{'fit() with labels (quality.json, compare.py)':<48}{pct(fit['clinc_full']):>13} %"
            f"{pct(fit['clinc_5']):>13} %{pct(fit['clinc_oos']):>10} %"
            f"{pct(fit['clinc_oos_recall']):>10} %{pct(fit['banking']):>9} %"
        )
    z = test
    lines += ["", "Targets (zero-label rule):"]
    checks = []
    if fit:
        for name, got, ref in (
            ("CLINC in-scope", z["clinc_full"]["zero_label"]["in_scope_accuracy"], "clinc_full"),
            ("CLINC 5/route", z["clinc_5"]["zero_label"], "clinc_5"),
            ("BANKING77", z["banking"]["zero_label"]["in_scope_accuracy"], "banking"),
        ):
            checks.append(
                (f"{name} within 1.5 points of fit() ({pct(fit[ref])} %)", got, fit[ref] - 0.015)
            )
    checks += [
        ("CLINC150 + oos overall >= 88 %", z["clinc_oos"]["zero_label"]["accuracy"], 0.88),
        ("CLINC150 oos recall >= 70 %", z["clinc_oos"]["zero_label"]["oos_recall"], 0.70),
    ]
    for name, got, goal in checks:
        verdict = "met" if got >= goal else "MISSED"
        lines.append(f"  {name:<50}{pct(got)} %  {verdict} ({100 * (got - goal):+.1f} points)")
    seed = results["seed_example"]
    lines += ["", f"3. README seed example (threshold {seed['threshold']:.3f}):"]
    for q, r in seed["queries"].items():
        ok = "right" if r["got"] == r["want"] else "WRONG"
        lines.append(
            f"  {q!r}: route {r['got']} (want {r['want']}) {ok}, similarity {r['score']:.3f},"
            f" margin {r['margin']:+.3f}"
        )
    lines += [
        "",
        f"4. Costs, median of 3 (wall / CPU seconds; 2 shared cores, other jobs running);"
        f" cold head: {DEFAULT_MAX_ITER} L-BFGS iterations from the nearest-centroid start",
    ]
    for label, c in results["costs"].items():
        extra = ""
        if "head_warm_one_route_changed" in c:
            w = c["head_warm_one_route_changed"]
            acc = c["val_accuracy_cold_warm"]
            extra = (
                f"; warm start, one route changed ({WARM_ITER} iterations): {w['wall_s']:.2f} /"
                f" {w['cpu_s']:.2f} (val accuracy cold {pct(acc[0])} %, warm {pct(acc[1])} %)"
            )
        lines.append(
            f"  {label:<8} ({c['utterances']:>5} utterances): head {c['head']['wall_s']:.2f} /"
            f" {c['head']['cpu_s']:.2f}; threshold {c['threshold']['wall_s']:.3f} /"
            f" {c['threshold']['cpu_s']:.3f}{extra}"
        )
    lines.append(f"({results['seconds']:.0f} s in all)")
    return "\n".join(lines)


def main() -> None:
    global CHOSEN
    parser = data_parser(__doc__, cache=Path("/tmp/semrouter-zero-label"))
    args = parser.parse_args()
    started = time.perf_counter()
    corpora = read_corpora(args.data)
    arrays: dict[str, dict[str, Split]] = {}
    counts: dict[str, int] = {}
    for name, splits in corpora.items():
        table = embeddings(name, [t for rows in splits.values() for t, _ in rows], args.cache)
        labels = sorted({lab for _, lab in splits["train"] if lab is not None})
        index = {lab: i for i, lab in enumerate(labels)}
        arrays[name] = {s: as_arrays(rows, table, index) for s, rows in splits.items()}
        for seed in range(3):
            few = few_per_route(splits["train"], 5, seed)
            arrays[name][f"train5_{seed}"] = as_arrays(few, table, index)
        counts[name] = len(labels)
    c, b = arrays["clinc150"], arrays["banking77"]
    nc, nb = counts["clinc150"], counts["banking77"]

    def stack(*parts: Split) -> Split:
        return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    log("training heads ...")
    systems = {"clinc_full": ZeroLabel(c["train"], nc), "banking": ZeroLabel(b["train"], nb)}
    for seed in range(3):
        systems[f"clinc_5_s{seed}"] = ZeroLabel(c[f"train5_{seed}"], nc)
    systems["clinc_oos"] = systems["clinc_full"]
    val = {key: c["val"] for key in systems}
    val["banking"] = b["valid"]
    val["clinc_oos"] = stack(c["val"], c["oos_train"], c["oos_val"])
    n_oos = int((val["clinc_oos"][1] < 0).sum())
    oos_weight = (1000 / 4500) * (len(c["val"][1]) / n_oos)
    log("validation ...")
    table = validation(systems, val, oos_weight)
    CHOSEN = choose(table)
    log(f"chosen reject_share / shift {CHOSEN}; test ...")

    def test_one(system: ZeroLabel, split: Split) -> dict[str, Any]:
        p, sims = system.score(split[0])
        return {
            "default": metrics(nearest_neighbour(sims, DEFAULT_THRESHOLD), split[1]),
            "head_only": metrics(p.argmax(axis=1).astype(np.int64), split[1]),
            "zero_label": metrics(decide(p, sims, system.cut(*CHOSEN))[0], split[1]),
            "threshold": system.global_cut(CHOSEN[0]),
        }

    test: dict[str, Any] = {
        "clinc_full": test_one(systems["clinc_full"], c["test"]),
        "clinc_oos": test_one(systems["clinc_full"], stack(c["test"], c["oos_test"])),
        "banking": test_one(systems["banking"], b["test"]),
    }
    five = [test_one(systems[f"clinc_5_s{s}"], c["test"]) for s in range(3)]
    test["clinc_5"] = {
        key: float(np.mean([f[key]["in_scope_accuracy"] for f in five]))
        for key in ("default", "head_only", "zero_label")
    }
    test["clinc_5_seeds"] = five
    fit: dict[str, float] = {}
    quality = args.out / "quality.json"
    if quality.exists():
        q = json.loads(quality.read_text())
        fit = {
            "clinc_full": q["clinc_full"]["b_fitted"]["in_scope_accuracy"],
            "clinc_5": q["clinc_5"]["b_fitted"]["in_scope_accuracy"],
            "clinc_oos": q["clinc_oos"]["b_fitted"]["accuracy"],
            "clinc_oos_recall": q["clinc_oos"]["b_fitted"]["oos_recall"],
            "banking": q["banking_full"]["b_fitted"]["in_scope_accuracy"],
        }
    log("costs ...")
    results = {
        "validation": table,
        "chosen": list(CHOSEN),
        "test": test,
        "fit": fit,
        "costs": costs(*c["train"], c["val"]),
        "seed_example": seed_example(),
    }
    results["seconds"] = time.perf_counter() - started
    text = render(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "zero_label.txt").write_text(text + "\n")
    (args.out / "zero_label.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
