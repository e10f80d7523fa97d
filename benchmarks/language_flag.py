"""The language flag (issue 23, point 7): false flags on English, hits on other languages, cost.

``semrouter._language.guess_language`` decides whether a request is written in a language the
encoder does not read; the router asks it only for requests that abstained below their
threshold (``reason="unsupported_language"``). Measured here:

1. False flags: every English test request of CLINC150 (4,500 in scope + 1,000 out of scope)
   and BANKING77 (3,080), and the English queries of ``benchmarks/data/multilingual.jsonl``,
   guessed as if each had abstained (an upper bound: routed requests are never looked at).
2. Hits: the requests of ``tests/unit/core/data/non_english.json`` (written for this flag,
   after its word lists: es, fr, de, it, pt, nl and 10 in other scripts) and, as a set the word
   lists were not written from, the non-English queries and utterances of
   ``benchmarks/data/multilingual.jsonl`` (es, fr, de, it, pt, nl; written for issue 13).
3. End to end with the default ``LocalEncoder`` (English) on the multilingual set's English
   routes: how the non-English test queries are answered (routed, abstained and flagged,
   abstained without a flag) and how the English ones are.
4. Cost: ``guess_language`` per English request (what an English abstention pays; a routed
   request pays one comparison), against a ``route()`` call.

    flock /tmp/semrouter-bench.lock python benchmarks/language_flag.py --data ../shared/data \\
        > benchmarks/results/language_flag.txt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

from semrouter import Route, SemanticRouter
from semrouter._language import guess_language
from semrouter.encoders import LocalEncoder

HERE = Path(__file__).resolve().parent
OWN_SET = HERE.parent / "tests" / "unit" / "core" / "data" / "non_english.json"
MULTILINGUAL = HERE / "data" / "multilingual.jsonl"


def english_sets(data: Path) -> dict[str, list[str]]:
    clinc = json.loads((data / "clinc150" / "data_full.json").read_text())
    banking = (data / "banking77" / "test" / "seq.in").read_text().splitlines()
    multi = [json.loads(line) for line in MULTILINGUAL.read_text().splitlines()]
    return {
        "CLINC150 test, in scope": [text for text, _ in clinc["test"]],
        "CLINC150 test, out of scope": [text for text, _ in clinc["oos_test"]],
        "BANKING77 test": [line for line in banking if line.strip()],
        "multilingual set, English": [m["text"] for m in multi if m["lang"] == "en"],
    }


def hit_table(label: str, by_language: dict[str, list[str]]) -> None:
    print(f"\n{label}")
    print(f"  {'language':<16}{'requests':>9}{'flagged':>9}{'rate':>8}{'right tag':>11}")
    total = flagged = 0
    for language, texts in by_language.items():
        guesses = [guess_language(t) for t in texts]
        hits = sum(g is not None for g in guesses)
        right = sum(g == language for g in guesses)
        total, flagged = total + len(texts), flagged + hits
        tag = f"{right:>11}" if len(language) == 2 else f"{'-':>11}"
        print(f"  {language:<16}{len(texts):>9}{hits:>9}{100 * hits / len(texts):>7.1f}%{tag}")
        for text, guess in zip(texts, guesses):
            if guess is None:
                print(f"      missed: {text}")
    print(f"  {'all':<16}{total:>9}{flagged:>9}{100 * flagged / total:>7.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    print(
        f"# benchmarks/language_flag.py; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )

    # 1. False flags on English ------------------------------------------------------------------
    print("\n## False flags on English requests (each guessed as if it had abstained)")
    print(f"  {'set':<32}{'requests':>9}{'flagged':>9}{'rate':>9}")
    english = english_sets(args.data)
    for label, texts in english.items():
        flagged = [(t, g) for t in texts if (g := guess_language(t)) is not None]
        rate = 100 * len(flagged) / len(texts)
        print(f"  {label:<32}{len(texts):>9}{len(flagged):>9}{rate:>8.2f}%")
        for text, guess in flagged:
            print(f"      {guess}: {text}")

    # 2. Hits on other languages -----------------------------------------------------------------
    own = {k: v for k, v in json.loads(OWN_SET.read_text()).items() if not k.startswith("_")}
    hit_table("## Hits: tests/unit/core/data/non_english.json (written for the flag)", own)
    multi = [json.loads(line) for line in MULTILINGUAL.read_text().splitlines()]
    held: dict[str, list[str]] = defaultdict(list)
    for item in multi:
        if item["lang"] != "en":
            held[item["lang"]].append(item["text"])
    hit_table(
        "## Hits: benchmarks/data/multilingual.jsonl, non-English (not used to write the lists)",
        dict(sorted(held.items())),
    )

    # 3. End to end: LocalEncoder, English routes -----------------------------------------------
    routes: dict[str, list[str]] = defaultdict(list)
    for item in multi:
        if item["split"] == "utterance" and item["lang"] == "en":
            routes[item["route"]].append(item["text"])
    queries = [m for m in multi if m["split"] in ("validation", "test")]
    encoder = LocalEncoder()
    router = SemanticRouter([Route(n, u) for n, u in routes.items()], encoder=encoder)
    outcome: dict[str, Counter[str]] = {"en": Counter(), "other": Counter()}
    for item in queries:
        match = router.route(item["text"])
        side = "en" if item["lang"] == "en" else "other"
        if match.name is not None:
            kind = "routed right" if match.name == item["route"] else "routed wrong"
        elif match.reason == "unsupported_language":
            kind = "abstained, flagged"
        else:
            kind = "abstained, no flag"
        outcome[side][kind] += 1
    print(
        f"\n## End to end: LocalEncoder (languages {sorted(encoder.languages or ())}), "
        f"{len(routes)} English routes, {len(queries)} validation + test queries of the "
        "multilingual set (out-of-scope ones included)"
    )
    kinds = ("routed right", "routed wrong", "abstained, flagged", "abstained, no flag")
    print(f"  {'queries':<12}" + "".join(f"{k:>20}" for k in kinds))
    for side, counts in outcome.items():
        n = sum(counts.values())
        print(f"  {side + f' ({n})':<12}" + "".join(f"{counts[k]:>20}" for k in kinds))

    # 4. Cost ------------------------------------------------------------------------------------
    sample = english["CLINC150 test, in scope"][:2000]
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for text in sample:
            guess_language(text)
        rounds.append((time.perf_counter() - start) / len(sample))
    guess_us = statistics.median(rounds) * 1e6
    route_times = []
    for text in sample[:300]:
        start = time.perf_counter()
        router.route(text)
        route_times.append(time.perf_counter() - start)
    route_us = statistics.median(route_times) * 1e6
    print("\n## Cost")
    print(
        f"  guess_language on an English request: {guess_us:.1f} us (median of 5 rounds over "
        f"{len(sample)} CLINC150 requests); router.route(): {route_us:.0f} us median; paid "
        f"by abstaining requests only ({100 * guess_us / route_us:.2f} % of a route() call)"
    )
    router.close()


if __name__ == "__main__":
    main()
