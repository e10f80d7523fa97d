"""A logistic head on frozen MiniLM embeddings, with out-of-scope abstention, on CLINC150.

Everything is chosen on the validation split; the test split is only measured:

* the head (``LogisticHead``) is fitted on ``train``, with ``oos_train`` as its *none* class;
* the score of a route is the head probability plus ``--blend`` times the route's mean top-5
  cosine similarity to the query (``blend_scores``): the similarity term lowers the score of
  queries unlike any stored utterance;
* one global threshold (and per-route ones, for comparison) is fitted on ``val`` + ``oos_val``
  with the out-of-scope rows weighted to ``--oos-share`` of the traffic (``fit_thresholds``);
* then ``test`` + ``oos_test`` are routed and measured (``EvaluationReport``).

The same runs with five seeded utterances per route. ``--tune`` redoes the grid search that
chose the defaults (two-fold cross-validation on ``val`` + ``oos_val``).

    python benchmarks/quality/head_probe.py --data ../shared/data/clinc150/data_full.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from semrouter._head import LogisticHead
from semrouter.training._evaluation import EvaluationReport
from semrouter.training._thresholds import apply_thresholds, blend_scores, fit_thresholds

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared/data/clinc150/data_full.json"


def embed(texts: list[str], cache: Path) -> Matrix:
    """Embed with LocalEncoder, cached as .npy under ``cache`` by a hash of model and texts."""
    from semrouter.encoders._local import MODEL_ID, LocalEncoder

    key = hashlib.sha256(json.dumps([MODEL_ID, texts]).encode()).hexdigest()[:24]
    file = cache / f"clinc150-{key}.npy"
    if file.exists():
        return np.load(file)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    vectors = LocalEncoder().encode(texts)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.0f} s -> {file}")
    np.save(file, vectors)
    return vectors


def load(path: Path, cache: Path) -> tuple[list[str], dict[str, tuple[Matrix, Labels]]]:
    """The splits as (embeddings, labels); out-of-scope rows are labelled -1."""
    data = json.loads(path.read_text())
    names = sorted({intent for _, intent in data["train"]})
    index = {name: i for i, name in enumerate(names)}
    texts = sorted({text for rows in data.values() for text, _ in rows})
    vectors = embed(texts, cache)
    row = {text: i for i, text in enumerate(texts)}
    splits = {
        split: (
            vectors[[row[text] for text, _ in rows]],
            np.array([index.get(intent, -1) for _, intent in rows], dtype=np.int64),
        )
        for split, rows in data.items()
    }
    return names, splits


def similarities(queries: Matrix, X: Matrix, y: Labels, n_routes: int, k: int = 5) -> Matrix:
    """Per-route mean of the top-k cosine similarities (the router's default aggregation)."""
    sims = queries @ X.T
    out = np.empty((queries.shape[0], n_routes), dtype=np.float32)
    for r in range(n_routes):
        block = sims[:, y == r]
        kk = min(k, block.shape[1])
        out[:, r] = np.partition(block, block.shape[1] - kk, axis=1)[:, -kk:].mean(axis=1)
    return out


def share_weights(labels: Labels, share: float) -> npt.NDArray[np.float64]:
    """Row weights that give the -1 rows ``share`` of the total weight."""
    oos = labels == -1
    weights = np.ones(labels.shape[0])
    if oos.any() and (~oos).any():
        weights[oos] = share / (1.0 - share) * (~oos).sum() / oos.sum()
    return weights


class Probe:
    """One configuration: fit on (train, oos_train); score any split."""

    def __init__(self, train: tuple[Matrix, Labels], names: list[str], args: argparse.Namespace):
        X, y = train
        self.X, self.y, self.n_routes, self.blend = X, y, len(names), args.blend
        started = time.perf_counter()
        self.head = LogisticHead.fit(
            X, y, route_names=names, l2=args.l2, none_weight=args.none_weight
        ).with_temperature(args.temperature)
        self.fit_seconds = time.perf_counter() - started

    def scores(self, queries: Matrix) -> npt.NDArray[np.float64]:
        routes = self.y >= 0
        sims = similarities(queries, self.X[routes], self.y[routes], self.n_routes)
        return blend_scores(self.head.predict_proba(queries), sims, weight=self.blend)


def run(
    names: list[str],
    splits: dict[str, tuple[Matrix, Labels]],
    args: argparse.Namespace,
    train: tuple[Matrix, Labels],
    label: str,
) -> dict[str, float]:
    """Fit, calibrate on val, measure on test; print and return the numbers."""
    probe = Probe(train, names, args)
    val = stack(splits["val"], splits["oos_val"])
    test = stack(splits["test"], splits["oos_test"])
    s_val, s_test = probe.scores(val[0]), probe.scores(test[0])
    started = time.perf_counter()
    fit = fit_thresholds(s_val, val[1], names, sample_weight=share_weights(val[1], args.oos_share))
    threshold_seconds = time.perf_counter() - started
    inside = test[1] >= 0
    head_only = probe.head.predict_proba(test[0][inside]).argmax(axis=1)
    result = {
        "in_scope_argmax": float(np.mean(head_only == test[1][inside])),
        "in_scope_blend": float(np.mean(s_test[inside].argmax(axis=1) == test[1][inside])),
        "fit_s": probe.fit_seconds,
        "thresholds_s": threshold_seconds,
    }
    for kind, cuts in (
        ("global", fit.global_threshold),
        ("per_route", list(fit.thresholds.values())),
    ):
        pred, top = apply_thresholds(s_test, np.asarray(cuts))
        gold = [names[g] if g >= 0 else None for g in test[1]]
        report = EvaluationReport.from_predictions(
            gold,
            [names[p] if p >= 0 else None for p in pred],
            top,
            top_routes=[names[b] for b in s_test.argmax(axis=1)],
        )
        result[f"{kind}_overall"] = report.accuracy
        result[f"{kind}_in_scope"] = report.in_scope_accuracy or 0.0
        result[f"{kind}_oos_recall"] = report.oos_recall or 0.0
        result[f"{kind}_oos_auroc"] = report.oos_auroc or 0.0
        if kind == "global" and args.plot and label == "full":
            report.plot(args.plot)
    print(
        f"{label:<16} in-scope: head {pct(result['in_scope_argmax'])}, blended "
        f"{pct(result['in_scope_blend'])} | with oos_test, global "
        f"threshold: overall {pct(result['global_overall'])}, in-scope "
        f"{pct(result['global_in_scope'])}, oos recall {pct(result['global_oos_recall'])}, AUROC "
        f"{result['global_oos_auroc']:.3f} | per-route thresholds: overall "
        f"{pct(result['per_route_overall'])}, oos recall {pct(result['per_route_oos_recall'])} | "
        f"head fit {result['fit_s']:.1f} s, thresholds {result['thresholds_s']:.2f} s"
    )
    return result


def stack(*parts: tuple[Matrix, Labels]) -> tuple[Matrix, Labels]:
    return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def per_route_sample(labels: Labels, k: int, seed: int) -> Labels:
    """Indices of ``k`` rows of every route (label >= 0), seeded."""
    rng = np.random.default_rng(seed)
    routes = np.unique(labels[labels >= 0])
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == r), k, replace=False) for r in routes]
    )


def pct(value: float) -> str:
    return f"{100.0 * value:5.1f} %"


def tune(
    names: list[str], splits: dict[str, tuple[Matrix, Labels]], args: argparse.Namespace
) -> None:
    """Two-fold CV on val + oos_val of overall accuracy at ``--oos-share``; prints the best."""
    val = stack(splits["val"], splits["oos_val"])
    folds = np.random.default_rng(0).permutation(val[1].shape[0]) % 2
    train = stack(splits["train"], splits["oos_train"])
    results = []
    for l2, none_weight in itertools.product((3e-6, 1e-5, 3e-5), (0.0, 1.0, 5.0, 20.0)):
        data = train if none_weight else splits["train"]
        base = argparse.Namespace(**{**vars(args), "l2": l2, "none_weight": none_weight or 1.0})
        probe = Probe(data, names, base)
        routes = probe.y >= 0
        sims = similarities(val[0], probe.X[routes], probe.y[routes], probe.n_routes)
        for temperature, blend in itertools.product((0.5, 1.0, 2.0), (0.0, 0.5, 1.0, 2.0)):
            scores = blend_scores(
                probe.head.with_temperature(temperature).predict_proba(val[0]), sims, weight=blend
            )
            accuracy = []
            for fold in (0, 1):
                a, b = folds == fold, folds != fold
                fit = fit_thresholds(
                    scores[a],
                    val[1][a],
                    names,
                    sample_weight=share_weights(val[1][a], args.oos_share),
                )
                pred, _ = apply_thresholds(scores[b], fit.global_threshold)
                w = share_weights(val[1][b], args.oos_share)
                accuracy.append(float((w * (pred == val[1][b])).sum() / w.sum()))
            results.append((float(np.mean(accuracy)), l2, none_weight, temperature, blend))
        print(f"  l2={l2:g} none_weight={none_weight:g}: best so far {max(results)}", flush=True)
    for accuracy, l2, none_weight, temperature, blend in sorted(results, reverse=True)[:10]:
        print(
            f"  cv overall {pct(accuracy)}  l2={l2:g} none_weight={none_weight:g} "
            f"temperature={temperature:g} blend={blend:g}"
        )
    few: dict[tuple[float, float, float], list[float]] = {}
    for seed in range(3):
        idx = per_route_sample(splits["train"][1], 5, seed)
        for l2, none_weight in itertools.product((1e-6, 1e-5, 1e-4), (0.0, 1.0, 5.0)):
            sample = (splits["train"][0][idx], splits["train"][1][idx])
            data = stack(sample, splits["oos_train"]) if none_weight else sample
            base = argparse.Namespace(**{**vars(args), "l2": l2, "none_weight": none_weight or 1.0})
            probe = Probe(data, names, base)
            inside = splits["val"]
            routes = probe.y >= 0
            sims = similarities(inside[0], probe.X[routes], probe.y[routes], probe.n_routes)
            proba = probe.head.predict_proba(inside[0])
            for blend in (0.0, 0.5, 1.0):
                hit = blend_scores(proba, sims, weight=blend).argmax(axis=1) == inside[1]
                few.setdefault((l2, none_weight, blend), []).append(float(np.mean(hit)))
    for (l2, none_weight, blend), accuracy in sorted(few.items(), key=lambda kv: -np.mean(kv[1])):
        print(
            f"  5 per route, l2={l2:g} none_weight={none_weight:g} blend={blend:g}: "
            f"val in-scope {pct(float(np.mean(accuracy)))}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CLINC150 data_full.json")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrouter-bench"))
    parser.add_argument("--l2", type=float, default=1e-5)
    parser.add_argument("--none-weight", type=float, default=5.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--blend", type=float, default=1.0)
    parser.add_argument(
        "--oos-share",
        type=float,
        default=0.2,
        help="assumed share of out-of-scope traffic when fitting thresholds",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the 5-per-route sample")
    parser.add_argument("--plot", type=Path, help="write the test accuracy/threshold curve here")
    parser.add_argument("--tune", action="store_true", help="redo the validation grid search")
    args = parser.parse_args()
    if not args.data.exists():
        parser.error(f"{args.data} not found: pass --data path/to/clinc150/data_full.json")
    names, splits = load(args.data, args.cache)
    if args.tune:
        tune(names, splits, args)
        return
    print(
        f"l2={args.l2:g} none_weight={args.none_weight:g} temperature={args.temperature:g} "
        f"blend={args.blend:g} oos_share={args.oos_share:g}"
    )
    run(names, splits, args, stack(splits["train"], splits["oos_train"]), "full")
    few = []
    for seed in range(args.seeds):
        idx = per_route_sample(splits["train"][1], 5, seed)
        train = stack((splits["train"][0][idx], splits["train"][1][idx]), splits["oos_train"])
        few.append(run(names, splits, args, train, f"5/route seed {seed}"))
    if not few:
        return
    mean = {key: float(np.mean([r[key] for r in few])) for key in few[0]}
    print(
        f"{'5/route mean':<16} in-scope: head {pct(mean['in_scope_argmax'])}, blended "
        f"{pct(mean['in_scope_blend'])}"
        f" | overall {pct(mean['global_overall'])} | oos recall {pct(mean['global_oos_recall'])}"
    )


if __name__ == "__main__":
    main()
