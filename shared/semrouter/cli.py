"""The ``semrouter`` command.

    semrouter route router.yaml "What have you been upto?" ["another text" ...]
    semrouter sync router.yaml          # build or refresh the index; prints what was encoded
    semrouter info router.yaml          # routes, encoder, where the index lives

Exit status: 0 on success, 2 on a semrouter error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ._exceptions import SemRouterError
from ._router import SemanticRouter

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semrouter", description="Semantic routing on Qdrant.")
    commands = parser.add_subparsers(dest="command", required=True)
    route = commands.add_parser("route", help="route texts and print one JSON match per line")
    route.add_argument("config", type=Path)
    route.add_argument("texts", nargs="+")
    route.add_argument("--limit", type=int, default=1, help="routes per text (default 1)")
    sync = commands.add_parser("sync", help="build or refresh the route index")
    sync.add_argument("config", type=Path)
    info = commands.add_parser("info", help="describe a router file")
    info.add_argument("config", type=Path)
    _add_quality_commands(commands)
    return parser


def _add_quality_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Hook for the fit/eval commands (see ``_cli_quality``) when that module is present."""
    try:
        from ._cli_quality import add_commands
    except ImportError:
        return
    add_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "route":
            with SemanticRouter.load(args.config) as router:
                for text in args.texts:
                    if args.limit == 1:
                        print(router.route(text).model_dump_json())
                    else:
                        matches = router.top_routes(text, limit=args.limit)
                        print(json.dumps([m.model_dump(mode="json") for m in matches]))
        elif args.command == "sync":
            with SemanticRouter.load(args.config) as router:
                report = router.last_sync
                print(
                    f"{len(router)} routes, {router.index_size} utterances: "
                    f"encoded {report.encoded}, "
                    f"deleted {report.deleted}, updated {report.updated}"
                )
        elif args.command == "info":
            from ._config import read_config

            config = read_config(args.config)
            print(config.model_dump_json(indent=2, exclude={"routes"}))
            for route in config.routes:
                print(f"- {route.get('name')}: {len(route.get('utterances') or [])} utterances")
        else:
            return int(args.handler(args))
    except SemRouterError as exc:
        print(f"semrouter: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
