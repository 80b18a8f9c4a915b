"""``interactvlm bench engines``: per-stage latency of the same model on each backend, same inputs, same run.

Rows: torch (CPU) and ONNX Runtime (CPU) always; CUDA torch and TensorRT where a CUDA device (and TensorRT) is
present. Stages: ``vision`` (CLIP + projector), ``llm_prefill`` (the whole first prompt with the image, batch 1),
``llm_decode`` (one cached step for B objects), ``mvloc`` (Γ + MV-Loc for K objects over the 4 renders),
``sam_encoder`` (one render), and ``end_to_end`` (``ContactPredictor.predict`` for the objects: timings of the
whole call). ``max_abs_diff_onnxruntime`` is the largest per-vertex probability difference ONNX Runtime vs
torch over the objects; each stage also reports its own output difference.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time

import numpy as np

BENCH_OBJECTS = ("chair", "cup", "basketball")  # all known to the default model (cup, basketball: synonyms)


def _time(fn, repeats: int, sync=None) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def run(cfg, args) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graphs on a small shared CPU: one intra-op thread for every backend
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Anny's skinning backend prints a banner: keep --json pure
            return _run(cfg, 3 if getattr(args, "quick", False) else 15)
    finally:
        torch.set_num_threads(threads)


def _stage_inputs(predictor, image):
    """Realistic inputs of every stage, built by the predictor's own torch path."""
    import torch

    from interactvlm_ros.model.predictor import _common_prefix_len

    m = predictor.model
    pixels = predictor.clip_processor(image)
    with torch.no_grad():
        img = m.encode_image(pixels)
        ids = [predictor._prompt_ids("human", o) for o in BENCH_OBJECTS]
        n = _common_prefix_len(ids)
        prompt = m.embed_prompt(ids[0], img)[None]  # [1,T,D]
        views = predictor.body_views()
        emb = predictor.render_embeddings(views)
        hidden = m.decoder(prompt, torch.ones(1, prompt.shape[1], dtype=torch.long),
                           torch.arange(prompt.shape[1])[None], None)[0, -len(BENCH_OBJECTS):]
        x, _ = m.sam.preprocess(views.images[:1])
    return {"pixels": pixels, "prompt": prompt, "prefix_len": n, "states": hidden.contiguous(), "renders": emb,
            "cams": views.cam_params, "sam_input": x, "mask_size": views.images.shape[1]}


def _stage_calls(stages, inp, device) -> dict:
    """Callables per stage on ``stages`` (an InferenceStages), inputs moved to ``device``; each returns a tensor."""
    import torch

    lm = stages.language_model
    b = len(BENCH_OBJECTS)
    prompt = inp["prompt"].to(device)
    t = prompt.shape[1]
    mask = torch.ones(1, t, dtype=torch.long, device=device)
    pos = torch.arange(t, device=device)[None]
    step = prompt[:, -1:].repeat(b, 1, 1)
    dmask = torch.ones(b, t + 1, dtype=torch.long, device=device)
    dpos = torch.full((b, 1), t, dtype=torch.long, device=device)

    def decode():
        cache = lm.new_cache()
        lm.decoder(prompt, mask, pos, cache)
        cache.batch_repeat_interleave(b)
        return lambda: lm.decoder(step, dmask, dpos, cache)

    with torch.no_grad():
        calls = {
            "vision": lambda: stages.encode_image(inp["pixels"].to(device)),
            "llm_prefill": lambda: lm.decoder(prompt, mask, pos, None),
            "mvloc": lambda: stages.mvloc(inp["states"].to(device), inp["renders"].to(device),
                                          inp["cams"].to(device), inp["mask_size"]),
        }
        calls["llm_decode"] = decode
        runner = stages.runners.get("sam_encoder")
        sam = stages.model.sam
        x = inp["sam_input"].to(device)
        calls["sam_encoder"] = (lambda: runner(x)[0]) if runner is not None else (lambda: sam.image_encoder(x))
    return calls


def _measure(calls: dict, repeats: int, sync=None) -> tuple[dict, dict]:
    import torch

    ms, outs = {}, {}
    with torch.no_grad():
        for name, fn in calls.items():
            if name == "llm_decode":  # the cache is prepared outside the timed call
                times = []
                for _ in range(repeats + 1):
                    step = fn()
                    if sync:
                        sync()
                    t0 = time.perf_counter()
                    out = step()
                    if sync:
                        sync()
                    times.append((time.perf_counter() - t0) * 1000.0)
                ms[name] = statistics.median(times[1:])
                outs[name] = out
            else:
                ms[name] = _time(fn, repeats, sync)
                outs[name] = fn()
    return ms, outs


def _diff(a, b) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max())


def _run(cfg, repeats: int) -> dict:

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.engines.build import load_stages
    from interactvlm_ros.model.checkpoint import load_model
    from interactvlm_ros.model.predictor import ContactPredictor

    loaded = load_model(cfg.model.name, cfg.model.clip_dir, "cpu", "fp32")
    body = load_body_model(cfg)
    predictor = ContactPredictor(loaded.model, loaded.tokenizer, body_model=body, cache_dir=cfg.cache.dir or None)
    predictor.set_answer(cfg.model.answer, cfg.model.max_new_tokens)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    objects = list(BENCH_OBJECTS)
    inp = _stage_inputs(predictor, image)
    tmp = tempfile.TemporaryDirectory(prefix="interactvlm-bench-engines-")
    cache_dir = cfg.engines.cache_dir or tmp.name  # a fresh cache unless one is configured
    t0 = time.perf_counter()
    ort_stages = load_stages(loaded.model, "onnxruntime", cache_dir, threads=1)
    build_s = time.perf_counter() - t0
    torch_stages = predictor.stages
    torch_ms, torch_out = _measure(_stage_calls(torch_stages, inp, "cpu"), repeats)
    ort_ms, ort_out = _measure(_stage_calls(ort_stages, inp, "cpu"), repeats)

    # end to end: the same predictor on each backend
    def e2e():
        return predictor.predict(image, objects)

    predictor.stages = torch_stages
    torch_ms["end_to_end"] = _time(e2e, repeats)
    ref = e2e()
    predictor.use_backend("onnxruntime", cache_dir, threads=1)
    ort_ms["end_to_end"] = _time(e2e, repeats)
    res = e2e()
    prob_diff = max(float(np.abs(a.human_probs - b.human_probs).max())
                    for a, b in zip(ref.contacts, res.contacts, strict=True))
    stages = {}
    for name in torch_ms:
        row = {"torch_ms": round(torch_ms[name], 3), "onnxruntime_ms": round(ort_ms[name], 3),
               "onnxruntime_speedup": round(torch_ms[name] / ort_ms[name], 3)}
        if name in torch_out:
            row["max_abs_diff_onnxruntime"] = _diff(torch_out[name], ort_out[name])
        stages[name] = row
    gpu = _gpu_rows(loaded, body, image, inp, repeats, cache_dir, stages, cfg.cache.dir or None)
    tmp.cleanup()
    import onnxruntime as ort

    return {
        "model": cfg.model.name,
        "objects": objects,
        "repeats": repeats,
        "threads": 1,
        "onnxruntime": ort.__version__,
        "onnxruntime_build_s": round(build_s, 3),
        "stages": stages,
        "max_abs_diff_onnxruntime": prob_diff,
        "max_abs_diff_note": "per-vertex contact probabilities, ONNX Runtime vs torch, all objects (fp32)",
        "cuda": gpu,
    }


def _gpu_rows(loaded, body, image, inp, repeats: int, cache_dir: str, stages: dict, render_cache) -> dict:
    """Adds ``cuda_torch_ms`` and ``tensorrt_ms`` (fp16 plans) to ``stages`` where a CUDA device (and TensorRT)
    exists; the CPU model's weights are copied to the GPU in fp32."""
    import copy

    import torch

    if not torch.cuda.is_available():
        return {"available": False, "reason": "no CUDA device visible to torch"}
    from interactvlm_ros.engines.backends import InferenceStages
    from interactvlm_ros.engines.build import load_stages
    from interactvlm_ros.model.predictor import ContactPredictor

    model = copy.deepcopy(loaded.model).to("cuda").eval()
    sync = torch.cuda.synchronize
    cuda_ms, cuda_out = _measure(_stage_calls(InferenceStages(model, "torch"), inp, "cuda"), repeats, sync)
    predictor = ContactPredictor(model, loaded.tokenizer, body_model=body, cache_dir=render_cache)

    def e2e():
        return predictor.predict(image, list(BENCH_OBJECTS))

    cuda_ms["end_to_end"] = _time(e2e, repeats, sync)
    ref = e2e()
    info = {"available": True, "device": torch.cuda.get_device_name(0)}
    for name, v in cuda_ms.items():
        stages[name]["cuda_torch_ms"] = round(v, 3)
    try:
        trt_stages = load_stages(model, "tensorrt", cache_dir, tensorrt_precision="fp16")
    except RuntimeError as exc:
        info["tensorrt"] = f"unavailable: {exc}"
        return info
    trt_ms, trt_out = _measure(_stage_calls(trt_stages, inp, "cuda"), repeats, sync)
    predictor.stages = trt_stages
    predictor.embedding_cache.encoder = trt_stages.embed_images
    trt_ms["end_to_end"] = _time(e2e, repeats, sync)
    res = e2e()
    for name, v in trt_ms.items():
        stages[name]["tensorrt_ms"] = round(v, 3)
        if name in trt_out:
            stages[name]["max_abs_diff_tensorrt_fp16"] = _diff(cuda_out[name], trt_out[name])
    info["tensorrt"] = "fp16"
    info["max_abs_diff_tensorrt_fp16"] = max(float(np.abs(a.human_probs - b.human_probs).max())
                                             for a, b in zip(ref.contacts, res.contacts, strict=True))
    return info
