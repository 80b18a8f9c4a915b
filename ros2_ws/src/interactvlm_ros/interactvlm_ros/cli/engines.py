"""``interactvlm engines build|list|clean``: the engine cache ahead of time (the node builds what is missing at
start-up anyway).

* ``build`` — load the configured model and build every per-frame stage for ``inference.backend`` (or
  ``--backend``), exporting ONNX first; ``--force`` rebuilds valid artifacts too (like ``engines.force_rebuild``).
* ``list`` — every artifact in the cache with its key fields, size and whether its digests still match.
* ``clean`` — remove artifacts: all of them, or with ``--stale`` only the damaged ones and those whose runtime
  (exporter / ONNX Runtime / TensorRT version) or GPU differs from this machine's.
"""

from __future__ import annotations

import json
import sys


def add_parser(sub, common) -> None:
    p = sub.add_parser("engines", parents=[common], help="build, list or clean the ONNX / ONNX Runtime / TensorRT "
                       "engine cache")
    esub = p.add_subparsers(dest="engines_command", metavar="ACTION", required=True)
    b = esub.add_parser("build", parents=[common], help="export and build the engines of the configured model")
    b.add_argument("--backend", choices=("onnxruntime", "tensorrt"), help="default: inference.backend "
                   "(onnxruntime when that is torch)")
    b.add_argument("--stages", nargs="+", choices=("vision", "llm", "mvloc", "sam_encoder"),
                   help="only these stages (default: all)")
    b.add_argument("--force", action="store_true", help="rebuild even valid cached artifacts")
    b.add_argument("--tensorrt-precision", choices=("fp16", "bf16", "fp32"), default=None,
                   help="TensorRT precision for fp32 graphs (default: the model's dtype)")
    b.set_defaults(run=run_build)
    ls = esub.add_parser("list", parents=[common], help="list cached artifacts")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    ls.set_defaults(run=run_list)
    c = esub.add_parser("clean", parents=[common], help="remove cached artifacts")
    c.add_argument("--stale", action="store_true", help="only damaged ones and those built for another runtime "
                   "version or GPU")
    c.set_defaults(run=run_clean)


def _cache(cfg):
    from interactvlm_ros.config.paths import engines_dir
    from interactvlm_ros.engines.cache import EngineCache

    return EngineCache(engines_dir(cfg.engines.cache_dir))


def run_build(args) -> int:
    import time

    from interactvlm_ros.config.paths import engines_dir
    from interactvlm_ros.engines.build import EngineBuilder
    from interactvlm_ros.engines.stages import STAGES
    from interactvlm_ros.model.checkpoint import load_model

    cfg = args.cfg
    backend = args.backend or (cfg.inference.backend if cfg.inference.backend != "torch" else "onnxruntime")
    t0 = time.monotonic()
    try:
        loaded = load_model(cfg.model.name, cfg.model.clip_dir, cfg.model.device, cfg.model.precision)
        builder = EngineBuilder(loaded.model, engines_dir(cfg.engines.cache_dir), backend,
                                force_rebuild=args.force or bool(cfg.engines.force_rebuild), progress=True,
                                tensorrt_precision=args.tensorrt_precision)
        stages = builder.build(tuple(args.stages or STAGES))
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"interactvlm engines build: {exc}", file=sys.stderr)
        return 1
    print(f"{backend} engines for {cfg.model.name} ready in {builder.cache.root} "
          f"({', '.join(stages.runners)}; {time.monotonic() - t0:.1f} s)")
    return 0


def run_list(args) -> int:
    cache = _cache(args.cfg)
    entries = cache.entries()
    rows = [{"name": e.path.name, "stage": e.key.stage if e.key else "?", "backend": e.key.backend if e.key else "?",
             "precision": e.key.precision if e.key else "?", "arch": e.key.arch if e.key else "?",
             "runtime": e.key.runtime if e.key else "?", "size_mb": round(e.size_bytes / 1e6, 3),
             "ok": not e.problem, "problem": e.problem} for e in entries]
    if args.json:
        print(json.dumps({"cache_dir": str(cache.root), "artifacts": rows}, indent=2))
        return 0
    print(f"engine cache {cache.root}: {len(rows)} artifact(s)")
    for r in rows:
        state = "ok" if r["ok"] else f"UNUSABLE: {r['problem']}"
        print(f"  {r['stage']:<12} {r['backend']:<12} {r['precision']:<5} {r['arch']:<6} {r['runtime']:<24} "
              f"{r['size_mb']:>10.2f} MB  {state}")
    return 0


def current_runtimes() -> set[str]:
    """Runtime tags this machine would build now (artifacts with another tag are stale)."""
    from interactvlm_ros.engines.export import exporter_tag

    tags = {exporter_tag()}
    try:
        import onnxruntime as ort

        tags.add(f"ort{ort.__version__}")
    except ImportError:
        pass
    try:
        from interactvlm_ros.engines.tensorrt_backend import runtime_tag

        tags.add(runtime_tag())
    except RuntimeError:
        pass
    return tags


def current_archs() -> set[str]:
    import torch

    archs = {"any", "cpu"}
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        major, minor = torch.cuda.get_device_capability(i)
        archs.add(f"sm{major}{minor}")
    return archs


def run_clean(args) -> int:
    cache = _cache(args.cfg)
    runtimes, archs = current_runtimes(), current_archs()
    removed = 0
    for e in cache.entries():
        stale = bool(e.problem) or e.key is None or e.key.runtime not in runtimes or e.key.arch not in archs
        if args.stale and not stale:
            continue
        cache.remove(e.path)
        removed += 1
    timing = 0
    for f in cache.root.glob("tensorrt-timing-cache-*.bin") if cache.root.is_dir() else []:
        arch, _, runtime = f.stem[len("tensorrt-timing-cache-"):].partition("-")
        if not args.stale or runtime not in runtimes or arch not in archs:
            f.unlink()
            timing += 1
    print(f"removed {removed} artifact(s) and {timing} TensorRT timing cache(s) from {cache.root}")
    return 0
