"""``interactvlm train``: train or fine-tune a model on a synthetic dataset (``interactvlm synth``).

* ``--init tiny`` (default): the tiny preset from scratch on the CPU (optionally with smaller renders:
  ``--render-resolution 128`` also sets SAM's input size), all modules but the SAM encoders trained.
* ``--init DIR``: continue from a model directory; official InteractVLM checkpoints are fine-tuned with LoRA on
  ``q_proj``/``v_proj`` (r=8, α=16, dropout 0.05) on a GPU (``model.device``), with ``model.clip_dir`` set.

Writes ``OUT/metrics.jsonl`` (one JSON row per logged step), ``OUT/checkpoint.pt`` (exact resume with
``--resume``) and, at the end, the model directory ``OUT/model`` (``model.name: OUT/model`` uses it).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from interactvlm_ros.config import Config


def add_parser(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], help="train the tiny model from scratch (CPU) or fine-tune an "
                       "official checkpoint with LoRA (GPU) on a synthetic dataset")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder written by `interactvlm synth`")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (checkpoint, metrics, model/)")
    p.add_argument("--init", default="tiny", metavar="PRESET|DIR",
                   help="'tiny' (from scratch) or a model directory (ours or an official checkpoint)")
    p.add_argument("--render-resolution", type=int, default=0,
                   help="canonical render / mask side and SAM input size (0 = the model's); a trained model of "
                        "ours is resampled to it (SAM position embeddings)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--answer", choices=("simple", "parts"), default="simple",
                   help="teacher-forced answer: 'Sure, [SEG].' or the body-parts template")
    p.add_argument("--focal-alpha-2d", type=float, default=0.5, help="α of the 2D focal loss (method: 0.5)")
    p.add_argument("--focal-alpha-3d", type=float, default=0.25, help="α of the 3D focal loss (method: 0.25)")
    p.add_argument("--lift-fill-unseen", choices=("keep", "on", "off"), default="keep",
                   help="lift unseen vertices from their nearest seen one (saved in the model; keep: the init's)")
    p.add_argument("--augment", action="store_true",
                   help="random zoom/shift/colour of the input image (small models trained from scratch)")
    p.add_argument("--interaction-weight", type=float, default=0.0,
                   help="weight of an auxiliary interaction-class loss on the vision features (0 = off, method)")
    p.add_argument("--dice-3d-weight", type=float, default=0.0,
                   help="weight of a per-sample soft Dice on the lifted contact, body and object (0 = off, method)")
    p.add_argument("--vision-epochs", type=int, default=0,
                   help="first pre-train the vision tower on the interaction labels for this many epochs "
                        "(needs --interaction-weight > 0; from-scratch models)")
    p.add_argument("--vision-lr", type=float, default=2e-3, help="peak learning rate of the vision pre-training")
    p.add_argument("--lora", choices=("auto", "on", "off"), default="auto",
                   help="LoRA on q_proj/v_proj (auto: on for official checkpoints)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (fixed for reproducibility)")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def build_training(cfg: Config, init: str, render_resolution: int, data: str, answer: str, lora: str,
                   seed: int, weights=None, lift_fill_unseen: str = "keep", augment: bool = False):
    """Model, tokenizer, training forward, dataset and the LoRA decision for a run."""
    import numpy as np
    import torch

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.config.paths import cache_dir
    from interactvlm_ros.data import SyntheticDataset
    from interactvlm_ros.model.checkpoint import load_model
    from interactvlm_ros.model.configuration import PRESET_NAMES, PRESETS_DIR, load_preset
    from interactvlm_ros.model.interactvlm import InteractVLMForCausalLM
    from interactvlm_ros.model.predictor import OBJECT_COND_DIST
    from interactvlm_ros.model.tokenizer import load_tokenizer
    from interactvlm_ros.objects import ObjectLibrary
    from interactvlm_ros.render.canonical import canonical_body_views, object_views
    from interactvlm_ros.training.forward import TrainingForward

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    official = False
    source_dir = None
    if init in PRESET_NAMES:
        mcfg = load_preset(init)
        if mcfg.tokenizer == "sentencepiece":
            raise ValueError(f"preset {init!r} has no weights to start from; pass --init OFFICIAL_DIR")
        if render_resolution:
            mcfg.render_resolution = render_resolution
            mcfg.sam = {**mcfg.sam, "image_size": render_resolution}
        mcfg.seed = seed
        model = InteractVLMForCausalLM.build(mcfg, seed=seed)
        tokenizer = load_tokenizer(mcfg.tokenizer, PRESETS_DIR)
    else:
        loaded = load_model(init, cfg.model.clip_dir, cfg.model.device, cfg.model.precision)
        model, tokenizer, official = loaded.model, loaded.tokenizer, loaded.official
        source_dir = init if official else None
        if render_resolution and render_resolution != model.config.render_resolution:
            if official:
                raise ValueError("--render-resolution: an official checkpoint keeps its SAM input size")
            model = model.with_render_resolution(render_resolution)
    if lift_fill_unseen != "keep":
        model.config.lift_fill_unseen = lift_fill_unseen == "on"
    use_lora = official if lora == "auto" else lora == "on"
    dataset = SyntheticDataset(data, "train")
    if dataset.scenes != "single":
        raise ValueError(f"{data}: a {dataset.scenes!r} dataset is for evaluation (several objects per image); "
                         "train on a single-object one")
    body = load_body_model(cfg)
    if body.topology_hash != dataset.topology_hash:
        raise ValueError(f"{data}: labels are on body topology {dataset.topology_hash}, the configured body "
                         f"model is {body.topology_hash}")
    library = ObjectLibrary.from_config(cfg)
    res = model.config.render_resolution
    renders = cache_dir(cfg.cache.dir) / "renders"
    fill = model.config.lift_fill_unseen
    bv = canonical_body_views(body, res, cache_dir=renders, fill_unseen=fill)
    ov = {}
    for label in dataset.object_labels():
        mesh = library.mesh(label)
        ov[label] = object_views(mesh.vertices, mesh.faces, res, fill_unseen=fill)
    from interactvlm_ros.training.trainer import configure_trainable

    configure_trainable(model, "lora" if use_lora else "full")
    from interactvlm_ros.training.losses import LossWeights

    weights = weights if weights is not None else LossWeights()
    classes = dataset.interaction_classes() if weights.interaction > 0 else ()
    forward = TrainingForward(model, tokenizer, bv, ov, OBJECT_COND_DIST, answer=answer, weights=weights,
                              augment=augment, interaction_classes=classes)
    return model, tokenizer, forward, dataset, use_lora, source_dir


def run(args) -> int:
    import torch

    from interactvlm_ros.training.trainer import TrainConfig, Trainer

    cfg: Config = args.cfg
    torch.set_num_threads(max(1, args.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    t0 = time.time()
    from interactvlm_ros.training.losses import LossWeights

    weights = LossWeights(focal_2d_alpha=args.focal_alpha_2d, focal_3d_alpha=args.focal_alpha_3d,
                          interaction=args.interaction_weight, dice_3d=args.dice_3d_weight)
    try:
        model, tokenizer, forward, dataset, use_lora, source_dir = build_training(
            cfg, args.init, args.render_resolution, args.data, args.answer, args.lora, args.seed, weights,
            args.lift_fill_unseen, args.augment)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"interactvlm train: {exc}", file=sys.stderr)
        return 2
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                       seed=args.seed, mode="lora" if use_lora else "full", answer=args.answer,
                       log_every=args.log_every, checkpoint_every=args.checkpoint_every)
    out = Path(args.out)
    trainer = Trainer(forward, dataset, tcfg, out)
    if args.resume:
        step = trainer.load_checkpoint()
        print(f"interactvlm train: resumed at step {step}", file=sys.stderr)
    elif (out / "checkpoint.pt").exists():
        print(f"interactvlm train: {out} already has a checkpoint; use --resume or another --out", file=sys.stderr)
        return 2
    n_train = sum(p.numel() for p in trainer.params)
    print(f"interactvlm train: {len(dataset)} training samples, {n_train} trainable parameters, "
          f"mode {tcfg.mode}, device {model.device}", file=sys.stderr)
    if args.vision_epochs > 0 and trainer.step == 0:
        from interactvlm_ros.training.vision_pretrain import pretrain_vision

        try:
            res = pretrain_vision(forward, dataset, args.vision_epochs, lr=args.vision_lr, seed=args.seed,
                                  log_path=out / "metrics.jsonl", progress=not args.no_progress)
        except ValueError as exc:
            print(f"interactvlm train: --vision-epochs: {exc}", file=sys.stderr)
            return 2
        trainer.save_checkpoint()  # step 0 after pre-training: --resume never repeats it
        print(f"interactvlm train: vision pre-training done (train accuracy {res['accuracy']:.3f})",
              file=sys.stderr)
    last = trainer.train(progress=not args.no_progress)
    model_dir = trainer.export(out / "model", tokenizer, source_dir=source_dir)
    summary = {"steps": trainer.step, "last": last, "model_dir": str(model_dir),
               "minutes": round((time.time() - t0) / 60.0, 1), "command": sys.argv[1:]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"interactvlm train: done in {summary['minutes']} min -> {model_dir}")
    return 0
