"""``interactvlm model check``: build an architecture on the ``meta`` device (no weights, no memory) and compare
its tensors, through the loader's key check, with a manifest (``key<TAB>shape`` lines) or with the weight files
of a checkpoint directory (names and shapes only)."""

from __future__ import annotations

import json
import sys


def add_parser(sub, common) -> None:
    p = sub.add_parser("model", parents=[common], help="model utilities (check an architecture against a "
                       "checkpoint manifest)")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    c = msub.add_parser("check", parents=[common], help="compare an architecture's tensor names/shapes with a "
                        "manifest (--preset + --manifest) or with a checkpoint directory's weight files "
                        "(--checkpoint); exit 1 unless everything matches")
    c.add_argument("--preset", choices=("official-13b", "official-7b", "tiny", "tiny-synth"),
                   help="architecture to build")
    c.add_argument("--manifest", metavar="FILE", help="key<TAB>shape file (e.g. official_13b_keys.tsv)")
    c.add_argument("--checkpoint", metavar="DIR", help="a model directory: its config.json gives the architecture, "
                   "its weight files the tensors (shapes only are read)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(run=run_check)


def run_check(args) -> int:
    from interactvlm_ros.model.checkpoint import (
        CheckpointError,
        checkpoint_report,
        compare_keys,
        meta_model,
        model_shapes,
        read_manifest,
    )

    if bool(args.checkpoint) == bool(args.manifest) or (args.manifest and not args.preset):
        print("interactvlm model check: give --preset with --manifest, or --checkpoint DIR", file=sys.stderr)
        return 2
    try:
        if args.checkpoint:
            source = str(args.checkpoint)
            report = checkpoint_report(args.checkpoint)
        else:
            source = str(args.manifest)
            report = compare_keys(model_shapes(meta_model(args.preset)), read_manifest(args.manifest))
    except (OSError, ValueError, CheckpointError) as exc:
        print(f"interactvlm model check: {exc}", file=sys.stderr)
        return 2
    counts = report.counts()
    if args.json:
        print(json.dumps({**counts, "preset": args.preset, "source": source, "ignored": ["*.rotary_emb.inv_freq"],
                          "missing_keys": report.missing[:50], "unexpected_keys": report.unexpected[:50],
                          "shape_mismatch_keys": [k for k, _, _ in report.shape_mismatch][:50]}, indent=2))
    else:
        print(f"{args.preset or 'checkpoint'} vs {source}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if not report.ok:
            print(report.message(source))
    return 0 if report.ok else 1
