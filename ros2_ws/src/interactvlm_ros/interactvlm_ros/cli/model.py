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
    q = msub.add_parser("parity", parents=[common], help="run the project on the committed golden outputs of the "
                        "authors' InteractVLM code (tiny seeded models in the release layout: human, semantic "
                        "batched, object, joint and 2D, teacher-forced and generated) and report per mode and stage "
                        "the max abs / relative difference; exit 1 unless every stage is within the tolerance")
    q.add_argument("--fixtures", metavar="DIR", help="golden fixtures (default: the checkout's "
                   "tests/model/fixtures/reference_parity)")
    q.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    q.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    q.add_argument("--against", default="reference", choices=("reference", "fp32"),
                   help="reference: the authors' outputs (default); fp32: the project's own fp32 run (bf16 check)")
    q.add_argument("--tolerance", type=float, default=None,
                   help="max relative difference per stage (default 1e-4 for fp32, the bf16 tolerance otherwise)")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(run=run_parity)


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


def run_parity(args) -> int:
    from interactvlm_ros.model.reference_parity import check

    tolerance = args.tolerance if args.tolerance is not None else (
        check.FP32_TOLERANCE if args.precision == "fp32" else check.BF16_TOLERANCE)
    try:
        report = check.run_parity(args.fixtures, device=args.device, precision=args.precision, tolerance=tolerance,
                        against=args.against)
    except check.ParityError as exc:
        print(f"interactvlm model parity: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"parity vs {report['against']} ({report['device']}, {report['precision']}, tolerance "
              f"{report['tolerance']:g} relative): {'OK' if report['ok'] else 'FAILED'}, {report['compared']} "
              f"stages compared")
        for run, stages in report["modes"].items():
            cells = []
            for name, c in stages.items():
                value = "equal" if c["kind"] == "exact" and c["ok"] else format(c["max_rel"], ".1e")
                cells.append(f"{name} {value}" + ("" if c["ok"] else " FAIL"))
            print(f"  {run:<18} " + ", ".join(cells))
    return 0 if report["ok"] else 1
