"""Which ``SemanticRouter.fit`` options and router scoring move the numbers? Validation only.

The validation split (CLINC150 ``val`` + ``oos_val``; BANKING77 ``valid``) is cut in two
stratified halves: ``fit`` sees half A, the numbers are measured on half B. The test splits are
never read. Reuses compare.py's loaders and embedding cache; runs in the project venv.

    .venv/bin/python benchmarks/quality/fit_options.py
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import CACHE, DATA, Rows, TableEncoder, corpora, halves, routes_from, split

from semrouter import Route, SemanticRouter


def measure(router: SemanticRouter, rows: Rows) -> dict[str, float]:
    texts, labels = split(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = router.evaluate(texts, labels)
    inside = [(t, g) for t, g in rows if g is not None]
    tops = router.top_routes_many([t for t, _ in inside], 1, apply_threshold=False)
    top1 = sum(m[0].name == g for m, (_, g) in zip(tops, inside)) / len(inside)
    return {
        "top1": top1,
        "accuracy": report.accuracy,
        "in_scope": report.in_scope_accuracy or 0.0,
        "oos_recall": report.oos_recall if report.oos_recall is not None else float("nan"),
    }


def row(name: str, values: dict[str, float], seconds: float) -> None:
    cells = "".join(f"{100 * values[k]:>10.1f}" for k in ("top1", "accuracy", "in_scope"))
    recall = values["oos_recall"]
    print(f"{name:<44}{cells}{100 * recall:>10.1f}{seconds:>8.1f}", flush=True)


def run(
    title: str,
    routes: list[tuple[str, list[str]]],
    encoder: TableEncoder,
    val: Rows,
    extra: Rows,
    fits: list[tuple[str, dict[str, Any]]],
) -> None:
    a, b = halves(val)
    print(f"\n{title}: fit on half A ({len(a)}), measured on half B ({len(b)})")
    print(
        f"{'variant':<44}{'top-1':>10}{'accuracy':>10}{'in-scope':>10}{'oos rec':>10}{'fit s':>8}"
    )
    built: dict[tuple[str, int], SemanticRouter] = {}
    for name, options in fits:
        scoring = options.pop("router", ("mean", 2))
        if scoring not in built:
            built[scoring] = SemanticRouter(
                [Route(n, u) for n, u in routes],
                encoder=encoder,
                aggregation=scoring[0],
                top_k=scoring[1],
                threshold=-1.0,
                learn=False,
            )
        router = built[scoring]
        mode = options.pop("mode", "validation")
        if mode == "none":
            router.set_calibration(None)
            router.configure(threshold=-1.0)  # the floor: never abstain
            row(name, measure(router, b), 0.0)
            continue
        router.configure(threshold=None)  # a set threshold would win over the fitted ones
        if mode == "validation":
            texts, labels = split(extra)
            call = {"validation": split(a), **options}
        else:  # holdout: half A (and the extra None rows) split by fit() itself
            texts, labels = split(a + extra)
            call = dict(options)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            router.fit(texts, labels, **call)
        row(name, measure(router, b), time.perf_counter() - started)
        if name.startswith("default") and router.calibration is not None:
            # the head alone: similarity weight 0 (fit() does not expose it); top-1 only
            cal = router.calibration.model_copy(update={"similarity_weight": 0.0})
            router.set_calibration(cal)
            row("  same head, similarity weight 0 (top-1 only)", measure(router, b), 0.0)
    for router in built.values():
        router.close()


def main() -> None:
    (clinc, c_enc), (banking, b_enc) = corpora(DATA, CACHE)
    variants: list[tuple[str, dict[str, Any]]] = [
        ("unfitted (val-chosen nothing, threshold -1)", {"mode": "none"}),
        ("default fit (none_weight 5, l2 1e-5)", {}),
        ("none_weight 1", {"none_weight": 1.0}),
        ("none_weight 20", {"none_weight": 20.0}),
        ("l2 1e-6", {"l2": 1e-6}),
        ("l2 1e-4", {"l2": 1e-4}),
        ("per_route_thresholds", {"per_route_thresholds": True}),
        ("metric f1", {"metric": "f1"}),
        ("holdout 0.2 of A + oos_train (head sees A)", {"mode": "holdout"}),
        ("router mean@5, default fit", {"router": ("mean", 5)}),
        ("router max@1, default fit", {"router": ("max", 1)}),
    ]
    full = routes_from(clinc["train"], None, 0)
    val = clinc["val"] + clinc["oos_val"]
    run(
        "CLINC150 all train",
        full,
        c_enc,
        val,
        clinc["oos_train"],
        [(n, dict(o)) for n, o in variants],
    )
    five = routes_from(clinc["train"], 5, 0)
    run(
        "CLINC150 5/route seed 0",
        five,
        c_enc,
        val,
        clinc["oos_train"],
        [(n, dict(o)) for n, o in variants if "per_route" not in n and "f1" not in n],
    )
    b_variants: list[tuple[str, dict[str, Any]]] = [
        ("unfitted (threshold -1)", {"mode": "none"}),
        ("default fit (holdout 0.2 of A)", {"mode": "holdout"}),
        ("l2 1e-6", {"mode": "holdout", "l2": 1e-6}),
        ("l2 1e-4", {"mode": "holdout", "l2": 1e-4}),
        ("head=False (thresholds only)", {"mode": "holdout", "head": False}),
        ("router mean@5, default fit", {"mode": "holdout", "router": ("mean", 5)}),
        ("router max@1, default fit", {"mode": "holdout", "router": ("max", 1)}),
    ]
    run(
        "BANKING77 all train",
        routes_from(banking["train"], None, 0),
        b_enc,
        banking["valid"],
        [],
        b_variants,
    )


if __name__ == "__main__":
    main()
