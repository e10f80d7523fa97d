"""fit() in seconds (issue 23, point 3): time and accuracy of ``fit()`` at CLINC150 scale.

CLINC150: a router holding all 15,000 train utterances (150 routes) is fitted as compare.py
does: ``fit(oos_train, validation=val + oos_val)`` (100 "no route" texts to train on, 3,100
labelled texts held out and cross-fitted in 5 folds). BANKING77: all 8,622 train utterances,
``fit(valid)`` with the default 20 % holdout. Both with the router's default learning on (the
head learnt from the utterances starts the fit) and off (``learn=False``, as compare.py).
Embeddings come from compare.py's cache, so the seconds exclude encoding (as in quality.txt).

Two trees are measured in turn, in child processes, on the same machine: the package as
committed at ``--before`` (default: the commit before the solver changes) and this working
tree. For each:

1. seconds of ``fit()`` (median of ``--repeat``) and of ``learn()`` (self-training, 15k);
2. validation (chooses nothing now; it is how the solver settings were checked): CLINC150
   fitted on one half of val + oos_val and evaluated on the other half, both ways;
3. test, once: CLINC150 test + oos_test after the full fit; BANKING77 test.

Run under the bench lock (about 6 minutes on 2 cores):

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/quality/fit_speed.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BEFORE = "2dcb2ee"  # the last commit with fit()'s old solver (tol 1e-6, 10 pairs, cold start)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- one tree, in a child process ---------------------------------------------------------------
def measure(data: Path, cache: Path, repeat: int, tree: str | None) -> dict[str, Any]:
    if tree:  # the package of another commit, ahead of this clone's editable install
        sys.meta_path[:] = [f for f in sys.meta_path if "editables" not in str(f)]
        sys.path.insert(0, tree)
    import semrouter
    from semrouter import Route, SemanticRouter

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare import TableEncoder, load_banking, load_clinc, routes_from, split, text_table

    log(f"semrouter from {semrouter.__file__}")
    clinc, banking = load_clinc(data), load_banking(data)
    c_table, b_table = text_table("clinc150", clinc, cache), text_table("banking77", banking, cache)
    out: dict[str, Any] = {"package": semrouter.__file__}

    def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # stored utterances among the texts
            return fn(*args, **kwargs)

    def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
        started = time.perf_counter()
        result = quiet(fn, *args, **kwargs)
        return result, time.perf_counter() - started

    def report(r: Any) -> dict[str, float | None]:
        return {
            "accuracy": r.accuracy,
            "in_scope_accuracy": r.in_scope_accuracy,
            "oos_recall": getattr(r, "oos_recall", None),
        }

    c_routes = [Route(n, u) for n, u in routes_from(clinc["train"], None, 0)]
    b_routes = [Route(n, u) for n, u in routes_from(banking["train"], None, 0)]
    oos_texts, oos_labels = split(clinc["oos_train"])
    held = clinc["val"] + clinc["oos_val"]
    for learn in (True, False):
        key = "learn" if learn else "no_learn"
        log(f"[{key}] CLINC150 ...")
        router = SemanticRouter(c_routes, encoder=TableEncoder(c_table), learn=learn)
        _, learn_s = timed(router.learn) if learn else (None, 0.0)
        seconds = []
        for _ in range(repeat):
            _, fit_s = timed(router.fit, oos_texts, oos_labels, validation=split(held))
            seconds.append(fit_s)
        result: dict[str, Any] = {"fit_s": seconds, "learn_s": learn_s}
        test = clinc["test"] + clinc["oos_test"]
        result["test"] = report(quiet(router.evaluate, *split(test)))
        halves = []
        val, oos = clinc["val"], clinc["oos_val"]
        for a, b in ((0, 1), (1, 0)):
            quiet(router.fit, oos_texts, oos_labels, validation=split(val[a::2] + oos[a::2]))
            halves.append(report(quiet(router.evaluate, *split(val[b::2] + oos[b::2]))))
        result["validation_halves"] = halves
        router.close()
        log(f"[{key}] BANKING77 ...")
        router = SemanticRouter(b_routes, encoder=TableEncoder(b_table), learn=learn)
        if learn:
            router.learn()
        _, result["banking_fit_s"] = timed(router.fit, *split(banking["valid"]))
        result["banking_test"] = report(quiet(router.evaluate, *split(banking["test"])))
        router.close()
        out[key] = result
    return out


# -- the driver ---------------------------------------------------------------------------------
def run_tree(tree: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", "--data", str(args.data)]
    command += ["--cache", str(args.cache), "--repeat", str(args.repeat)]
    if tree is not None:
        command += ["--tree", str(tree / "shared")]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def pct(x: float | None) -> str:
    return "   - " if x is None else f"{100 * x:5.1f}"


def render(results: dict[str, Any]) -> str:
    lines = [
        "fit() at CLINC150 scale (issue 23, point 3); benchmarks/quality/fit_speed.py",
        "CLINC150: 150 routes, 15,000 utterances; fit(oos_train: 100 'no route' texts,"
        " validation = val + oos_val: 3,100 texts, 5 folds). BANKING77: 8,622 utterances,",
        "fit(valid: 1,540 texts, 20 % held out). Cached vectors (no encoding); 2 shared cores;"
        " both trees run in turn in one session.",
        f"before = commit {results['before_commit']} (L-BFGS to 1e-6 with 10 pairs, cold"
        " start); after = this tree (first and fold heads to 1e-4,",
        "kept head to 1e-5, 30 pairs, first head from the learnt one, fused loss). A first run"
        " with every head to 1e-5 measured 18.9 / 16.9 s,",
        "test accuracy within +0.07 points of before; the tolerances were then loosened on"
        " validation (halves of val) only, and test measured again here.",
        "",
        f"{'':<24}{'fit s (median)':>15}{'all runs':>22}{'learn s':>9}{'BANKING fit s':>15}",
    ]
    for tree in ("before", "after"):
        for key, label in (("learn", "learning on"), ("no_learn", "learn=False")):
            r = results[tree][key]
            runs = " ".join(f"{s:.1f}" for s in r["fit_s"])
            learn = f"{r['learn_s']:.1f}" if key == "learn" else "-"
            lines.append(
                f"{tree + ', ' + label:<24}{statistics.median(r['fit_s']):>15.1f}{runs:>22}"
                f"{learn:>9}{r['banking_fit_s']:>15.1f}"
            )
    lines += [
        "",
        "Accuracy (%): validation = fit on one half of val + oos_val, evaluated on the other"
        " (mean of both ways); test once",
        f"{'':<24}{'val overall':>12}{'val in-scope':>13}{'CLINC +oos':>11}{'in-scope':>9}"
        f"{'oos recall':>11}{'BANKING77':>10}",
    ]
    for tree in ("before", "after"):
        for key, label in (("learn", "learning on"), ("no_learn", "learn=False")):
            r = results[tree][key]
            val = [statistics.mean(h[m] for h in r["validation_halves"]) for m in
                   ("accuracy", "in_scope_accuracy")]  # fmt: skip
            t, b = r["test"], r["banking_test"]
            lines.append(
                f"{tree + ', ' + label:<24}{pct(val[0]):>12}{pct(val[1]):>13}"
                f"{pct(t['accuracy']):>11}{pct(t['in_scope_accuracy']):>9}"
                f"{pct(t['oos_recall']):>11}{pct(b['accuracy']):>10}"
            )
    after = results["after"]
    worst = max(statistics.median(after[k]["fit_s"]) for k in ("learn", "no_learn"))
    lines += [
        "",
        "Targets:",
        f"  fit() at CLINC150 scale <= 15 s (worst of learning on/off, median)"
        f"  {worst:.1f} s  {'met' if worst <= 15 else 'MISSED'} ({15 - worst:+.1f} s)",
    ]
    for key in ("learn", "no_learn"):
        for what, pick in (
            ("CLINC +oos test", lambda r: r["test"]["accuracy"]),
            ("CLINC in-scope test", lambda r: r["test"]["in_scope_accuracy"]),
            ("BANKING77 test", lambda r: r["banking_test"]["accuracy"]),
        ):
            diff = pick(results["after"][key]) - pick(results["before"][key])
            lines.append(
                f"  accuracy no lower, {what} ({key}): {100 * diff:+.2f} points"
                f"  {'met' if diff >= -0.0005 else 'MISSED'}"
            )
    lines.append(f"({results['seconds']:.0f} s in all)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrouter-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.data, args.cache, args.repeat, args.tree)))
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "shared/semrouter"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        log(f"before ({args.before}) ...")
        before = run_tree(Path(folder), args)
    log("after (this tree) ...")
    after = run_tree(None, args)
    results = {
        "before_commit": args.before,
        "before": before,
        "after": after,
        "seconds": time.perf_counter() - started,
    }
    text = render(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fit_speed.json").write_text(json.dumps(results, indent=1))
    (args.out / "fit_speed.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
