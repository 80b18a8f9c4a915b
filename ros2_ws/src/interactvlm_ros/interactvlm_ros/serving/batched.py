"""Human contact for a whole dynamic batch of served requests: one pass of each stage over every image of the
batch instead of one ``ContactPredictor.predict`` per image.

The server's dynamic batcher hands the model B requests (one image and its object names each). A loop of
``predict`` runs B LLM prefills of the system text + image, B suffix prefills, B MV-Loc calls and B lifts;
here the B image prefixes are one LLM call, the questions of every image one more, MV-Loc one call over all of
the batch's contact states on the shared body renders, and the lift one matrix product::

    images [B]  --CLIP preprocess + vision (per image: the engine's input is one image)-->  embeds [B][P,D]
    system text + image of each image  --LLM prefill, batch B-->  KV cache [B]  (repeated per question)
    questions of all images [R]  --LLM prefill, batch R-->  hidden states predicting [SEG]  [R,D]
    [R,D] + body render embeddings  --MV-Loc, K = R-->  mask logits [R,V,r,r]  --lift-->  [R,Nb]

Each row's computation is the one ``predict`` runs (same prompts, same masking and positions; the batch only
changes float rounding): the served contacts equal local inference within 1e-4 (``tests/serving``). It covers
the models that answer with a fixed text (``prompts.answer_template``, the shipped default model) on the KV-cache
path with one contact-token kind; other models (:func:`batch_problem` says why) run ``predict`` per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from interactvlm_ros.model.encoded_image import EncodedImage, image_prefix_len
from interactvlm_ros.pipeline.result import ContactResult, ObjectContact


def batch_problem(predictor) -> str:
    """"" when :func:`predict_human_batch` can run ``predictor``'s model, else why not."""
    cfg = predictor.cfg
    if not cfg.prompts.answer_template:
        return "the model generates its answer (no prompts.answer_template): answers differ in length per image"
    if not predictor.use_kv_cache:
        return "use_kv_cache is off (reference-style decoding)"
    if predictor.model.is_joint:
        return "joint model ([HSEG]/[OSEG] splitter runs on torch per call)"
    if predictor.body_model is None:
        return "no body model"
    return ""


@dataclass
class BatchedHuman:
    """What :func:`predict_human_batch` returns: per request a :class:`ContactResult` or the ``ValueError`` its
    names raised (the others are answered), and per request its :class:`EncodedImage` (None where not encoded)
    for the server's encoding cache (its LLM start is prefilled again by the frame's object request, on first
    use, as ``EncodedImage.prefix`` does)."""

    results: list[ContactResult | ValueError]
    encoded: list[EncodedImage | None]
    timings_ms: dict[str, float] = field(default_factory=dict)


def _prefill(model, prefix: torch.Tensor, suffixes: list[torch.Tensor], repeats: int) -> torch.Tensor:
    """Prefill ``prefix [N,T0,D]`` (one row per image, batch N), repeat each row's cache ``repeats`` times (its
    questions), then the questions ``suffixes`` (N·repeats, left-padded to one length) on it, as
    ``generation.prefill`` does for one image. Returns the last position's hidden state ``[R,D]``."""
    n, t0 = prefix.shape[:2]
    device, dtype = prefix.device, prefix.dtype
    cache = model.new_cache()
    mask0 = torch.ones(n, t0, dtype=torch.long, device=device)
    model.decoder(prefix, mask0, (mask0.cumsum(-1) - 1).clamp(min=0), cache)
    if repeats > 1:
        cache.batch_repeat_interleave(repeats)
    rows, ts = len(suffixes), max(s.shape[0] for s in suffixes)
    suffix = torch.zeros(rows, ts, prefix.shape[-1], device=device, dtype=dtype)
    mask = torch.zeros(rows, t0 + ts, dtype=torch.long, device=device)
    mask[:, :t0] = 1
    for r, s in enumerate(suffixes):
        suffix[r, ts - s.shape[0]:] = s
        mask[r, t0 + ts - s.shape[0]:] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return model.decoder(suffix, mask, pos[:, t0:], cache)[:, -1]


@torch.no_grad()
def predict_human_batch(predictor, images: list[np.ndarray], objects: list[list[str]]) -> BatchedHuman:
    """Human contact for each request ``(images[b] uint8 [H,W,3], objects[b])`` of a batch on one predictor:
    the same :class:`ContactResult` per request as ``predictor.predict(images[b], objects[b])`` (see the module
    docstring). Each result's ``timings_ms`` is its share of the batch's stage times."""
    from interactvlm_ros.model.predictor import StageTimer, _in_query_order

    clock = StageTimer()
    n = len(images)
    results: list = [None] * n
    encoded: list = [None] * n
    labels: list[list[str]] = [[] for _ in range(n)]
    matches: list = [None] * n
    for b, names in enumerate(objects):
        try:
            matches[b] = predictor.resolve_names(names)
        except ValueError as exc:
            results[b] = exc
            continue
        labels[b] = [m.prompt_name for m in matches[b] if m.found]
    active = [b for b in range(n) if results[b] is None and labels[b]]
    clock.lap("preprocess")
    stages = predictor.stages
    for b in active:
        pixels = predictor.clip_processor(images[b])
        clock.lap("preprocess")
        encoded[b] = EncodedImage(images[b], stages.encode_image(pixels), stages)
        clock.lap("vision")
    contacts: dict[int, list[ObjectContact]] = {b: [] for b in range(n)}
    if active:
        m = stages.language_model
        tokens = predictor.cfg.tokens
        ids = {b: [predictor._prompt_ids("human", label) for label in labels[b]] for b in active}
        first = ids[active[0]][0]
        k = image_prefix_len(first, tokens.image, tokens.im_end)
        if not (0 < k and all(len(i) > k and i[:k] == first[:k] for b in active for i in ids[b])):
            raise ValueError("the prompts do not share their system text + image start; batching needs it")
        counts = {len(ids[b]) for b in active}
        per_image = counts.pop() if len(counts) == 1 else 0  # equal question counts: prefix once per image
        prefix_rows = active if per_image else [b for b in active for _ in ids[b]]
        prefix = torch.stack([m.embed_prompt(first[:k], encoded[b].image_embeds) for b in prefix_rows])
        suffixes = [m.embed_prompt(i[k:], encoded[b].image_embeds) for b in active for i in ids[b]]
        clock.lap("preprocess")
        hidden = _prefill(m, prefix, suffixes, per_image or 1)
        answer = predictor.cfg.prompts.answer_template
        tail = predictor.tokenizer.encode(answer)
        seg = predictor.cfg.contact_token_ids[0]
        text = predictor.tokenizer.decode(tail[:tail.index(seg) + 1] if seg in tail else tail)
        clock.lap("llm")
        views = predictor.body_views()
        emb = predictor.render_embeddings(views)
        clock.lap("render_embed")
        logits = stages.mvloc(hidden, emb, views.cam_params, mask_size=views.images.shape[1]).float()
        clock.lap("mvloc")
        probs = predictor._lift_fn(True)(predictor._lifter(views, logits.device), logits).cpu().numpy()
        masks = torch.sigmoid(logits).cpu().numpy().astype(np.float32)
        j = 0
        for b in active:
            for label in labels[b]:
                c = ObjectContact(label, text, True, view_masks=masks[j])
                c.human_probs = probs[j].astype(np.float32)
                contacts[b].append(c)
                j += 1
        clock.lap("lift")
    name, nv = predictor._body_info()
    share = {stage: ms / max(1, len(active)) for stage, ms in clock.ms.items()}
    for b in range(n):
        if results[b] is None:
            results[b] = ContactResult(name, nv, _in_query_order(matches[b], contacts[b], objects[b]), dict(share))
    return BatchedHuman(results, encoded, clock.ms)


__all__ = ["BatchedHuman", "batch_problem", "predict_human_batch"]
