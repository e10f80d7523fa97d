"""Child-process helper for the embedded-store reliability tests: open a router on a folder and
print one JSON line saying what happened (a crash of the child shows as its return code)."""

from __future__ import annotations

import json
import sys

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._exceptions import SemRouterError

ROUTES = [
    Route("greet", ["hello there", "hi how are you", "good morning friend"]),
    Route("travel", ["book a flight", "cancel my hotel booking", "flight to paris"]),
    Route("weather", ["what is the weather", "will it rain tomorrow", "is it sunny today"]),
]
QUERIES = {"hi how are you": "greet", "book a flight": "travel", "will it rain tomorrow": "weather"}


def main(path: str, rebuild: bool) -> None:
    encoder = FakeEncoder(dimension=16)
    try:
        with SemanticRouter(ROUTES, encoder=encoder, path=path, rebuild=rebuild) as router:
            answers = {q: router.route(q).name for q in QUERIES}
    except SemRouterError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return
    except BaseException as exc:  # the point: report anything unmapped
        print(json.dumps({"raw": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"}))
        return
    print(json.dumps({"answers": answers, "encoded": encoder.encoded_texts}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "rebuild")
