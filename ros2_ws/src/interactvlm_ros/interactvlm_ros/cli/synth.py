"""``interactvlm synth``: generate a synthetic human–object interaction dataset (images, contact labels on the
body and the object, canonical-view masks, manifest with train/val/test splits). Deterministic by ``--seed``.
``--scenes pairs`` writes two-object scenes for evaluating semantic (per-object) contact; ``--hold-out`` and
``--unseen-shapes`` add the generalisation splits ``heldout_pairs`` and ``unseen_shapes``."""

from __future__ import annotations

import sys
import time
from functools import partial

from interactvlm_ros.config import Config


def add_parser(sub, common) -> None:
    p = sub.add_parser("synth", parents=[common], help="generate a synthetic interaction dataset (Anny + object "
                       "library) for training and evaluation")
    p.add_argument("--out", required=True, metavar="DIR", help="output dataset folder (created)")
    p.add_argument("--num", type=int, default=1000, metavar="N", help="number of samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--image-size", type=int, default=128, help="RGB image side in pixels (default 128)")
    p.add_argument("--mask-size", type=int, default=256,
                   help="canonical-view mask side; match the model's render_resolution (default 256 = tiny)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on shared CPUs)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="generator processes (default 1); the dataset is byte-identical for any N")
    p.add_argument("--scenes", choices=("single", "pairs"), default="single",
                   help="single: one object per image (default); pairs: two objects touched by different body "
                        "parts (sitting on a chair while holding a mug), for semantic-contact evaluation")
    p.add_argument("--hold-out", default="", metavar="OBJ/INTERACTION,...",
                   help="object/interaction pairs kept out of train/val/test, in the split heldout_pairs "
                        "(e.g. box/stand,ball/kick_left)")
    p.add_argument("--unseen-shapes", type=int, default=0, metavar="N",
                   help="N more samples with new procedural object shapes, in the split unseen_shapes")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def build_generator(cfg: Config, synth, renders_dir):
    """The generator of ``cfg``'s body model and object library (module level: worker processes call it)."""
    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.data import SyntheticGenerator
    from interactvlm_ros.objects import ObjectLibrary

    return SyntheticGenerator(load_body_model(cfg), ObjectLibrary.from_config(cfg), synth, cache_dir=renders_dir)


def run(args) -> int:
    import torch

    from interactvlm_ros.config.paths import cache_dir
    from interactvlm_ros.data import SynthConfig

    cfg: Config = args.cfg
    if args.num < 1:
        print("interactvlm synth: --num must be at least 1", file=sys.stderr)
        return 2
    if cfg.body.model != "anny":
        print(f"interactvlm synth: the generator poses Anny bodies; set body.model=anny (got {cfg.body.model})",
              file=sys.stderr)
        return 2
    if args.workers < 1:
        print("interactvlm synth: --workers must be at least 1", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    t0 = time.time()
    if args.unseen_shapes < 0:
        print("interactvlm synth: --unseen-shapes must be at least 0", file=sys.stderr)
        return 2
    hold_out = tuple(k.strip() for k in args.hold_out.split(",") if k.strip())
    synth = SynthConfig(num=args.num, seed=args.seed, image_size=args.image_size, mask_size=args.mask_size,
                        scenes=args.scenes, hold_out=hold_out, unseen_shapes=args.unseen_shapes)
    build = partial(build_generator, cfg, synth, cache_dir(cfg.cache.dir) / "renders")
    try:
        generator = build()
    except ValueError as exc:
        print(f"interactvlm synth: {exc}", file=sys.stderr)
        return 2
    path = generator.write(args.out, progress=not args.no_progress, workers=args.workers, build=build)
    print(f"interactvlm synth: {args.num + args.unseen_shapes} samples in {time.time() - t0:.0f} s -> {path}")
    return 0
