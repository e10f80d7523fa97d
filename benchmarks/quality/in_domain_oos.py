"""Out-of-scope requests from the same domain (issue 23, point 2): routes held out.

Protocol, fixed seeds (0, 1, 2): a quarter of the routes of CLINC150 (38 of 150) and
BANKING77 (19 of 77) is held out; the router holds the other routes with every train
utterance. The held-out routes' requests are *in-domain out-of-scope* (a banking question no
banking route covers); the kept routes' requests are in scope. Metrics: in-domain
out-of-scope recall (share turned away), in-scope accuracy (an abstention is an error) and
the points it loses against never abstaining (threshold -1, the same ranking); for CLINC150
also far out-of-scope recall (``oos_val`` / ``oos_test``).

Targets: recall >= 60 % with no labels, >= 80 % with ``fit()``, each at <= 1 point of
in-scope accuracy lost.

1. Validation (kept routes' ``val`` / ``valid`` requests in scope, held-out routes' requests
   out of scope):
   a. the router's rule with the library's own functions (``self_train``: the head picks,
      the route's similarity must reach its learnt cut, floored at ``FLOOR_RATIO`` x 0.28),
      and the ceiling of every signal the literature and the data suggest: the best recall
      any one cut on it reaches at <= 1 point lost, the cut chosen *on these very requests*
      (an oracle: no label-free rule can set a cut better). Signals: the chosen route's
      similarity, minus its learnt cut, over its utterances' mean leave-one-out score
      (local density), the similarity margin to the next route, the head's max
      probability, its margin and entropy, the learnt cut moved by the head's log
      probability, a Mahalanobis distance to the route means (shared covariance, shrunk)
      and the k-th nearest utterance's similarity.
   b. ``fit()`` through the public API on one half of the kept routes' validation requests
      (CLINC150: + ``oos_train`` as None-labelled texts and ``oos_val`` in validation, as in
      compare.py), measured on the other half and the held-out routes' requests; beside it
      the oracle cut on the fitted score.
2. Test, once, through the public API (``SemanticRouter`` over cached vectors,
   ``route_many``): the router as shipped (no labels), and after ``fit()`` on the kept
   routes' whole validation split (CLINC150 + ``oos_train`` / ``oos_val``); test requests
   of kept routes in scope, of held-out routes out of scope, CLINC150 ``oos_test`` far.

Run under the bench lock (about 6 minutes on 2 shared cores with cached vectors):

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/quality/in_domain_oos.py
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from semrouter import Route, SemanticRouter
from semrouter._learned import FLOOR_RATIO
from semrouter.training._abstention import own_route_scores
from semrouter.training._selftrain import self_train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Rows, TableEncoder, data_parser, load_banking, load_clinc, log, text_table
from zero_label import route_similarities

Matrix = npt.NDArray[np.float32]
SEEDS = (0, 1, 2)
HELD_SHARE = 0.25
DEFAULT = 0.28  # LocalEncoder.default_threshold
BUDGET = 0.01  # in-scope accuracy points one may lose (target)
TARGET_PLAIN, TARGET_FIT = 0.60, 0.80


@dataclass
class Corpus:
    name: str
    train: Rows
    val: Rows
    test: Rows
    far_val: list[str]
    far_test: list[str]
    fit_none: list[str]  # None-labelled texts fit() gets (CLINC150 oos_train)
    encoder: TableEncoder


@dataclass
class Split:
    kept: list[str]
    held: list[str]

    def rows(self, rows: Rows, *, held: bool) -> Rows:
        names = set(self.held if held else self.kept)
        return [(t, lab) for t, lab in rows if lab in names]


def split_routes(train: Rows, seed: int) -> Split:
    labels = sorted({lab for _, lab in train if lab is not None})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(labels, round(HELD_SHARE * len(labels)), replace=False).tolist())
    return Split([x for x in labels if x not in held], sorted(held))


def routes_of(rows: Rows, names: list[str]) -> list[Route]:
    by: dict[str, list[str]] = {n: [] for n in names}
    for text, label in rows:
        if label in by:
            by[label].append(text)
    return [Route(n, list(dict.fromkeys(u))) for n, u in by.items()]


# -- 1a. validation, library functions -----------------------------------------------------------
def oracle(signal: npt.NDArray[np.float64], right: npt.NDArray[np.bool_], oos: Any) -> float:
    """The best out-of-scope recall of one cut on ``signal`` (low = out of scope) losing at
    most ``BUDGET`` of in-scope accuracy, the cut chosen on these rows."""
    inside = ~oos
    base = float(right[inside].mean())
    best = 0.0
    for cut in np.quantile(signal[inside], np.linspace(0.0, 0.25, 251)):
        if base - float((right[inside] & (signal[inside] >= cut)).mean()) <= BUDGET + 1e-12:
            best = max(best, float((signal[oos] < cut).mean()))
    return best


def mahalanobis(X: Matrix, y: Any, R: int, Q: Matrix, shrink: float = 0.5) -> Any:
    means = np.stack([X[y == r].mean(axis=0) for r in range(R)])
    centred = X - means[y]
    cov = centred.T @ centred / len(X)
    cov = (1 - shrink) * cov + shrink * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    inverse = np.linalg.inv(cov).astype(np.float32)
    out = np.empty((len(Q), R), np.float32)
    for s in range(0, len(Q), 200):
        diff = Q[s : s + 200, None, :] - means[None]
        out[s : s + 200] = np.einsum("nrd,de,nre->nr", diff, inverse, diff, optimize=True)
    return out


def validate_rule(corpus: Corpus, split: Split) -> dict[str, Any]:
    table = corpus.encoder.table
    index = {n: i for i, n in enumerate(split.kept)}
    utts = [(t, lab) for t, lab in dict.fromkeys(split.rows(corpus.train, held=False))]
    X = np.stack([table[t] for t, _ in utts]).astype(np.float32)
    y = np.array([index[lab] for _, lab in utts])
    R = len(split.kept)
    learnt = self_train(X, y, split.kept)
    own = own_route_scores(X, y, R)
    assert learnt.route_thresholds is not None
    cuts = np.maximum(np.array(learnt.route_thresholds), FLOOR_RATIO * DEFAULT)
    queries = split.rows(corpus.val, held=False) + split.rows(corpus.val, held=True)
    Q = np.stack([table[t] for t, _ in queries]).astype(np.float32)
    gold = np.array([index.get(lab or "", -1) for _, lab in queries])
    P = learnt.head.predict_proba(Q)
    S = route_similarities(Q, X, y, R).astype(np.float64)
    rows = np.arange(len(Q))
    pick = P.argmax(axis=1)
    oos, right = gold < 0, pick == gold
    s = S[rows, pick]
    passed = s >= cuts[pick]
    base = float(right[~oos].mean())
    out: dict[str, Any] = {
        "never": base,
        "rule_accuracy": float((right & passed)[~oos].mean()),
        "rule_recall": float((~passed)[oos].mean()),
    }
    out["rule_loss"] = base - out["rule_accuracy"]
    if corpus.far_val:
        F = np.stack([table[t] for t in corpus.far_val]).astype(np.float32)
        fp = learnt.head.predict_proba(F).argmax(axis=1)
        fs = route_similarities(F, X, y, R)[np.arange(len(F)), fp]
        out["rule_far_recall"] = float((fs < cuts[fp]).mean())
    sorted_p = np.sort(P, axis=1)
    others = S.copy()
    others[rows, pick] = -np.inf
    density = np.bincount(y, np.nan_to_num(own), R) / np.maximum(np.bincount(y, minlength=R), 1)
    entropy = -(P * np.log(P + 1e-12)).sum(axis=1)
    sims = Q @ X.T
    signals = {
        "similarity (chosen route)": s,
        "similarity - learnt cut": s - cuts[pick],
        "similarity / route density": s / density[pick],
        "similarity margin to next route": s - others.max(axis=1),
        "head max probability": sorted_p[:, -1],
        "head probability margin": sorted_p[:, -1] - sorted_p[:, -2],
        "head -entropy": -entropy,
        "sim - cut + 0.2 log p": s - cuts[pick] + 0.2 * np.log(sorted_p[:, -1]),
        "sim - cut + 0.5 p": s - cuts[pick] + 0.5 * sorted_p[:, -1],
        "-Mahalanobis (nearest mean)": -mahalanobis(X, y, R, Q).min(axis=1),
        "1st nearest utterance": sims.max(axis=1),
        "5th nearest utterance": np.partition(sims, sims.shape[1] - 5, axis=1)[:, -5],
    }
    out["ceilings"] = {name: oracle(v, right, oos) for name, v in signals.items()}
    return out


# -- the public API ------------------------------------------------------------------------------
def route_names(router: SemanticRouter, texts: list[str]) -> list[str | None]:
    return [m.name for m in router.route_many(texts)]


def measure(
    router: SemanticRouter, inside: Rows, held: list[str], far: list[str]
) -> dict[str, Any]:
    """Shipped-threshold metrics, never-abstaining accuracy and the oracle cut on the score."""
    texts = [t for t, _ in inside]
    gold = np.array([lab for _, lab in inside], dtype=object)
    shipped_in = np.array(route_names(router, texts), dtype=object)
    shipped_out = np.array(route_names(router, held), dtype=object)
    out: dict[str, Any] = {
        "accuracy": float(np.mean(shipped_in == gold)),
        "abstain": float(np.mean([x is None for x in shipped_in])),
        "recall": float(np.mean([x is None for x in shipped_out])),
    }
    if far:
        out["far_recall"] = float(np.mean([m is None for m in route_names(router, far)]))
    router.configure(threshold=-1.0)
    top_in = router.route_many(texts)
    top_out = router.route_many(held)
    router.configure(threshold=None)
    right = np.array([m.name for m in top_in], dtype=object) == gold
    out["never"] = float(right.mean())
    out["loss"] = out["never"] - out["accuracy"]
    scores = np.array([m.score for m in top_in] + [m.score for m in top_out])
    oos = np.r_[np.zeros(len(top_in), bool), np.ones(len(top_out), bool)]
    out["oracle_recall"] = oracle(scores, np.r_[right, np.zeros(len(top_out), bool)], oos)
    return out


def fit_router(router: SemanticRouter, corpus: Corpus, labelled: Rows, far: list[str]) -> float:
    texts, labels = [t for t, _ in labelled], [lab for _, lab in labelled]
    started = time.perf_counter()
    with warnings.catch_warnings():  # a few CLINC requests are also train utterances
        warnings.simplefilter("ignore", UserWarning)
        if corpus.fit_none:
            none: list[str | None] = [None] * len(corpus.fit_none)
            router.fit(corpus.fit_none, none, validation=(texts + far, labels + [None] * len(far)))
        else:
            router.fit(texts, labels)
    return time.perf_counter() - started


def run_api(
    corpus: Corpus,
    split: Split,
    inside: Rows,
    held: list[str],
    far: list[str],
    fit: Rows,
    fit_far: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with SemanticRouter(routes_of(corpus.train, split.kept), encoder=corpus.encoder) as router:
        router.learn()  # above 2,000 utterances it learns in the background: wait for it
        out["plain"] = measure(router, inside, held, far)
        out["fit_s"] = fit_router(router, corpus, fit, fit_far)
        out["fit"] = measure(router, inside, held, far)
    return out


def halves(rows: Rows, seed: int) -> tuple[Rows, Rows]:
    """Each route's requests dealt into two halves."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    by: dict[str | None, list[tuple[str, str | None]]] = {}
    for row in rows:
        by.setdefault(row[1], []).append(row)
    for label in sorted(by, key=str):
        items = by[label]
        order = rng.permutation(len(items))
        first += [items[i] for i in order[: len(items) // 2]]
        second += [items[i] for i in order[len(items) // 2 :]]
    return first, second


# -- report --------------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def mean(runs: list[dict[str, Any]], *path: str) -> float:
    """The mean over ``runs`` of the value at ``path`` (keys, outermost first)."""
    values = []
    for run in runs:
        for key in path:
            run = run[key]
        values.append(run)
    return float(np.mean(values))


def render(results: dict[str, Any]) -> str:
    lines = [
        "Out-of-scope requests from the same domain (issue 23, point 2): a quarter of the routes",
        "held out (seeds 0, 1, 2), their requests out of scope; the router holds the other routes'",
        "train utterances. benchmarks/quality/in_domain_oos.py; LocalEncoder (MiniLM int8), cached",
        "recall = held-out routes' requests turned away; loss = in-scope accuracy points lost",
        "against never abstaining; means over the 3 seeds",
        "",
        "1a. Validation, no labels (library functions, exact similarities)",
    ]
    for name, runs in results["validation"].items():
        lines.append(
            f"  {name}: the router's rule: recall {pct(mean(runs, 'rule_recall'))}"
            f", loss {pct(mean(runs, 'rule_loss'))} (never abstaining "
            f"{pct(mean(runs, 'never'))} %)"
            + (
                f", far out-of-scope recall {pct(mean(runs, 'rule_far_recall'))}"
                if "rule_far_recall" in runs[0]
                else ""
            )
        )
    lines += [
        "",
        f"  Ceilings: best recall of one cut losing <= {100 * BUDGET:.0f} point, the cut chosen on",
        "  the validation requests themselves (per seed, then mean; no label-free rule beats it)",
        f"  {'signal':<34}" + "".join(f"{n:>12}" for n in results["validation"]),
    ]
    first = next(iter(results["validation"].values()))[0]
    for signal in first["ceilings"]:
        lines.append(
            f"  {signal:<34}"
            + "".join(
                f"{pct(mean(runs, 'ceilings', signal)):>12}"
                for runs in results["validation"].values()
            )
        )
    lines += [
        "",
        "1b. Validation, fit() on half the kept routes' requests, the other half measured",
    ]
    lines += table(results["fit_validation"], ("fit",), show_plain=True)
    if "test" in results:
        lines += ["", "2. Test, measured once (public API: SemanticRouter, fit, route_many)"]
        lines += table(results["test"], ("plain", "fit"), show_plain=True)
        lines += ["", "Targets (test, mean over seeds):"]
        for name, runs in results["test"].items():
            for system, target in (("plain", TARGET_PLAIN), ("fit", TARGET_FIT)):
                recall = mean(runs, system, "recall")
                loss = mean(runs, system, "loss")
                met = recall >= target and loss <= BUDGET + 1e-9
                lines.append(
                    f"  {name:<10} {system:<6} recall >= {100 * target:.0f} % at loss <= 1 point:"
                    f" recall {pct(recall)}, loss {pct(loss)}  "
                    + ("met" if met else f"MISSED ({100 * (recall - target):+.1f} points)")
                )
    lines.append(f"({results['seconds']:.0f} s in all)")
    return "\n".join(lines)


def table(
    block: dict[str, list[dict[str, Any]]], systems: tuple[str, ...], *, show_plain: bool
) -> list[str]:
    del show_plain
    lines = [
        f"  {'corpus':<10}{'system':<8}{'in-scope':>9}{'never':>7}{'loss':>6}{'abstain':>8}"
        f"{'recall':>8}{'oracle':>8}{'far':>7}{'fit s':>7}"
    ]
    for name, runs in block.items():
        for system in systems:
            rows = [r[system] for r in runs]
            far = [r["far_recall"] for r in rows if "far_recall" in r]
            lines.append(
                f"  {name:<10}{system:<8}{pct(mean(rows, 'accuracy')):>9}"
                f"{pct(mean(rows, 'never')):>7}{pct(mean(rows, 'loss')):>6}"
                f"{pct(mean(rows, 'abstain')):>8}"
                f"{pct(mean(rows, 'recall')):>8}"
                f"{pct(mean(rows, 'oracle_recall')):>8}"
                f"{pct(float(np.mean(far)) if far else None):>7}"
                + (f"{np.mean([r['fit_s'] for r in runs]):>7.1f}" if system == "fit" else "")
            )
    lines.append(
        "  oracle = the best recall of one cut on the router's score losing <= 1 point, chosen on"
        " the measured requests"
    )
    return lines


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--validation-only", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    clinc, banking = load_clinc(args.data), load_banking(args.data)
    corpora = [
        Corpus(
            "clinc150",
            clinc["train"],
            clinc["val"],
            clinc["test"],
            [t for t, _ in clinc["oos_val"]],
            [t for t, _ in clinc["oos_test"]],
            [t for t, _ in clinc["oos_train"]],
            TableEncoder(text_table("clinc150", clinc, args.cache)),
        ),
        Corpus(
            "banking77",
            banking["train"],
            banking["valid"],
            banking["test"],
            [],
            [],
            [],
            TableEncoder(text_table("banking77", banking, args.cache)),
        ),
    ]
    results: dict[str, Any] = {"validation": {}, "fit_validation": {}}
    for corpus in corpora:
        for seed in SEEDS:
            split = split_routes(corpus.train, seed)
            log(f"validation {corpus.name} seed {seed} ...")
            results["validation"].setdefault(corpus.name, []).append(validate_rule(corpus, split))
            one, other = halves(split.rows(corpus.val, held=False), seed)
            held = [t for t, _ in split.rows(corpus.val, held=True)]
            far_fit, far_measure = halves([(t, None) for t in corpus.far_val], seed)
            results["fit_validation"].setdefault(corpus.name, []).append(
                run_api(
                    corpus,
                    split,
                    other,
                    held,
                    [t for t, _ in far_measure],
                    one,
                    [t for t, _ in far_fit],
                )
            )
    if not args.validation_only:
        results["test"] = {}
        for corpus in corpora:
            for seed in SEEDS:
                split = split_routes(corpus.train, seed)
                log(f"test {corpus.name} seed {seed} ...")
                results["test"].setdefault(corpus.name, []).append(
                    run_api(
                        corpus,
                        split,
                        split.rows(corpus.test, held=False),
                        [t for t, _ in split.rows(corpus.test, held=True)],
                        corpus.far_test,
                        split.rows(corpus.val, held=False),
                        corpus.far_val,
                    )
                )
    results["seconds"] = time.perf_counter() - started
    text = render(results)
    print(text)
    if not args.validation_only:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "in_domain_oos.txt").write_text(text + "\n")
        (args.out / "in_domain_oos.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
