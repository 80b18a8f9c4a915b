"""``interactvlm bench NAME --json``: measurements whose JSON keys are a contract other tools read.

Each benchmark is a module of :mod:`interactvlm_ros.benchmarks` with a function ``run(cfg, args) -> dict`` that
reports ratios against a baseline measured in the same process; this module only dispatches and prints.

``interactvlm bench check [--fast] [--update]`` compares the deterministic contract figures of these benches with
their targets and with the values recorded in the repository (:mod:`interactvlm_ros.benchmarks.contract`); it
exits 1 when a figure misses its target or moved from its recorded value.
"""

from __future__ import annotations

import importlib
import json
import sys

from interactvlm_ros.benchmarks import BENCHES


def add_parser(sub, common) -> None:
    p = sub.add_parser("bench", parents=[common], help="measure a part of the pipeline (JSON with --json)")
    p.add_argument("name", choices=[*sorted(BENCHES), "check"],
                   help="what to measure; 'check': the contract figures against their targets and recorded values")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument("--fast", action="store_true", help="check: only the fast benches (what `make test` runs)")
    p.add_argument("--update", action="store_true",
                   help="check: record the measured figures in the repository's contract file (targets unchanged)")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.name == "check":
        return _check(args)
    module, func = BENCHES[args.name].split(":")
    result = getattr(importlib.import_module(module), func)(args.cfg, args)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    return 0


def _check(args) -> int:
    from interactvlm_ros.benchmarks import contract

    try:
        result = contract.run(args.cfg, args)
    except contract.ContractError as exc:
        print(f"interactvlm bench check: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for row in result["figures"]:
            print(f"{row['status']:>11}  {row['figure']:<44} {row['value']!s:>12}  target {row['target']!s:<34} "
                  f"recorded {row['recorded']}")
        print("bench check: " + ("all figures ok" if result["ok"] else f"FAILED: {', '.join(result['failed'])}"))
    return 0 if result["ok"] else 1
