"""``semrouter fit`` and ``semrouter eval``: labelled data in, a fitted router or a report out.

    semrouter fit router.yaml labelled.csv [--out fitted.yaml] [--no-head] [--plot curve.png]
    semrouter eval router.yaml labelled.jsonl [--json report.json] [--plot curve.png]

Labelled files are CSV with ``text`` and ``label`` columns, or JSON Lines with ``text`` and
``label`` keys; an empty label (or ``null``) means "should match no route".
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError
from ._router import SemanticRouter

__all__ = ["add_commands", "read_labelled"]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``fit`` and ``eval`` on the ``semrouter`` parser."""
    fit = commands.add_parser("fit", help="fit the route head and thresholds on labelled data")
    fit.add_argument("config", type=Path)
    fit.add_argument("data", type=Path, help="labelled CSV or JSONL")
    fit.add_argument("--out", type=Path, help="where to save the fitted router (default: config)")
    fit.add_argument("--validation", type=Path, help="labelled held-out data (default: a split)")
    fit.add_argument("--holdout", type=float, default=0.2)
    fit.add_argument("--no-head", action="store_true", help="fit thresholds only")
    fit.add_argument("--per-route", action="store_true", help="one threshold per route")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--json", type=Path, help="write the held-out report as JSON")
    fit.add_argument("--plot", type=Path, help="write accuracy vs threshold as PNG")
    fit.set_defaults(handler=_fit)
    ev = commands.add_parser("eval", help="evaluate a router on labelled data")
    ev.add_argument("config", type=Path)
    ev.add_argument("data", type=Path, help="labelled CSV or JSONL")
    ev.add_argument("--json", type=Path, help="write the report as JSON")
    ev.add_argument("--plot", type=Path, help="write accuracy vs threshold as PNG")
    ev.set_defaults(handler=_eval)


def read_labelled(path: Path) -> tuple[list[str], list[str | None]]:
    """Texts and labels from a CSV (``text``, ``label`` columns) or JSONL file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    rows: list[dict[str, Any]]
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        try:
            rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path}: not JSON Lines: {exc}") from exc
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(raw.splitlines()))
    else:
        raise ConfigurationError(f"{path}: use a .csv or .jsonl file")
    texts: list[str] = []
    labels: list[str | None] = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ConfigurationError(f"{path}: row {number} has no 'text'")
        label = row.get("label")
        if label is not None and not isinstance(label, str):
            raise ConfigurationError(f"{path}: row {number}: 'label' must be a string or empty")
        texts.append(row["text"])
        labels.append(label or None)
    return texts, labels


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    print(
        f"\rencoding [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def _report(report: Any, args: argparse.Namespace) -> None:
    print(report.to_table())
    if args.json:
        args.json.write_text(report.to_json(), encoding="utf-8")
    if args.plot:
        report.plot(args.plot)


def _fit(args: argparse.Namespace) -> int:
    texts, labels = read_labelled(args.data)
    validation = read_labelled(args.validation) if args.validation else None
    with SemanticRouter.load(args.config) as router:
        report = router.fit(
            texts,
            labels,
            validation=validation,
            holdout=args.holdout,
            head=not args.no_head,
            per_route_thresholds=args.per_route,
            seed=args.seed,
            progress=_progress,
        )
        router.save(args.out or args.config)
    print(f"fitted on {len(texts)} texts; saved to {args.out or args.config}")
    _report(report, args)
    return 0


def _eval(args: argparse.Namespace) -> int:
    texts, labels = read_labelled(args.data)
    with SemanticRouter.load(args.config) as router:
        report = router.evaluate(texts, labels, progress=_progress)
    _report(report, args)
    return 0
