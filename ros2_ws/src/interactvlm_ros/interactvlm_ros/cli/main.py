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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
