"""One embedded folder, one writer and several worker processes (as gunicorn --workers 2 would).

The admin process writes the routes (the first to open a folder writes); workers open the same
folder with ``SemanticRouter.open`` (readers: nothing encoded, nothing written) and follow the
writer's changes with ``refresh_interval``. Run: ``python examples/deploy_multiprocess.py``.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time

from semrouter import Route, SemanticRouter


def worker(folder: str, results: mp.Queue) -> None:  # type: ignore[type-arg]
    router = SemanticRouter.open(path=folder, refresh_interval=0.2)  # a reader of the folder
    first = router.route("where is my parcel?").name
    deadline = time.time() + 30
    while "weather" not in router.route_names and time.time() < deadline:
        time.sleep(0.05)
        router.route("will it rain tomorrow?")  # routing refreshes when the interval is due
    results.put(
        {
            "read_only": router.read_only,
            "encoded_at_open": router.last_sync.encoded,
            "before": first,
            "after": router.route("will it rain tomorrow?").name,
        }
    )
    router.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        admin = SemanticRouter(
            [
                Route("shipping", ["track my order", "where is my package", "my delivery is late"]),
                Route("billing", ["why is my bill so high", "I was charged twice"]),
            ],
            path=folder,
        )
        ctx = mp.get_context("spawn")
        results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        workers = [ctx.Process(target=worker, args=(folder, results)) for _ in range(2)]
        for process in workers:
            process.start()
        time.sleep(3)  # the workers start and serve the stored routes
        admin.add(Route("weather", ["will it rain today", "what's the forecast"]))
        outcomes = [results.get(timeout=60) for _ in workers]
        for process in workers:
            process.join()
        admin.close()
    for outcome in outcomes:
        print(outcome)
        assert outcome["read_only"] and outcome["encoded_at_open"] == 0
        assert outcome["before"] == "shipping" and outcome["after"] == "weather"


if __name__ == "__main__":
    main()
