"""``interactvlm demo``: the main job on the embedded defaults, end to end, offline."""

from __future__ import annotations

from interactvlm_ros.cli import doctor


def add_parser(sub, common) -> None:
    p = sub.add_parser("demo", parents=[common], help="run the pipeline end to end on bundled inputs")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.set_defaults(run=run)


def run(args) -> int:
    print("== environment ==")
    status = doctor.run(_DoctorArgs(args.cfg))
    if status != 0:
        return status
    print("\nThe contact model, the node and reconstruction are not built yet; only the environment and the "
          "configuration above were checked.")
    return 0


class _DoctorArgs:
    def __init__(self, cfg):
        self.cfg = cfg
        self.json = False
