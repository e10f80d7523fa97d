"""``semrouter review`` and ``semrouter feedback``: look at logged decisions, teach the router.

    semrouter review router.yaml [-o review.csv] [--limit 50]
    semrouter feedback router.yaml labels.csv

``review`` reads the decision log beside the file's route set (every process's or replica's;
see ``SemanticRouter.log_decisions``) and writes the decisions most worth a look, and the
requests of proposed new routes, as a CSV with the columns ``reason``, ``text``, ``route``,
``runner_up``, ``score``, ``threshold`` and an empty ``label``. A person fills ``label`` with a
route name, or ``-`` for "belongs to no route" (an empty label skips the row), and
``feedback`` applies the labelled rows to the stored route set in one revision (as
``SemanticRouter.feedback_many``). ``feedback`` writes, so on an embedded folder it needs the
folder's writer: run it where no app holds the folder, or call ``router.feedback_many`` in the
app.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from ._exceptions import ConfigurationError
from ._review import write_review_csv
from ._router import SemanticRouter
from ._safe_files import read_text_file

__all__ = ["add_commands"]

NO_ROUTE = "-"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .cli import CONFIG_HELP

    rev = commands.add_parser(
        "review",
        help="the logged decisions most worth a look, as a CSV to label",
        description="Read the decision log beside the file's route set and write the near "
        "misses, close calls and proposed routes as a CSV with an empty label column.",
    )
    rev.add_argument("config", type=Path, help=CONFIG_HELP)
    rev.add_argument("-o", "--output", type=Path, help="the CSV to write (default: stdout)")
    rev.add_argument("--limit", type=int, default=50, help="decisions listed (default 50)")
    rev.add_argument("--trusted", action="store_true", help="trust the router file")
    rev.set_defaults(handler=_review)
    fb = commands.add_parser(
        "feedback",
        help="apply a labelled review CSV to the stored route set (one revision)",
        description="Each row with a label teaches the router: a route name makes the text an "
        f"example of that route, '{NO_ROUTE}' a request that belongs to no route.",
    )
    fb.add_argument("config", type=Path, help=CONFIG_HELP)
    fb.add_argument("labels", type=Path, help="a CSV with the columns text and label")
    fb.add_argument("--trusted", action="store_true", help="trust the router file")
    fb.set_defaults(handler=_feedback)


def _stored(config: Path, trusted: bool) -> SemanticRouter:
    """The file's stored route set (its routes are not synced: only the collection counts)."""
    from ._config import load_router_kwargs

    kwargs = load_router_kwargs(config, {"trusted": trusted})
    kwargs.pop("routes", None)
    return SemanticRouter.open(**kwargs)


def _review(args: argparse.Namespace) -> int:
    with _stored(args.config, args.trusted) as router:
        result = router.review(limit=args.limit)
    if args.output is None:
        write_review_csv(result, sys.stdout)
        return 0
    try:
        with args.output.open("w", newline="", encoding="utf-8") as stream:
            rows = write_review_csv(result, stream)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"{rows} rows written to {args.output}", file=sys.stderr)
    return 0


def _feedback(args: argparse.Namespace) -> int:
    text = read_text_file(args.labels)
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
        raise ConfigurationError(f"{args.labels}: needs the columns text and label")
    requests, routes = [], []
    for row in reader:
        label = (row.get("label") or "").strip()
        if label and (row.get("text") or "").strip():
            requests.append(row["text"])
            routes.append(None if label == NO_ROUTE else label)
    if not requests:
        print(f"{args.labels}: no labelled rows; nothing changed", file=sys.stderr)
        return 0
    with _stored(args.config, args.trusted) as router:
        router.feedback_many(requests, routes)
        print(f"{len(requests)} labelled requests applied (revision {router.revision})")
    return 0
