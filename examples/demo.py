"""The semrouter demo: the seed example from the Qdrant docs, offline.

Two routes of five utterances each, the default local encoder (all-MiniLM-L6-v2, int8 ONNX,
shipped in a PyPI package) and Qdrant's embedded engine in this process. It routes a few
queries, shows one that matches nothing, then reopens a persistent router and shows that
nothing is re-encoded.

    python examples/demo.py
"""

from __future__ import annotations

import tempfile
import time

from semrouter import LocalEncoder, Route, SemanticRouter

politics = Route(
    "politics",
    [
        "isn't politics the best thing ever",
        "why don't you tell me about your political opinions",
        "don't you just love the president",
        "they're going to destroy this country!",
        "they will save the country!",
    ],
)
chitchat = Route(
    "chitchat",
    [
        "how's the weather today?",
        "how are things going?",
        "lovely weather today",
        "the weather is horrendous",
        "let's go to the chippy",
    ],
)


def show(router: SemanticRouter, text: str) -> None:
    started = time.perf_counter()
    match = router.route(text)
    took = (time.perf_counter() - started) * 1000
    if match.name is None:
        print(f"{text!r:45} -> no route (best score {match.score:.2f}; {took:.1f} ms)")
    else:
        print(
            f"{text!r:45} -> {match.name} (score {match.score:.2f}, "
            f"closest: {match.utterance!r}; {took:.1f} ms)"
        )


def main() -> None:
    encoder = LocalEncoder()
    router = SemanticRouter([politics, chitchat], encoder=encoder)
    print(router)
    for text in [
        "What have you been upto?",
        "don't you love politics?",
        "how's the weather in London?",
        "What is the melting point of tungsten?",  # matches nothing
    ]:
        show(router, text)

    with tempfile.TemporaryDirectory() as folder:
        first = SemanticRouter([politics, chitchat], encoder=encoder, path=folder)
        print(f"\npersistent router in {folder}: encoded {first.last_sync.encoded} utterances")
        first.close()
        started = time.perf_counter()
        again = SemanticRouter([politics, chitchat], encoder=encoder, path=folder)
        took = (time.perf_counter() - started) * 1000
        print(f"reopened in {took:.0f} ms: encoded {again.last_sync.encoded} utterances")
        show(again, "What have you been upto?")
        again.close()


if __name__ == "__main__":
    main()
