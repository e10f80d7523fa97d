"""The ``semrouter`` command.

    semrouter route router.yaml "What have you been upto?" ["another text" ...] [--limit 3]
    semrouter sync router.yaml          # build or refresh the index; prints what was encoded
    semrouter info router.yaml          # routes, encoder, where the index lives, calibration
    semrouter import router.json -o router.yaml   # from semantic-router 0.x/1.x or RedisVL
    semrouter fit | eval | calibrate | report ...  # labelled data: _cli_quality, _cli_ops
    semrouter review | feedback ...     # the decision log and labelled feedback: _cli_review

``route`` prints one JSON object per text, one per line (JSON Lines), whatever ``--limit``:
the best match's fields (``name``, ``None`` when no route matched, ``score``, ``scores``,
``utterance``, ``threshold``), the ``text`` itself, and ``routes``: up to ``--limit`` matching
routes, best first (``name``, ``score``, ``utterance``, ``threshold``; empty when none matched).

Exit status: 0 on success, 2 on a semrouter error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError, SemRouterError
from ._router import SemanticRouter

__all__ = ["main"]


_TRUSTED = (
    "trust the file: it may name folders outside its own and send $OPENAI_API_KEY to the "
    "encoder server it names"
)
#: Help text of every command's router file argument.
CONFIG_HELP = "a router file (.yaml, .yml or .json), as SemanticRouter.save() writes it"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semrouter", description="Semantic routing on Qdrant.")
    commands = parser.add_subparsers(dest="command", required=True)
    route = commands.add_parser(
        "route",
        help="route texts and print one JSON object per text, one per line",
        description="Route each text and print one JSON object per text, one per line: the "
        "best match (name: null when no route matched, score, scores, utterance, threshold), "
        "the text, and 'routes': up to --limit matching routes, best first.",
    )
    route.add_argument("config", type=Path, help=CONFIG_HELP)
    route.add_argument("texts", nargs="+", help="one or more texts to route (quote each one)")
    route.add_argument(
        "--limit", type=int, default=1, help="matching routes listed per text (default 1)"
    )
    route.add_argument("--trusted", action="store_true", help=_TRUSTED)
    sync = commands.add_parser(
        "sync",
        help="the deploy step: write the file's routes into the collection (the writer)",
        description="Write the routes of a router file into its collection. Running apps "
        "follow with refresh()/refresh_interval. An embedded folder held by a running app is "
        "refused with the holder's pid.",
    )
    sync.add_argument(
        "config", type=Path, help=CONFIG_HELP + "; it must name index.path or index.url"
    )
    sync.add_argument(
        "--policy",
        choices=["merge", "replace", "check"],
        default="merge",
        help="merge (default: add and update, never delete), replace (the collection then "
        "holds exactly the file's routes) or check (fail if they differ)",
    )
    sync.add_argument(
        "--yes",
        action="store_true",
        help="confirm --policy replace with a file of no routes (it deletes every stored route)",
    )
    sync.add_argument("--trusted", action="store_true", help=_TRUSTED)
    info = commands.add_parser("info", help="describe a router file")
    info.add_argument("config", type=Path, help=CONFIG_HELP)
    imp = commands.add_parser(
        "import",
        help="convert a semantic-router (0.x JSON/YAML, 1.x YAML) or RedisVL router file",
        description="Convert another library's router file to a semrouter config; every "
        "conversion and every part not imported is listed.",
    )
    imp.add_argument(
        "source", help="a router file, or a collection with --qdrant-url/--qdrant-path"
    )
    imp.add_argument("-o", "--output", type=Path, help="write here (.yaml/.json); default stdout")
    where = imp.add_mutually_exclusive_group()
    where.add_argument(
        "--qdrant-url",
        help="import a semantic-router collection from this Qdrant server "
        "(API key from $QDRANT_API_KEY)",
    )
    where.add_argument(
        "--qdrant-path", type=Path, help="... or from this local qdrant-client folder"
    )
    imp.add_argument("--namespace", help="the semantic-router namespace to import")
    imp.add_argument(
        "--encoder",
        default="local",
        help="for a collection: the new router's encoder, checked against the stored vectors "
        "(local, multilingual or openai:MODEL; default local)",
    )
    imp.add_argument(
        "--path",
        type=Path,
        help="for a collection: the new router's embedded folder (default: beside --output)",
    )
    imp.add_argument(
        "--format",
        choices=["semantic-router-0", "semantic-router-1", "redisvl"],
        default=None,
        help="the source's format (default: detected from its keys)",
    )
    imp.add_argument(
        "--local",
        action="store_true",
        help="use the local default encoder when the source's has no semrouter counterpart",
    )
    _add_quality_commands(commands)
    return parser


def _add_quality_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Hook for the fit/eval commands (see ``_cli_quality``) and calibrate/report (see
    ``_cli_ops``) when those modules are present."""
    try:
        from ._cli_quality import add_commands
    except ImportError:
        return
    add_commands(commands)
    from ._cli_ops import add_commands as add_ops
    from ._cli_review import add_commands as add_review

    add_ops(commands)
    add_review(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "route":
            with _reader(args.config, args.trusted) as router:
                for line in _route_lines(router, args.texts, args.limit):
                    print(line)
        elif args.command == "sync":
            with _writer(args.config, args.policy, trusted=args.trusted, yes=args.yes) as router:
                report = router.last_sync
                print(
                    f"{len(router)} routes, {router.index_size} utterances: "
                    f"encoded {report.encoded}, "
                    f"deleted {report.deleted}, updated {report.updated}"
                )
        elif args.command == "info":
            _info(args.config)
        elif args.command == "import":
            if args.qdrant_url or args.qdrant_path:
                _import_collection(args)
            else:
                _import(Path(args.source), args.output, args.format, local=args.local)
        else:
            return int(args.handler(args))
    except SemRouterError as exc:
        print(f"semrouter: {exc}", file=sys.stderr)
        return 2
    return 0


def _reader(config: Path, trusted: bool) -> SemanticRouter:
    """The file's router, opened as a reader when its embedded folder exists: routing from the
    shell never blocks, writes to or breaks an app that holds the folder."""
    from ._config import load_router_kwargs

    kwargs = load_router_kwargs(config, {"trusted": trusted})
    location = kwargs.get("location")
    folder = location.path if location is not None else None
    if folder is not None and (Path(folder) / kwargs.get("collection", "semrouter")).exists():
        kwargs["mode"] = "read"
    return SemanticRouter(**kwargs)


def _route_lines(router: SemanticRouter, texts: list[str], limit: int) -> list[str]:
    """One JSON object per text (see the module docstring), the same shape for every limit."""
    best = router.route_many(texts)
    if limit == 1:
        top = [[match] if match.name is not None else [] for match in best]
    else:
        top = router.top_routes_many(texts, limit)
    lines = []
    for text, match, routes in zip(texts, best, top):
        record = {"text": text, **match.model_dump(mode="json")}
        record["routes"] = [m.model_dump(mode="json", exclude={"scores"}) for m in routes]
        lines.append(json.dumps(record, separators=(",", ":")))
    return lines


def _writer(config: Path, policy: str, *, trusted: bool, yes: bool) -> SemanticRouter:
    """The file's router as the writer of its collection, after refusing a sync that would
    write nowhere lasting or delete every stored route unasked."""
    from ._config import load_router_kwargs

    kwargs = load_router_kwargs(config, {"trusted": trusted, "sync": policy, "mode": "write"})
    location = kwargs.get("location")
    if location is not None and location.kind == "memory":
        raise ConfigurationError(
            f"{config} names no index.path or index.url: sync would write to a temporary "
            "collection that disappears when the command ends; add 'index: {path: routes_db}' "
            "(a folder beside the file) or 'index: {url: ...}' to the file"
        )
    if policy == "replace" and not kwargs["routes"] and not yes:
        raise ConfigurationError(
            f"{config} has no routes: --policy replace would delete every stored route; "
            "pass --yes to do that"
        )
    return SemanticRouter(**kwargs)


def _info(path: Path) -> None:
    from ._config import read_config

    config = read_config(path)
    # The learned head's weights are base64 bytes: summarise the calibration instead. The
    # legacy top-level threshold/aggregation/top_k are shown only when a file still sets them.
    legacy = {key for key in ("threshold", "aggregation", "top_k") if getattr(config, key) is None}
    print(config.model_dump_json(indent=2, exclude={"routes", "calibration", *legacy}))
    for line in _calibration_summary(config.calibration):
        print(line)
    for route in config.routes:
        print(f"- {route.get('name')}: {len(route.get('utterances') or [])} utterances")


def _calibration_summary(calibration: dict[str, Any] | None) -> list[str]:
    if not calibration:
        return ["calibration: none (unfitted; run semrouter fit)"]
    lines = [
        f"calibration: fitted for {str(calibration.get('fingerprint'))!r}, "
        f"metric {calibration.get('metric', 'accuracy')}, "
        f"similarity weight {calibration.get('similarity_weight', 1.0)}"
    ]
    head = calibration.get("head")
    if isinstance(head, dict):
        names = head.get("route_names") or []
        extra = " + 'no route'" if head.get("has_none") else ""
        lines.append(
            f"  head: logistic, {len(names)} routes{extra}, {head.get('dimension')}-d input, "
            f"temperature {head.get('temperature')}"
        )
    else:
        lines.append("  head: none (thresholds only)")
    thresholds = calibration.get("thresholds") or {}
    if thresholds:
        values = sorted(float(v) for v in thresholds.values())
        lines.append(
            f"  thresholds: {len(values)} routes, {values[0]:.3f} to {values[-1]:.3f} "
            f"(median {values[len(values) // 2]:.3f})"
        )
    heldout = calibration.get("heldout") or {}
    if heldout:
        shown = ", ".join(f"{k} {float(v):.3f}" for k, v in sorted(heldout.items()))
        lines.append(f"  held-out: {shown}")
    return lines


def _import(source: Path, output: Path | None, fmt: Any, *, local: bool) -> None:
    import yaml

    from ._importers import import_router

    if fmt is None and _is_semrouter_file(source):
        raise ConfigurationError(
            f"{source} is already a semrouter router file (written by SemanticRouter.save()): "
            f"nothing to import; use it as it is (semrouter route {source} ..., "
            "SemanticRouter.load())"
        )
    result = import_router(source, format=fmt, local_fallback=local)
    notes_to = sys.stdout if output else sys.stderr
    print(
        f"{source}: {result.source_format}, {len(result.routes)} routes, "
        f"encoder {result.source_encoder}",
        file=notes_to,
    )
    for note in result.notes:
        print(f"- {note}", file=notes_to)
    if result.encoder is None:
        raise ConfigurationError(
            f"no semrouter encoder for {result.source_encoder}: pass --local to use the local "
            "default (thresholds dropped)"
        )
    if output is None:
        print(yaml.safe_dump(result.to_config(), sort_keys=False, allow_unicode=False), end="")
    else:
        result.save(output)
        print(f"wrote {output}")


def _is_semrouter_file(source: Path) -> bool:
    """Whether ``source`` is semrouter's own format: a ``version`` key (every saved file has
    one) and nothing its config model refuses."""
    from pydantic import ValidationError

    from ._config import RouterConfig
    from ._importers._files import read_mapping

    data = read_mapping(source)
    if "version" not in data:
        return False
    try:
        RouterConfig.model_validate(data)
    except ValidationError:
        return False
    return True


def _import_collection(args: argparse.Namespace) -> None:
    import os

    from qdrant_client import QdrantClient

    from ._exceptions import backend_errors
    from ._importers import import_qdrant_collection
    from .encoders import encoder_from_config

    if args.output is None:
        raise ConfigurationError("importing a collection needs -o/--output")
    kind, _, model = str(args.encoder).partition(":")
    encoder = encoder_from_config({"type": kind, **({"model": model} if model else {})})
    target = args.qdrant_url or str(args.qdrant_path)
    with backend_errors(target):
        client = (
            QdrantClient(url=args.qdrant_url, api_key=os.environ.get("QDRANT_API_KEY"))
            if args.qdrant_url
            else QdrantClient(path=str(args.qdrant_path))
        )
    try:
        result = import_qdrant_collection(
            client, args.source, encoder=encoder, namespace=args.namespace
        )
    finally:
        client.close()
    print(f"{args.source}: {len(result.routes)} routes")
    for note in result.notes:
        print(f"- {note}")
    path = args.path or args.output.parent / f"{args.output.stem}_db"
    with result.to_router(encoder=encoder, path=path) as router:
        router.save(args.output)
        print(f"wrote {args.output} (index in {path}, {len(result.vectors)} vectors reused)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
