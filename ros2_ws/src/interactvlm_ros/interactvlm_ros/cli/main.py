"""Entry point of the ``interactvlm`` console script.

Each sub-command module provides ``add_parser(subparsers, common)`` and ``run(args) -> int``. Every command
reads the same parameter file as the node (``--config``) with ``--set key=value`` overrides.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from interactvlm_ros import __version__
from interactvlm_ros.config import ConfigError, load_config

# Errors about the user's files (a corrupt model, a bad object library entry): printed as one line, exit 2.
# Given as (module, class) and matched only once that module is imported, so `--help` does not import torch.
FILE_ERRORS: tuple[tuple[str, str], ...] = (
    ("interactvlm_ros.model.checkpoint", "CheckpointError"),
    ("interactvlm_ros.objects.library", "ObjectLibraryError"),
)

# Sub-commands in the order --help lists them: (name, module).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "interactvlm_ros.cli.demo"),
    ("doctor", "interactvlm_ros.cli.doctor"),
    ("infer", "interactvlm_ros.cli.infer"),
    ("model", "interactvlm_ros.cli.model"),
    ("node", "interactvlm_ros.cli.node"),
    ("bench", "interactvlm_ros.cli.bench"),
    ("bag", "interactvlm_ros.cli.bag"),
    ("synth", "interactvlm_ros.cli.synth"),
    ("train", "interactvlm_ros.cli.train"),
    ("eval", "interactvlm_ros.cli.eval"),
    ("engines", "interactvlm_ros.cli.engines"),
    ("serve", "interactvlm_ros.cli.serve"),
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=None,
                        help="ROS 2 parameter file (default: config/interactvlm.yaml, $INTERACTVLM_CONFIG)")
    common.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override one parameter, e.g. --set body.model=smplx (repeatable)")
    parser = argparse.ArgumentParser(
        prog="interactvlm",
        description="InteractVLM human-object contact for robots: where a person touches an object, on the body "
                    "and on the object, in 3D.")
    parser.add_argument("--version", action="version", version=f"interactvlm_ros {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module in COMMANDS:
        importlib.import_module(module).add_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        args.cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"interactvlm: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interactvlm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_file_error(exc):
            raise
        print(f"interactvlm {args.command}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def is_file_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of :data:`FILE_ERRORS` (reported in one line instead of a traceback)."""
    for module, name in FILE_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
