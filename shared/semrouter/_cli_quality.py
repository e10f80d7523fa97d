"""``semrouter fit`` and ``semrouter eval``: labelled data in, a fitted router or a report out.

    semrouter fit router.yaml labelled.csv [--out fitted.yaml] [--no-head] [--plot curve.png]
    semrouter eval router.yaml labelled.jsonl [--json report.json] [--plot curve.png]
    semrouter eval --baseline old.yaml --candidate new.yaml gold.jsonl [--json gate.json]

Labelled files are CSV with a header row naming the ``text`` and ``label`` columns (other
columns are ignored), or JSON Lines with ``text`` and ``label`` keys; an empty label (or
``null``, or no ``label`` key) means "should match no route".

Every output (``--out`` or the config, ``--json``, ``--plot``) is checked before the router is
loaded, and written only once everything is ready: reports go to temporary files beside their
targets, the router is saved (atomically), then the reports are moved into place. A failure on
the way leaves every existing file as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError
from ._router import SemanticRouter
from ._safe_files import read_text_file

__all__ = ["add_commands", "read_labelled"]

#: The cap on a labelled data file (``fit``, ``eval``): about a million short examples.
MAX_LABELLED_BYTES = 256 * 1024 * 1024

_DATA_HELP = (
    "Labelled texts: a .csv file with a header row naming the columns 'text' and 'label', or a "
    '.jsonl file of {"text": ..., "label": ...} objects; an empty or null label means '
    "the text should match no route."
)
_TRUSTED_HELP = (
    "trust the router file: let it name folders outside its own and send $OPENAI_API_KEY "
    "to the encoder server it names"
)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``fit`` and ``eval`` on the ``semrouter`` parser."""
    from .cli import CONFIG_HELP

    fit = commands.add_parser(
        "fit",
        help="fit the route head and thresholds on labelled data",
        description="Fit the router on labelled texts and save it. " + _DATA_HELP,
    )
    fit.add_argument("config", type=Path, help=CONFIG_HELP)
    fit.add_argument("data", type=Path, help="labelled texts: .csv or .jsonl (text, label)")
    fit.add_argument("--out", type=Path, help="where to save the fitted router (default: config)")
    fit.add_argument("--validation", type=Path, help="labelled held-out data (default: a split)")
    fit.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="share of the data held out to choose thresholds, without --validation (default 0.2)",
    )
    fit.add_argument("--no-head", action="store_true", help="fit thresholds only")
    fit.add_argument("--per-route", action="store_true", help="one threshold per route")
    fit.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default 0)")
    fit.add_argument("--json", type=Path, help="write the held-out report as JSON")
    fit.add_argument("--plot", type=Path, help="write accuracy vs threshold as PNG")
    fit.add_argument("--trusted", action="store_true", help=_TRUSTED_HELP)
    fit.set_defaults(handler=_fit)
    ev = commands.add_parser(
        "eval",
        help="evaluate a router on labelled data, or gate a candidate against a baseline",
        description="Report how the router routes labelled texts; or, with --baseline and "
        "--candidate, route them with both and refuse (exit 1) a candidate significantly "
        "worse (McNemar's test, as fit() decides), listing what got worse. " + _DATA_HELP,
    )
    ev.add_argument("config", type=Path, nargs="?", help=CONFIG_HELP)
    ev.add_argument("data", type=Path, help="labelled texts: .csv or .jsonl (text, label)")
    ev.add_argument("--baseline", type=Path, help="the gate: the router file in service")
    ev.add_argument("--candidate", type=Path, help="the gate: the proposed router file")
    ev.add_argument(
        "--z",
        type=float,
        default=2.0,
        help="the gate: refuse when the candidate is worse with McNemar z beyond this "
        "(default 2, as fit())",
    )
    ev.add_argument("--json", type=Path, help="write the report as JSON")
    ev.add_argument("--plot", type=Path, help="write accuracy vs threshold as PNG")
    ev.add_argument("--trusted", action="store_true", help=_TRUSTED_HELP)
    ev.set_defaults(handler=_eval)


def read_labelled(path: Path) -> tuple[list[str], list[str | None]]:
    """Texts and labels from a CSV (``text``, ``label`` columns) or JSONL file."""
    raw = read_text_file(path, limit=MAX_LABELLED_BYTES)
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


def check_output(path: Path, what: str, suffixes: tuple[str, ...]) -> None:
    """Refuse an output that could not be written, before any work is done."""
    if path.suffix.lower() not in suffixes:
        raise ConfigurationError(f"{what} {path}: use a {' or '.join(suffixes)} file")
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not path.is_file():
        raise ConfigurationError(f"{what} {path} exists and is not a regular file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigurationError(f"{what} {path} is not writable")
    if not folder.is_dir():
        raise ConfigurationError(f"{what} {path}: folder {folder} does not exist")
    try:  # the real test: make (and drop) a file beside the target
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be written: {exc.strerror}") from None


def _check_outputs(args: argparse.Namespace, save_to: Path | None) -> None:
    if save_to is not None:
        check_output(save_to, "--out", (".yaml", ".yml", ".json"))
    if args.json:
        check_output(args.json, "--json", (".json",))
    if args.plot:
        check_output(args.plot, "--plot", (".png",))
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            from ._exceptions import missing_dependency

            raise missing_dependency("matplotlib", "plot") from None


@contextlib.contextmanager
def _staged(target: Path | None) -> Iterator[Path | None]:
    """A temporary file beside ``target``, moved onto it by :func:`_commit` or dropped."""
    if target is None:
        yield None
        return
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    staged = Path(name)
    try:
        yield staged
    finally:
        staged.unlink(missing_ok=True)


def _write_reports(
    report: Any, args: argparse.Namespace, save: Any = None, saved: str | None = None
) -> None:
    """Write the reports to temporary files, then ``save()`` the router, then move them in."""
    try:
        with _staged(args.json) as json_tmp, _staged(args.plot) as plot_tmp:
            if json_tmp is not None:
                json_tmp.write_text(report.to_json(), encoding="utf-8")
            if plot_tmp is not None:
                report.plot(plot_tmp)
            if save is not None:
                save()
                print(saved)
            for staged, target in ((json_tmp, args.json), (plot_tmp, args.plot)):
                if staged is not None:
                    os.replace(staged, target)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the results: {exc}") from exc
    print(report.to_table())


def _fit(args: argparse.Namespace) -> int:
    save_to: Path = args.out or args.config
    _check_outputs(args, save_to)
    texts, labels = read_labelled(args.data)
    validation = read_labelled(args.validation) if args.validation else None
    with SemanticRouter.load(args.config, trusted=args.trusted) as router:
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
        _write_reports(
            report,
            args,
            save=lambda: router.save(save_to),
            saved=f"fitted on {len(texts)} texts; saved to {save_to}",
        )
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.baseline or args.candidate:
        from ._cli_ops import run_gate

        return run_gate(args)
    if args.config is None:
        raise ConfigurationError(
            "eval needs a router file, or --baseline and --candidate router files"
        )
    _check_outputs(args, None)
    texts, labels = read_labelled(args.data)
    with SemanticRouter.load(args.config, trusted=args.trusted) as router:
        report = router.evaluate(texts, labels, progress=_progress)
    _write_reports(report, args)
    return 0
