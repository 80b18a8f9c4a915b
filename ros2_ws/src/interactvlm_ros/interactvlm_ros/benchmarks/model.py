"""``interactvlm bench model``: per-stage time of our inference path vs the reference implementation's path.

Same model (the ``tiny`` preset unless ``model.name`` says otherwise), same image, same object names, same run:

* ours — image encoded once; the objects' prompts batched with the shared prefix prefilled once; greedy decoding
  with a KV cache; SAM embeddings of the canonical renders from the cache; one MV-Loc call for all objects.
* reference — what the released code does per (image, object): encode the image, decode recomputing the whole
  sequence for every new token (no KV cache), run the SAM image encoder on the 4 renders, MV-Loc, lift.

Random tiny weights do not emit ``[SEG]`` on their own, so both paths generate ``answer_tokens`` tokens greedily
and then emit the contact token (a realistic "The contacting body parts are …, and the contact region is [SEG]"
length); the generated tokens, contact embeddings and per-vertex probabilities of both paths are compared.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import numpy as np

BENCH_OBJECTS = ("chair", "cup", "skateboard")
ANSWER_TOKENS = 24


def _median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in runs for k in r})
    return {k: round(statistics.median(r.get(k, 0.0) for r in runs), 3) for k in keys}


def run(cfg, args) -> dict:
    import torch

    repeats = 1 if getattr(args, "quick", False) else 3
    # One intra-op thread: on a small shared CPU, multi-threaded kernels of a tiny model mostly wait for each
    # other; both paths run under the same setting (restored afterwards).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(cfg, repeats)
    finally:
        torch.set_num_threads(threads)


def _run(cfg, repeats: int) -> dict:
    import torch

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.model.checkpoint import load_model
    from interactvlm_ros.model.predictor import ContactPredictor

    loaded = load_model(cfg.model.name, cfg.model.clip_dir, cfg.model.device, cfg.model.precision)
    model = loaded.model
    body = load_body_model(cfg)
    common = dict(body_model=body, cache_dir=cfg.cache.dir or None)
    ours = ContactPredictor(model, loaded.tokenizer, **common)
    ref = ContactPredictor(model, loaded.tokenizer, use_kv_cache=False, use_embedding_cache=False, **common)
    for p in (ours, ref):
        # generate (no teacher-forced template) with a fixed answer length, see the module docstring
        p.cfg = replace(p.cfg, prompts=replace(p.cfg.prompts, answer_template=None))
        p.max_new_tokens = ANSWER_TOKENS + 8
        p.force_contact_at = ANSWER_TOKENS
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    objects = list(BENCH_OBJECTS)

    ours.predict(image, objects)  # warm-up: renders + SAM embeddings cached, lazy inits done
    ref.predict(image, objects[:1])
    our_runs, ref_runs, our_totals, ref_totals = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = ours.predict(image, objects)
        our_totals.append((time.perf_counter() - t0) * 1000.0)
        our_runs.append(res.timings_ms)
        t0 = time.perf_counter()
        ref_results = [ref.predict(image, [o]) for o in objects]
        ref_totals.append((time.perf_counter() - t0) * 1000.0)
        stages: dict[str, float] = {}
        for r in ref_results:
            for k, v in r.timings_ms.items():
                stages[k] = stages.get(k, 0.0) + v
        ref_runs.append(stages)

    texts_equal = [c.text for c in res.contacts] == [r.contacts[0].text for r in ref_results]
    found = all(c.found for c in res.contacts) and all(r.contacts[0].found for r in ref_results)
    diff = max(float(np.abs(c.human_probs - r.contacts[0].human_probs).max())
               for c, r in zip(res.contacts, ref_results, strict=True)) if found else float("inf")
    total, ref_total = statistics.median(our_totals), statistics.median(ref_totals)
    return {
        "model": cfg.model.name,
        "device": str(model.device),
        "torch_threads": torch.get_num_threads(),
        "objects": objects,
        "answer_tokens": ANSWER_TOKENS,
        "answer_note": f"random tiny weights: both paths decode {ANSWER_TOKENS} greedy tokens, then the contact "
                       "token is emitted (fixed realistic answer length)",
        "body_model": res.body_model,
        "num_body_vertices": res.num_body_vertices,
        "repeats": repeats,
        "stage_ms": _median_stages(our_runs),
        "total_ms": round(total, 3),
        "reference_stage_ms": _median_stages(ref_runs),
        "reference_total_ms": round(ref_total, 3),
        "speedup_vs_reference": round(ref_total / total, 3),
        "outputs_identical": bool(found and texts_equal and diff <= 1e-4),
        "max_abs_prob_diff": diff,
        "generated_tokens_equal": texts_equal,
    }
