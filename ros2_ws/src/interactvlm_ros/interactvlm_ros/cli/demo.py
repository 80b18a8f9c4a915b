"""``interactvlm demo``: the main job on the configured defaults, end to end, offline.

Labelled real photos (the astronaut, the cameraman, a coffee cup, a cat; each scored against its labels) and
synthetic scenes held out from training are published over DDS into the node running in its own process, and its
outputs received as a robot would; writes ``demo.mcap``, one PNG per frame, coloured PLY meshes and
``summary.json`` (logic: :mod:`interactvlm_ros.demo`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from interactvlm_ros.cli import doctor


def add_parser(sub, common) -> None:
    p = sub.add_parser("demo", parents=[common], help="run the node end to end on bundled frames over DDS; bag, "
                       "figures, meshes and a summary")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--frames", type=int, default=0, metavar="N",
                   help="only the first N frames (the labelled real photos first, then the synthetic scenes; 0 = all)")
    p.add_argument("--no-recon", action="store_true", help="skip the reconstruction panel (MediaPipe + body fit)")
    p.add_argument("--no-doctor", action="store_true", help="skip the environment check printed first")
    p.add_argument("--domain-id", type=int, default=-1, metavar="ID",
                   help="DDS domain of the demo (default: a private one derived from the process id)")
    p.add_argument("--frame-timeout", type=float, default=120.0, metavar="S",
                   help="seconds to wait for a frame's outputs (default 120)")
    p.set_defaults(run=run)


def run(args) -> int:
    from interactvlm_ros.demo.bundle import BundleError
    from interactvlm_ros.demo.run import DemoError, DemoOptions, run_demo

    if not args.no_doctor:
        print("== environment ==")
        status = doctor.run(_DoctorArgs(args.cfg))
        if status != 0:
            print("interactvlm demo: the environment is not ready (see above)", file=sys.stderr)
            return status
        print()
    if args.frames < 0:
        print("interactvlm demo: --frames must be >= 0", file=sys.stderr)
        return 2
    if not 0 <= args.domain_id <= 232 and args.domain_id != -1:
        print(f"interactvlm demo: --domain-id must be in [0, 232], got {args.domain_id}", file=sys.stderr)
        return 2
    options = DemoOptions(out=Path(args.out), frames=args.frames, reconstruct=not args.no_recon,
                          domain_id=args.domain_id, frame_timeout=args.frame_timeout)
    try:
        run_demo(args.cfg, options)
    except (DemoError, BundleError, ValueError) as exc:
        print(f"interactvlm demo: {exc}", file=sys.stderr)
        return 1
    return 0


class _DoctorArgs:
    def __init__(self, cfg):
        self.cfg = cfg
        self.json = False
