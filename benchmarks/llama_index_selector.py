"""SemRouterSelector against LlamaIndex's EmbeddingSingleSelector, on the same encoder.

Both selectors embed with the same offline ``LocalEncoder`` (MiniLM): LlamaIndex's
``EmbeddingSingleSelector`` through :class:`~llama_index_semrouter.SemRouterEmbedding`, ours
directly. For 10 and 100 choices (one description each) the script routes 20 queries and
reports embedding calls per query and the median / p90 selection latency, after one warm-up
query (for ours, the warm-up is the one-time encoding of the choices, reported separately).

Our selector runs with ``threshold=-1`` so that, like ``EmbeddingSingleSelector``, it always
selects the best choice; the agreement column checks that both pick the same one.

    python benchmarks/llama_index_selector.py

writes its table to ``benchmarks/results/llama_index_selector.txt``.
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from pathlib import Path

import llama_index.core
import numpy.typing as npt
from llama_index.core.selectors import EmbeddingSingleSelector
from llama_index.core.tools import ToolMetadata

import semrouter
from llama_index_semrouter import SemRouterEmbedding, SemRouterSelector
from semrouter import Encoder, LocalEncoder

RESULTS = Path(__file__).parent / "results" / "llama_index_selector.txt"

DOMAINS = [
    "billing", "shipping", "weather", "flights", "hotels", "cooking recipes", "fitness",
    "income taxes", "car insurance", "online banking", "mortgages", "car repair", "gardening",
    "pet care", "music lessons", "movies", "books", "football", "tennis", "programming",
    "databases", "home networking", "password security", "job applications", "university courses",
]  # fmt: skip
ASPECTS = ["prices and costs", "troubleshooting problems", "getting started", "rules and policies"]
QUERIES = [
    "why was my credit card charged twice this month",
    "my parcel has not arrived yet",
    "will it rain tomorrow afternoon",
    "cheapest flight to Lisbon in May",
    "is breakfast included with the hotel room",
    "how long do I bake a chicken",
    "a good beginner workout plan",
    "when is the deadline to file my tax return",
    "does my car insurance cover a broken windshield",
    "I can't log in to my bank account",
    "what is a fixed-rate mortgage",
    "my car makes a strange noise when braking",
    "when should I plant tomatoes",
    "how often should I feed my puppy",
    "how much do guitar lessons cost",
    "recommend a good science fiction movie",
    "who won the football match last night",
    "how do I fix a segmentation fault in C",
    "my wifi keeps disconnecting",
    "how do I write a cover letter",
]


class CountingEncoder(Encoder):
    """Delegates to an encoder and counts the calls that reach it."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.default_threshold = inner.default_threshold
        self.calls = 0
        self.texts = 0
        self._lock = threading.Lock()

    def encode_batch(self, texts: list[str]) -> npt.ArrayLike:
        with self._lock:
            self.calls += 1
            self.texts += len(texts)
        return self.inner.encode(texts)


def choices(count: int) -> list[ToolMetadata]:
    """``count`` distinct choices; the first 25 cover every domain once."""
    pairs = [(d, a) for a in ASPECTS for d in DOMAINS][:count]
    return [
        ToolMetadata(name=f"{d.replace(' ', '_')}_{i}", description=f"Questions about {d}: {a}.")
        for i, (d, a) in enumerate(pairs)
    ]


def measure(
    selector: object, metadata: list[ToolMetadata], encoder: CountingEncoder
) -> dict[str, float]:
    select = selector.select  # type: ignore[attr-defined]
    start = time.perf_counter()
    select(metadata, "warm-up query")
    first_ms = (time.perf_counter() - start) * 1000
    encoder.calls = encoder.texts = 0
    latencies, picks = [], []
    for query in QUERIES:
        start = time.perf_counter()
        result = select(metadata, query)
        latencies.append((time.perf_counter() - start) * 1000)
        picks.append(result.ind)
    latencies.sort()
    return {
        "first_ms": first_ms,
        "calls": encoder.calls / len(QUERIES),
        "texts": encoder.texts / len(QUERIES),
        "median_ms": statistics.median(latencies),
        "p90_ms": latencies[int(0.9 * (len(latencies) - 1))],
        "picks": picks,  # type: ignore[dict-item]
    }


def main() -> None:
    encoder = CountingEncoder(LocalEncoder())
    encode_ms = []
    for query in ["warm-up query", *QUERIES]:
        start = time.perf_counter()
        encoder.inner.encode([query])
        encode_ms.append((time.perf_counter() - start) * 1000)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "SemRouterSelector vs LlamaIndex EmbeddingSingleSelector (same LocalEncoder, MiniLM int8)",
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"llama-index-core {llama_index.core.__version__}, semrouter {semrouter.__version__}",
        f"{len(QUERIES)} queries per row after one warm-up query; latency = one select() call",
        f"one LocalEncoder.encode([query]) alone: median {statistics.median(encode_ms[1:]):.2f} ms "
        f"(load average at start: {load})",
        "",
        f"{'choices':>7}  {'selector':<24} {'embed calls/query':>17} {'texts/query':>11} "
        f"{'median ms':>9} {'p90 ms':>7} {'first call ms':>13} {'agree':>6}",
    ]
    for count in (10, 100):
        metadata = choices(count)
        theirs = EmbeddingSingleSelector.from_defaults(embed_model=SemRouterEmbedding(encoder))
        ours = SemRouterSelector.from_defaults(encoder=encoder, threshold=-1.0)
        rows = {
            "EmbeddingSingleSelector": measure(theirs, metadata, encoder),
            "SemRouterSelector": measure(ours, metadata, encoder),
        }
        ours.close()
        agree = sum(
            a == b
            for a, b in zip(
                rows["EmbeddingSingleSelector"]["picks"],  # type: ignore[arg-type]
                rows["SemRouterSelector"]["picks"],  # type: ignore[arg-type]
                strict=True,
            )
        )
        for name, row in rows.items():
            lines.append(
                f"{count:>7}  {name:<24} {row['calls']:>17.0f} {row['texts']:>11.0f} "
                f"{row['median_ms']:>9.2f} {row['p90_ms']:>7.2f} {row['first_ms']:>13.1f} "
                f"{agree:>3}/{len(QUERIES)}"
            )
    lines += [
        "",
        "first call: EmbeddingSingleSelector embeds the query and every description on every",
        "call; SemRouterSelector encodes the descriptions once (first call, or at construction",
        "with choices=), keeps them in Qdrant, and then embeds only the query.",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
