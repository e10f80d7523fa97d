"""Conversation-aware routing against the last message alone (issue 14).

Data: ``benchmarks/data/conversations.jsonl``, 196 hand-written conversations of 2-5 user
turns over the 12 routes of ``benchmarks/data/conversation_routes.json``. Each turn is labelled
with its route (``null`` when out of scope) and its kind:

- ``open``: the first turn;
- ``follow``: a follow-up that needs the context ("what about Saturday instead?");
- ``switch``: a self-contained turn to another route ("and find me a hotel near the Colosseum");
- ``oos``: an out-of-scope turn ("who painted the Mona Lisa?"), whose right answer is no route.

History (test was looked at more than once; the numbers below are the fifth run):
1. 160 conversations, score rules only: follow-ups +32.1, switches -5.7 (2 of 35 turns lost).
2. 36 conversations rich in switches and out-of-scope turns written and added (grid and rule
   unchanged): follow-ups +28.5, switches -5.5 (3 of 55 turns lost).
3. The "short" signal the issue names, added as ``long_words`` (a long turn that passes its
   threshold decides alone; follow-ups have a median of 4 words, switches 8), in the grid:
   follow-ups +31.7, switches -1.8, out of scope +0.0 (router threshold 0.28).
4. This run: the same, on the router's new default that learns from its own utterances (an
   adaptive threshold, 0.177 on these routes, and a ranking head); ``join_margin`` values
   re-spaced for the lower threshold. The library defaults stay those of run 3: on validation
   here they keep more follow-ups (73.6 vs 69.8 %) and every switch (91.4 vs 90.0 %) but let
   3 more of 17 out-of-scope turns through; the row "library defaults" shows them on test.
5. This run (issue 23, point 6): the defaults of run 4 routed 1 of 12 out-of-scope test turns
   right where the last message alone gets 5, because every unclear turn joined the context
   (``join_margin=2.0``). A turn now joins only when it looks like a follow-up: it scores near
   the context route's threshold (``join_margin``), or it has a follow-up cue (an opener such
   as "and", "what about", "for"; a word that refers back such as "it", "that", "one") and
   scores within ``cue_margin`` of it (``follow_up_cue``: 145 of 182 validation follow-ups
   have a cue, none of the 17 out-of-scope turns). Rule: among settings that keep every
   out-of-scope turn the last message alone keeps and switch accuracy within 2 points of it,
   the most follow-ups (ties: the mean of the three, then the setting that joins least and
   keeps ``long_words``); the library defaults are the chosen setting. The router's learnt
   thresholds are now 0.24-0.27 (0.177 in run 4): the margins were re-spaced. Test was run
   once with this design (validation numbers of the rule were seen before, with ties broken
   by grid order: the same accuracies).

Conversations alternate between a validation and a test half (the ``split`` of each line).
Every option of ``ConversationRouter`` is chosen on validation (the grid below; the rule of
run 5); test is measured once with the chosen options.
Two simpler mechanisms are measured beside it: a score blend with no gate (every turn
joins the context) and a mixed query vector (last turn + decayed previous user turns).

Cost: each test conversation is replayed turn by turn as a live chat (a fresh
``ConversationRouter`` per conversation, so each turn brings one new text to encode); each turn
is routed by ``router.route(last message)`` and by ``ConversationRouter.route(turns so far)``,
interleaved; medians compared. Real ``LocalEncoder`` (MiniLM int8 ONNX); run under the bench
lock:

    flock /tmp/semrouter-bench.lock python benchmarks/conversation.py \\
        > benchmarks/results/conversation.txt
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from semrouter import ConversationOptions, ConversationRouter, Route, SemanticRouter
from semrouter.encoders import LocalEncoder

DATA = Path(__file__).parent / "data"
KINDS = ("open", "follow", "switch", "oos")
GRID = {
    "window": (2, 3),
    "decay": (0.5, 1.0, 2.0),
    "clear_margin": (0.0, 0.05, 0.1),
    "switch_gap": (0.05, 0.08, 0.12),
    "join_margin": (0.0, 0.03, 0.06, 0.1, 2.0),
    "cue_margin": (0.0, 0.05, 0.1, 0.15, 0.2, 2.0),
    "long_words": (0, 8),
}

Conversation = list[dict[str, str | None]]
Predict = Callable[[list[str]], str | None]


class CountingEncoder(LocalEncoder):
    """The local encoder, counting the texts it encodes."""

    encoded = 0

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return super()._encode_batch(texts)


def load() -> tuple[list[Route], dict[str, list[Conversation]]]:
    routes = json.loads((DATA / "conversation_routes.json").read_text())
    splits: dict[str, list[Conversation]] = {"val": [], "test": []}
    for line in (DATA / "conversations.jsonl").read_text().splitlines():
        item = json.loads(line)
        splits[item["split"]].append(item["turns"])
    return [Route(name, utterances) for name, utterances in routes.items()], splits


def accuracy(predict: Predict, conversations: Sequence[Conversation]) -> dict[str, float]:
    hits: dict[str, list[bool]] = {kind: [] for kind in (*KINDS, "all")}
    for turns in conversations:
        texts = [str(t["text"]) for t in turns]
        for i, turn in enumerate(turns):
            right = predict(texts[: i + 1]) == turn["route"]
            hits[str(turn["kind"])].append(right)
            hits["all"].append(right)
    return {kind: 100.0 * float(np.mean(v)) for kind, v in hits.items()}


def counts(conversations: Sequence[Conversation]) -> dict[str, int]:
    out = {kind: 0 for kind in KINDS}
    for turns in conversations:
        for turn in turns:
            out[str(turn["kind"])] += 1
    return out


def mixed_vector(router: SemanticRouter, decay: float, window: int) -> Predict:
    """Route one query vector: the last turn plus decayed previous user turns."""
    cache: dict[str, np.ndarray] = {}

    def predict(texts: list[str]) -> str | None:
        missing = [t for t in texts[-window:] if t not in cache]
        if missing:
            cache.update(zip(missing, router.encoder.encode(missing)))
        query = np.zeros(router.encoder.dimension, dtype=np.float32)
        for age, text in enumerate(reversed(texts[-window:])):
            query += (decay**age) * cache[text]
        return router.route_vectors(query[None, :])[0].name

    return predict


def row(label: str, acc: dict[str, float]) -> str:
    cells = "".join(f"{acc[k]:>9.1f}" for k in (*KINDS, "all"))
    return f"  {label:<44}{cells}"


def main(validation_only: bool = False) -> None:
    """Choose on validation, then measure test (``validation_only``: stop before test)."""
    routes, splits = load()
    encoder = CountingEncoder()
    router = SemanticRouter(routes, encoder=encoder)
    base = ConversationRouter(router)
    n_val, n_test = counts(splits["val"]), counts(splits["test"])
    print(
        f"Conversation routing, {len(routes)} routes, {sum(map(len, splits.values()))} "
        f"conversations; real LocalEncoder; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"turns  val: {n_val}  test: {n_test}")
    thresholds = sorted({round(router.threshold_for(name), 3) for name in router.route_names})
    print(f"router: default options; route thresholds {thresholds}")
    header = f"  {'':<44}" + "".join(f"{k:>9}" for k in (*KINDS, "all"))

    # -- validation: choose the options ---------------------------------------------------------
    last_only: Predict = lambda texts: base.route_last(texts).name  # noqa: E731
    val_last = accuracy(last_only, splits["val"])
    results = []
    start = time.perf_counter()
    for values in itertools.product(*GRID.values()):
        options = dict(zip(GRID, values))
        candidate = base.replace(**options)
        acc = accuracy(lambda texts, c=candidate: c.route(texts).name, splits["val"])
        results.append((options, acc))
    grid_s = time.perf_counter() - start
    allowed = [
        r
        for r in results
        if r[1]["switch"] >= val_last["switch"] - 2.0 and r[1]["oos"] >= val_last["oos"]
    ]
    pool = allowed or results

    def objective(item: tuple[dict[str, float], dict[str, float]]) -> tuple[float, ...]:
        options, acc = item
        mean = (acc["follow"] + acc["switch"] + acc["oos"]) / 3.0
        # Ties: the setting that joins least, and keeps the long-turn rule.
        least = (-options["cue_margin"], -options["join_margin"], options["long_words"] > 0)
        return (acc["follow"], mean, *least)

    chosen, _ = max(pool, key=objective)
    print(
        f"\nValidation grid: {len(results)} settings in {grid_s:.0f} s; {len(allowed)} keep "
        "out-of-scope accuracy at least that of the last message alone and switch accuracy "
        "within 2 points of it."
    )
    print(
        "Chosen (the most follow-ups among them; ties: the mean of the three, then the one "
        f"that joins least and keeps long_words): {chosen}"
    )
    print("Top 5 by that rule (follow, switch, oos):")
    for options, acc in sorted(pool, key=objective, reverse=True)[:5]:
        print(f"  {acc['follow']:5.1f} {acc['switch']:5.1f} {acc['oos']:5.1f}  {options}")

    chosen_router = base.replace(**chosen)
    no_gate = base.replace(
        clear_margin=2.0, switch_gap=2.0, join_margin=2.0, window=4, decay=1.0, long_words=0
    )
    run4 = base.replace(
        window=2, decay=0.5, clear_margin=0.05, switch_gap=0.12, join_margin=2.0, cue_margin=0.0
    )
    mechanisms: list[tuple[str, Predict]] = [
        ("last message alone", last_only),
        ("score blend, no gate (window 4, decay 1)", lambda t: no_gate.route(t).name),
        ("mixed query vector (window 2, decay 0.5)", mixed_vector(router, 0.5, 2)),
        ("mixed query vector (window 3, decay 0.5)", mixed_vector(router, 0.5, 3)),
        ("ConversationRouter, chosen options", lambda t: chosen_router.route(t).name),
        ("ConversationRouter, library defaults", lambda t: base.route(t).name),
        ("run-4 defaults (every unclear turn joins)", lambda t: run4.route(t).name),
    ]
    print("\nAccuracy per turn (%), by kind of the last turn")
    for split in ("val",) if validation_only else ("val", "test"):
        print(f"{split}:\n{header}")
        table = {}
        for label, predict in mechanisms:
            table[label] = accuracy(predict, splits[split])
            print(row(label, table[label]))
        if split == "test":
            last, conv = table["last message alone"], table["ConversationRouter, chosen options"]
            default = table["ConversationRouter, library defaults"]
    if validation_only:
        router.close()
        return

    # -- targets on test ------------------------------------------------------------------------
    follow_gain = conv["follow"] - last["follow"]
    switch_drop = last["switch"] - conv["switch"]
    print("\nTargets on test:")
    oos_gain = conv["oos"] - last["oos"]
    print(
        f"  follow-ups: {follow_gain:+.1f} points over the last message alone "
        f"(target >= +30): {'met' if follow_gain >= 30 else 'MISSED'}"
    )
    print(
        f"  topic switches: {-switch_drop:+.1f} points (target >= -2; one switch turn is "
        f"{100 / n_test['switch']:.1f} points): {'met' if switch_drop <= 2 else 'MISSED'}"
    )
    print(
        f"  out-of-scope turns: {oos_gain:+.1f} points ({n_test['oos']} turns; target >= 0): "
        f"{'met' if oos_gain >= 0 else 'MISSED'}"
    )
    print(
        f"  library defaults {base.options.model_dump()}: follow-ups "
        f"{default['follow'] - last['follow']:+.1f}, "
        f"switches {default['switch'] - last['switch']:+.1f}, "
        f"out of scope {default['oos'] - last['oos']:+.1f}"
    )

    cost(router, encoder, chosen_router.options, splits["test"])
    router.close()


def cost(
    router: SemanticRouter,
    encoder: CountingEncoder,
    options: ConversationOptions,
    conversations: Sequence[Conversation],
) -> None:
    """Live replay, interleaved; the encoder's query cache off (a live chat's turns are new)."""
    encoder.cache_size = 0
    route_times: list[float] = []
    conv_times: list[float] = []
    encoded_per_turn: list[int] = []
    for _ in range(3):
        for turns in conversations:
            live = ConversationRouter(router, options)
            texts = [str(t["text"]) for t in turns]
            for i in range(len(texts)):
                start = time.perf_counter()
                router.route(texts[i])
                route_times.append(time.perf_counter() - start)
                before = encoder.encoded
                start = time.perf_counter()
                live.route(texts[: i + 1])
                conv_times.append(time.perf_counter() - start)
                encoded_per_turn.append(encoder.encoded - before)
    route_ms = statistics.median(route_times) * 1e3
    conv_ms = statistics.median(conv_times) * 1e3
    ratio = conv_ms / route_ms
    print(
        f"\nCost per turn, {len(route_times)} turns (3 replays of the test conversations; "
        f"{options.model_dump()}; the encoder's query cache off):"
    )
    print(f"  router.route(last message)            median {route_ms:.2f} ms")
    print(f"  ConversationRouter.route(turns so far) median {conv_ms:.2f} ms")
    print(
        f"  ratio {ratio:.2f} (target <= 1.10): {'met' if ratio <= 1.10 else 'MISSED'}; "
        f"texts encoded per turn: max {max(encoded_per_turn)}, "
        f"mean {statistics.mean(encoded_per_turn):.2f}"
    )


def cost_only() -> None:
    """The cost section alone, with the library defaults (no grid, no accuracy)."""
    routes, splits = load()
    encoder = CountingEncoder()
    with SemanticRouter(routes, encoder=encoder) as router:
        cost(router, encoder, ConversationOptions(), splits["test"])


if __name__ == "__main__":
    if "--cost-only" in sys.argv:
        cost_only()
    else:
        main(validation_only="--validation-only" in sys.argv)
