"""``interactvlm model check``: build an official architecture on the ``meta`` device (no weights, no memory)
and compare its tensors with a checkpoint manifest (``key<TAB>shape`` lines) through the loader's key check."""

from __future__ import annotations

import json
import sys


def add_parser(sub, common) -> None:
    p = sub.add_parser("model", parents=[common], help="model utilities (check an architecture against a "
                       "checkpoint manifest)")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    c = msub.add_parser("check", parents=[common], help="compare a preset's tensor names/shapes with a manifest; "
                        "exit 1 unless everything matches")
    c.add_argument("--preset", required=True, choices=("official-13b", "official-7b", "tiny"))
    c.add_argument("--manifest", required=True, metavar="FILE",
                   help="key<TAB>shape file (e.g. official_13b_keys.tsv)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(run=run_check)


def run_check(args) -> int:
    from interactvlm_ros.model.checkpoint import CheckpointError, compare_keys, meta_model, model_shapes, read_manifest

    try:
        expected = read_manifest(args.manifest)
    except (OSError, CheckpointError) as exc:
        print(f"interactvlm model check: cannot read manifest {args.manifest}: {exc}", file=sys.stderr)
        return 2
    model = meta_model(args.preset)
    report = compare_keys(model_shapes(model), expected)
    counts = report.counts()
    if args.json:
        print(json.dumps({**counts, "preset": args.preset, "manifest": str(args.manifest),
                          "ignored": ["*.rotary_emb.inv_freq"],
                          "missing_keys": report.missing[:50], "unexpected_keys": report.unexpected[:50],
                          "shape_mismatch_keys": [k for k, _, _ in report.shape_mismatch][:50]}, indent=2))
    else:
        print(f"{args.preset} vs {args.manifest}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if not report.ok:
            print(report.message(args.preset))
    return 0 if report.ok else 1
