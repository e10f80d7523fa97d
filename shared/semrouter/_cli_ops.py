"""``semrouter eval --baseline/--candidate`` (the gate), ``calibrate`` and ``report``.

    semrouter eval --baseline old.yaml --candidate new.yaml gold.jsonl [--json gate.json]
    semrouter calibrate router.yaml traffic.jsonl [-o new.yaml | --diff] [--per-route]
    semrouter report router.yaml [-o report.html] [--log decisions.jsonl]

Every router file is loaded into a temporary in-memory index (its utterances encoded again):
these commands never write to, lock or change the collection a file names, even when two files
name the same one.

Exit status: 0 on success; 1 when the gate refuses the candidate; 2 on a semrouter error.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError
from ._router import SemanticRouter
from ._stores._location import QdrantLocation

__all__ = ["add_commands", "load_detached", "run_gate"]

_TRUSTED_HELP = "trust the router file: let it send $OPENAI_API_KEY to the encoder server it names"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``calibrate`` and ``report`` (the gate is an option of ``eval``)."""
    from .cli import CONFIG_HELP

    cal = commands.add_parser(
        "calibrate",
        help="choose thresholds from labelled replayed traffic (never worse on it)",
        description="Route labelled traffic, choose thresholds that route it better than the "
        "current ones, and write them as each route's threshold: to the file itself, to -o, "
        "or as a diff (--diff). Nothing is written when no thresholds do better. Traffic: a "
        ".csv with 'text' and 'label' columns or a .jsonl of {\"text\", \"label\"}; an empty "
        "label means the text should match no route.",
    )
    cal.add_argument("config", type=Path, help=CONFIG_HELP)
    cal.add_argument("traffic", type=Path, help="labelled traffic: .csv or .jsonl")
    out = cal.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", type=Path, help="write the new router file here")
    out.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    cal.add_argument(
        "--per-route", action="store_true", help="allow one threshold per route (default one)"
    )
    cal.add_argument("--trusted", action="store_true", help=_TRUSTED_HELP)
    cal.set_defaults(handler=_calibrate)
    rep = commands.add_parser(
        "report",
        help="write one HTML page about a route set (and its traffic)",
        description="One self-contained HTML page: utterances and threshold per route, "
        "leave-one-out score histograms against each threshold, the routes most confused with "
        "each other, utterances closer to another route than to their own; with --log, "
        "traffic, abstention rate over time and score histograms per route.",
    )
    rep.add_argument("config", type=Path, help=CONFIG_HELP)
    rep.add_argument(
        "-o", "--output", type=Path, default=Path("report.html"), help="default report.html"
    )
    rep.add_argument(
        "--log",
        type=Path,
        help="a decision log, JSON Lines of {time, route (null: abstained), score, threshold, "
        "tenant}",
    )
    rep.add_argument("--trusted", action="store_true", help=_TRUSTED_HELP)
    rep.set_defaults(handler=_report)


def load_detached(config: Path, trusted: bool, **overrides: Any) -> SemanticRouter:
    """The file's router on a temporary in-memory index: nothing it names is opened."""
    return SemanticRouter.load(config, trusted=trusted, location=QdrantLocation(), **overrides)


def run_gate(args: argparse.Namespace) -> int:
    """``semrouter eval --baseline --candidate``: 0 passed, 1 refused."""
    from ._cli_quality import check_output, read_labelled
    from ._config import read_config
    from ._gate import gate

    if not (args.baseline and args.candidate) or args.config is not None or args.plot:
        raise ConfigurationError(
            "the gate takes --baseline FILE --candidate FILE and the gold data, and no router "
            "file or --plot of its own"
        )
    if args.json:
        check_output(args.json, "--json", (".json",))
    texts, labels = read_labelled(args.data)
    same = read_config(args.baseline).encoder == read_config(args.candidate).encoder
    with load_detached(args.baseline, args.trusted) as baseline:
        shared = {"encoder": baseline.encoder} if same else {}
        with load_detached(args.candidate, args.trusted, **shared) as candidate:
            report = gate(baseline, candidate, texts, labels, z=args.z)
    if args.json:
        _write(args.json, report.to_json())
    print(report.to_table())
    return 0 if report.passed else 1


def _calibrate(args: argparse.Namespace) -> int:
    from ._cli_quality import check_output, read_labelled
    from ._config import dump_config, read_config
    from ._traffic import calibrate_from_traffic

    target: Path = args.output or args.config
    if not args.diff:
        check_output(target, "--output", (".yaml", ".yml", ".json"))
    config = read_config(args.config)
    if (
        args.output is not None
        and config.index.path is not None
        and not Path(config.index.path).is_absolute()
        and args.output.absolute().parent != args.config.absolute().parent
    ):
        raise ConfigurationError(
            f"{args.config} names its index folder relative to itself ({config.index.path}): "
            "write the new file beside it, or use --diff"
        )
    texts, labels = read_labelled(args.traffic)
    with load_detached(args.config, args.trusted) as router:
        result = calibrate_from_traffic(router, texts, labels, per_route=args.per_route)
    print(result.summary(), file=sys.stderr if args.diff else sys.stdout)
    if not result.changed:
        return 0
    new = config.model_copy(
        update={
            "routes": [
                {**route, "threshold": result.thresholds[str(route["name"])]}
                for route in config.routes
            ]
        }
    )
    old_text, new_text = dump_config(config, args.config), dump_config(new, target)
    if args.diff:
        name = str(args.config)
        sys.stdout.writelines(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )
        return 0
    _write(target, new_text)
    print(f"wrote {target}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ._cli_quality import check_output
    from ._report import build_report, read_decision_log

    check_output(args.output, "--output", (".html", ".htm"))
    log = read_decision_log(args.log) if args.log else None
    with load_detached(args.config, args.trusted) as router:
        page = build_report(router, title=args.config.name, log=log)
    _write(args.output, page)
    print(f"wrote {args.output}")
    return 0


def _write(path: Path, text: str) -> None:
    from ._safe_files import write_atomic

    try:
        write_atomic(path, text.encode("utf-8"), durable=False)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from exc
