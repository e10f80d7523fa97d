"""Does fit() gain from letting its held-out texts train the head (cross-fitting)? Validation only.

Every figure here comes from the validation splits: each is cut in two stratified halves;
``fit()`` gets half A (as ``validation=``, or as texts with its holdout for BANKING77, as
in compare.py) and the router is measured on half B. The test splits are never read.
``folds`` is ``FitSettings.folds``: 0 keeps the held-out texts out of the head (the old
fit()), k >= 2 scores them out of fold to choose the thresholds and then trains the final
head on them too. Embeddings come from compare.py's cache (``--cache``).

    flock /tmp/semrouter-bench.lock python benchmarks/quality/crossfit.py
    # prints the table and writes benchmarks/results/crossfit.txt
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import semrouter.training._fitting as fitting
from semrouter import Route, SemanticRouter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (
    RESULTS,
    Rows,
    TableEncoder,
    corpora,
    data_parser,
    halves,
    quiet_evaluate,
    routes_from,
    split,
)

FOLDS = (0, 5)
_fit_router = fitting.fit_router


def with_folds(folds: int) -> None:
    """Make router.fit() use ``folds`` (the public API has no such keyword yet)."""

    def patched(*args: Any, settings: fitting.FitSettings, **kwargs: Any) -> Any:
        return _fit_router(*args, settings=dataclasses.replace(settings, folds=folds), **kwargs)

    fitting.fit_router = patched  # type: ignore[assignment]


LINES: list[str] = []


def say(line: str) -> None:
    print(line, flush=True)
    LINES.append(line)


def measure(
    title: str,
    routes: list[tuple[str, list[str]]],
    encoder: TableEncoder,
    a: Rows,
    b: Rows,
    extra: Rows,
    holdout: bool,
) -> None:
    router = SemanticRouter([Route(n, u) for n, u in routes], encoder=encoder, learn=False)
    for folds in FOLDS:
        with_folds(folds)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if holdout:
                router.fit(*split(a + extra))
            else:
                router.fit(*split(extra), validation=split(a))
        seconds = time.perf_counter() - started
        report = quiet_evaluate(router, b)
        recall = "" if report.oos_recall is None else f"  oos recall {100 * report.oos_recall:.1f}"
        say(
            f"{title:<34} folds {folds}: accuracy {100 * report.accuracy:.2f}  in-scope "
            f"{100 * report.in_scope_accuracy:.2f}{recall}  fit {seconds:.1f} s"
        )
    router.close()


def main() -> None:
    parser = data_parser(__doc__, results=False)
    parser.add_argument("--only", default="", help="comma list: full,five,oos,banking")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    (clinc, c_enc), (banking, b_enc) = corpora(args.data, args.cache)
    a, b = halves(clinc["val"])
    oa, ob = halves(clinc["oos_val"])
    full = routes_from(clinc["train"], None, 0)
    if not only or "full" in only:
        measure("CLINC150 all train", full, c_enc, a, b, clinc["oos_train"], False)
    if not only or "five" in only:
        for seed in range(3):
            five = routes_from(clinc["train"], 5, seed)
            measure(f"CLINC150 5/route seed {seed}", five, c_enc, a, b, clinc["oos_train"], False)
    if not only or "oos" in only:
        measure("CLINC150 +oos", full, c_enc, a + oa, b + ob, clinc["oos_train"], False)
    if not only or "banking" in only:
        ba, bb = halves(banking["valid"])
        measure(
            "BANKING77 (holdout 0.2 of half A)",
            routes_from(banking["train"], None, 0),
            b_enc,
            ba,
            bb,
            [],
            True,
        )
    if not only:
        header = [
            "fit() cross-fitting, validation splits only (benchmarks/quality/crossfit.py)",
            "each validation split cut in two stratified halves: fit() gets half A, the router "
            "is measured on half B",
            "folds 0: half A only chooses the thresholds; folds 5: it is scored out of fold, "
            "then trains the final head",
            "",
        ]
        out = RESULTS / "crossfit.txt"
        out.write_text("\n".join(header + LINES) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
