"""``interactvlm bench NAME --json``: measurements whose JSON keys are a contract other tools read.

Each benchmark lives with its concern as a function ``run(cfg, args) -> dict`` and reports ratios against a
baseline measured in the same process; this module only dispatches and prints.
"""

from __future__ import annotations

import importlib
import json

# name -> "module:function"
BENCHES: dict[str, str] = {
    "geometry": "interactvlm_ros.render.bench:run",
    "wire": "interactvlm_ros.transport.wire_bench:run",
    "model": "interactvlm_ros.model.bench:run",
    "node": "interactvlm_ros.node.bench:run",
    "recon": "interactvlm_ros.recon.bench:run",
    "engines": "interactvlm_ros.engines.bench:run",
    "soak": "interactvlm_ros.benchmarks.soak:run",
}


def add_parser(sub, common) -> None:
    p = sub.add_parser("bench", parents=[common], help="measure a part of the pipeline (JSON with --json)")
    p.add_argument("name", choices=sorted(BENCHES) or ["(none)"], help="what to measure")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.set_defaults(run=run)


def run(args) -> int:
    module, func = BENCHES[args.name].split(":")
    result = getattr(importlib.import_module(module), func)(args.cfg, args)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    return 0
