"""Few-shot rows of the quality benchmark (issue 23, point 8): 5 and 10 examples a route.

Protocol, fixed seeds (0, 1, 2), through the public API (``SemanticRouter`` over cached
LocalEncoder vectors, ``evaluate`` / ``route_many``):

* **no labels**: every route of CLINC150 (150) and BANKING77 (77) holds ``k`` utterances
  drawn from the train split (compare.py's ``routes_from``, the same draw as its 5-per-route
  row); nothing else is given;
* **fit()**: the same router, then ``fit()`` with ``k`` *other* labelled train requests per
  route (so it has seen 2 ``k`` examples a route), its defaults otherwise (20 % held out
  and cross-fitted).

Measured on the test splits, in scope: accuracy with the router's abstention (an abstention is
an error), and never abstaining (threshold -1: the first route always answers, as a classifier
does); for CLINC150 also the share of ``oos_test`` (1,000 far out-of-scope requests) turned away.
Beside them, the published frozen-encoder figures (Casanueva et al. 2020, "Efficient intent
detection with dual sentence encoders", 10 examples per intent, USE + an MLP classifier, no
abstention): CLINC150 90.85, BANKING77 84.23. Nothing is chosen here: every setting is the
library's default, so the test splits are measured once.

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/quality/few_shot.py
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from semrouter import Route, SemanticRouter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Rows, TableEncoder, data_parser, load_banking, load_clinc, log, text_table

SEEDS = (0, 1, 2)
SHOTS = (5, 10)
PUBLISHED = {"clinc150": 90.85, "banking77": 84.23}  # USE + classifier, 10-shot


def draw(train: Rows, k: int, seed: int) -> tuple[list[Route], Rows]:
    """``k`` utterances a route and ``k`` other labelled requests a route, from ``train``."""
    by: dict[str, list[str]] = {}
    for text, label in train:
        assert label is not None
        by.setdefault(label, []).append(text)
    rng = np.random.default_rng(seed)
    routes, labelled = [], []
    for label in sorted(by):
        texts = list(dict.fromkeys(by[label]))
        pick = rng.choice(len(texts), 2 * k, replace=False)
        routes.append(Route(label, [texts[i] for i in sorted(pick[:k])]))
        labelled += [(texts[i], label) for i in sorted(pick[k:])]
    return routes, labelled


def measure(router: SemanticRouter, test: Rows, far: list[str]) -> dict[str, float | None]:
    texts = [t for t, _ in test]
    gold = [lab for _, lab in test]
    with warnings.catch_warnings():  # a few test requests are also train utterances
        warnings.simplefilter("ignore", UserWarning)
        shipped = [m.name for m in router.route_many(texts)]
        router.configure(threshold=-1.0)
        never = [m.name for m in router.route_many(texts)]
        router.configure(threshold=None)
    far_names = [m.name for m in router.route_many(far)] if far else []
    return {
        "accuracy": float(np.mean([p == g for p, g in zip(shipped, gold, strict=True)])),
        "abstain": float(np.mean([p is None for p in shipped])),
        "never": float(np.mean([p == g for p, g in zip(never, gold, strict=True)])),
        "far_recall": float(np.mean([p is None for p in far_names])) if far else None,
    }


def run(
    test: Rows, train: Rows, far: list[str], encoder: TableEncoder, k: int, seed: int
) -> dict[str, Any]:
    routes, labelled = draw(train, k, seed)
    with SemanticRouter(routes, encoder=encoder) as router:
        router.learn()
        out: dict[str, Any] = {"plain": measure(router, test, far)}
        started = time.perf_counter()
        router.fit([t for t, _ in labelled], [lab for _, lab in labelled])
        out["fit_s"] = time.perf_counter() - started
        out["fit"] = measure(router, test, far)
    return out


def pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def render(results: dict[str, Any]) -> str:
    lines = [
        "Few-shot routing (issue 23, point 8): k examples a route, test splits, seeds 0, 1, 2",
        "benchmarks/quality/few_shot.py; LocalEncoder (all-MiniLM-L6-v2 int8), cached vectors",
        "no labels: k utterances a route; fit(): the same + k other labelled requests a route",
        "accuracy: in scope, an abstention counts as an error; never: never abstaining (top-1);",
        "far: CLINC150 oos_test turned away. Mean (min-max) over the seeds.",
        "",
        f"{'corpus':<10}{'k':>3}  {'system':<10}{'accuracy':>20}{'never':>20}{'abstain':>9}"
        f"{'far':>7}{'fit s':>7}{'published 10-shot (USE)':>25}",
    ]
    for name, by_k in results["runs"].items():
        for k, runs in by_k.items():
            for system in ("plain", "fit"):
                rows = [r[system] for r in runs]

                def spread(key: str, rows: list[dict[str, Any]] = rows) -> str:
                    values = [100 * r[key] for r in rows]
                    return f"{np.mean(values):5.1f} ({min(values):.1f}-{max(values):.1f})"

                far = [r["far_recall"] for r in rows if r["far_recall"] is not None]
                published = f"{PUBLISHED[name]:.2f}" if k == "10" and system == "plain" else ""
                lines.append(
                    f"{name:<10}{k:>3}  {'no labels' if system == 'plain' else 'fit()':<10}"
                    f"{spread('accuracy'):>20}{spread('never'):>20}"
                    f"{pct(float(np.mean([r['abstain'] for r in rows]))):>9}"
                    f"{pct(float(np.mean(far)) if far else None):>7}"
                    + (
                        f"{np.mean([r['fit_s'] for r in runs]):>7.1f}"
                        if system == "fit"
                        else " " * 7
                    )
                    + f"{published:>25}"
                )
    lines += [
        "",
        "The published figures classify with 10 examples an intent and never abstain: compare",
        "them with the 10-shot 'never' column of 'no labels' (same 10 examples); fit() has seen",
        "20 examples a route. Casanueva et al. (2020): USE, 10 examples per intent.",
        f"({results['seconds']:.0f} s in all)",
    ]
    return "\n".join(lines)


def main() -> None:
    args = data_parser(__doc__).parse_args()
    started = time.perf_counter()
    clinc, banking = load_clinc(args.data), load_banking(args.data)
    corpora = {
        "clinc150": (clinc["train"], clinc["test"], [t for t, _ in clinc["oos_test"]], clinc),
        "banking77": (banking["train"], banking["test"], [], banking),
    }
    results: dict[str, Any] = {"runs": {}}
    for name, (train, test, far, splits) in corpora.items():
        encoder = TableEncoder(text_table(name, splits, args.cache))
        for k in SHOTS:
            for seed in SEEDS:
                log(f"{name} k={k} seed {seed} ...")
                results["runs"].setdefault(name, {}).setdefault(str(k), []).append(
                    run(test, train, far, encoder, k, seed)
                )
    results["seconds"] = time.perf_counter() - started
    text = render(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "few_shot.txt").write_text(text + "\n")
    (args.out / "few_shot.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
