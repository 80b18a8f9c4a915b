"""``ContactPredictor``: image + object names -> :class:`~interactvlm_ros.pipeline.result.ContactResult`.

Per call (human contact, ``predict``)::

    image ──CLIP──► [P,D] ─┐            (once per frame: ``encode``, see ``model.encoded_image``)
    questions (one per object) ──tokens──► system text + image (prefilled once per frame) + the questions'
    shared start (prefilled once per call) + B suffixes ──LLaMA, KV cache──►
    hidden state predicting [SEG] [B,D] ──Γ──► [B,256] ──FeatLift × cams [4,5]──► [B,4,256]
    ──SAM mask decoder over the cached SAM embeddings of the 4 canonical renders──► logits [B,4,R,R]
    ──Lifter──► per-vertex probabilities [B,N] on the body topology

``predict_object`` does the same over 4 renders of a given mesh (object question), ``predict_objects`` over
several meshes of one frame at once (one LLM batch for their questions, one MV-Loc call over all their renders
``[K,V,C,h,w]``, one lift per mesh); ``predict_2d`` prompts SAM on the input image itself (2D contact mask).
Every ``predict*`` takes the image array or the :class:`~interactvlm_ros.model.encoded_image.EncodedImage` of
``encode(image)``: give that to every query of a frame and the vision tower and the image's LLM prefill run once
per frame, not once per query.
Object names are mapped onto what the model knows first (``resolve_names``, ``model.object_names``): a model with
a closed vocabulary asks "basketball" as ``ball`` and answers a name it never saw with ``found: false`` and the
reason, without running; each contact records the name as asked (``query``) and the mapping (``name_match``).
Models whose answer is a fixed template (config ``prompts.answer_template``, e.g. ``"Sure, [SEG]."``) skip
generation: one prefill teacher-forces the template.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch

from interactvlm_ros.model.checkpoint import LoadedModel, load_model
from interactvlm_ros.model.embedding_cache import SamEmbeddingCache, images_hash
from interactvlm_ros.model.encoded_image import EncodedImage, image_prefix_len
from interactvlm_ros.model.generation import (
    DecodeSettings,
    GenerationOutput,
    PrefilledPrefix,
    generate_cached,
    generate_recompute,
    prefill,
)
from interactvlm_ros.model.interactvlm import InteractVLMForCausalLM
from interactvlm_ros.model.object_names import NameMatch, ObjectVocabulary
from interactvlm_ros.model.prompts import conversation, encode_with_image, question, teacher_forced_prefix
from interactvlm_ros.model.tokenizer import SEG, PromptTokenizer, sanitize_object_name
from interactvlm_ros.model.vision import ClipImageProcessor, to_rgb_uint8
from interactvlm_ros.pipeline.result import ContactResult, ObjectContact

OBJECT_COND_DIST = 2.0  # the method conditions object views on distance 2 (point-cloud training renders)


@dataclass
class RenderSet:
    """Fixed renders MV-Loc localises on: SAM input images, camera conditioning, the lift operator."""

    images: np.ndarray          # uint8 [V,H,W,3]
    cam_params: torch.Tensor    # [V,5]
    lifter: object              # render.lift.Lifter at resolution H
    content_key: str            # identifies the renders for the embedding cache
    num_vertices: int


class StageTimer:
    """Wall time per stage in ms (``ms``): ``with timer("llm"):`` times a block; ``timer.lap("llm")`` adds the
    time since the last lap (or since the timer was made) to a stage."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        t = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (t - self._t) * 1000.0
        self._t = t

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000.0


def _common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the token prefix shared by all prompts, leaving at least one token per prompt to decode."""
    n, limit = 0, min(len(s) for s in seqs) - 1
    while n < limit and len({s[n] for s in seqs}) == 1:
        n += 1
    return n


class ContactPredictor:
    """InteractVLM inference on one model, one body topology.

    Args:
        model, tokenizer: from :func:`~interactvlm_ros.model.checkpoint.load_model`.
        body_model: an ``interactvlm_ros.body`` BodyModel (None: human mode unavailable until given).
        cache_dir: cache root for canonical renders and SAM embeddings (None = default cache).
        render_dir: the authors' unpacked ``data.zip`` (``model.render_dir``): the body views are their
            renders and pixel→vertex maps instead of ours (SMPL-H/SMPL body; see ``render.official_renders``).
        use_kv_cache / use_embedding_cache: False reproduces the reference implementation's costs (bench).
    """

    def __init__(self, model: InteractVLMForCausalLM, tokenizer: PromptTokenizer, body_model=None,
                 cache_dir: str | None = None, use_kv_cache: bool = True, use_embedding_cache: bool = True,
                 progress: bool = False, render_dir: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.cfg = model.config
        self.body_model = body_model
        self.cache_dir = cache_dir
        self.render_dir = render_dir or None
        self.use_kv_cache = use_kv_cache
        self.use_embedding_cache = use_embedding_cache
        self.force_contact_at: int | None = None
        self.max_new_tokens = self.cfg.prompts.max_new_tokens
        self.max_batch = 16  # prompts decoded together (bounds the KV cache: 13B bf16 ≈ 0.27 GB per prompt)
        self.clip_processor = ClipImageProcessor(self.cfg.vision)
        from interactvlm_ros.config.paths import cache_dir as default_cache

        emb_dir = default_cache(cache_dir or "") / "sam_embeddings"
        self.embedding_cache = SamEmbeddingCache(model.sam, emb_dir, progress=progress)
        from interactvlm_ros.engines.backends import InferenceStages

        self.stages = InferenceStages(model, "torch")  # per-frame stages; use_backend() swaps the backend
        self._body_views: RenderSet | None = None
        self._object_views: dict[str, RenderSet] = {}
        self._prompts: tuple = (None, None, {})  # (cfg, tokenizer, {(mode, label): ids}) of _prompt_ids
        self._last_stack: tuple | None = None  # (the stacked tensors, stacked embeddings, stacked cameras)

    # ------------------------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg) -> ContactPredictor:
        """From the parameter set: ``model.name`` (preset or directory), ``model.clip_dir``, ``model.device``,
        ``model.precision``, ``model.render_dir``, ``body.model`` (+ ``body.model_dir``), ``cache.dir``."""
        loaded = load_model(cfg.model.name, cfg.model.clip_dir, cfg.model.device, cfg.model.precision)
        from interactvlm_ros.body import load_body_model

        body = load_body_model(cfg)
        predictor = cls.from_loaded(loaded, body_model=body, cache_dir=cfg.cache.dir or None,
                                    render_dir=cfg.model.render_dir or None)
        predictor.set_answer(cfg.model.answer, cfg.model.max_new_tokens)
        from interactvlm_ros.engines.build import resolve_backend

        backend = resolve_backend(cfg.inference.backend, predictor.model.device)
        if backend != "torch":
            from interactvlm_ros.config.paths import engines_dir

            try:
                predictor.use_backend(backend, engines_dir(cfg.engines.cache_dir),
                                      force_rebuild=bool(cfg.engines.force_rebuild), progress=True)
            except Exception as exc:  # noqa: BLE001 - an engine that cannot be built must not stop the node
                import logging

                logging.getLogger("interactvlm.engines").error(
                    "inference.backend=%s could not be set up (%s: %s); running the torch backend instead",
                    backend, type(exc).__name__, exc)
        return predictor

    @property
    def backend_name(self) -> str:
        return self.stages.backend

    def use_backend(self, backend: str, cache_dir=None, force_rebuild: bool = False, progress: bool = False,
                    **kw) -> None:
        """Run the per-frame stages (vision, LLM, MV-Loc, SAM encoder) on ``torch``, ``onnxruntime`` or
        ``tensorrt``; engines missing from the cache (``cache_dir``, default ``engines_dir()``) are built now."""
        from interactvlm_ros.engines.build import load_stages

        self.stages = load_stages(self.model, backend, cache_dir, force_rebuild=force_rebuild, progress=progress,
                                  mask_size=self.cfg.render_resolution, **kw)
        self.embedding_cache.encoder = self.stages.embed_images

    def set_answer(self, answer: str = "auto", max_new_tokens: int = 0) -> None:
        """``auto`` (the model's setting), ``generate``, or a fixed answer containing ``[SEG]`` to teacher-force;
        ``max_new_tokens`` > 0 overrides the model's generation limit."""
        if answer == "generate":
            self.cfg = replace(self.cfg, prompts=replace(self.cfg.prompts, answer_template=None))
        elif answer != "auto":
            if SEG not in answer:
                raise ValueError(f"model.answer must be 'auto', 'generate' or a text containing {SEG}; got {answer!r}")
            self.cfg = replace(self.cfg, prompts=replace(self.cfg.prompts, answer_template=answer))
        if max_new_tokens:
            self.max_new_tokens = int(max_new_tokens)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, **kw) -> ContactPredictor:
        return cls(loaded.model, loaded.tokenizer, **kw)

    def warmup(self) -> dict[str, float]:
        """Build the canonical renders and their SAM embeddings now (first ``predict`` is then as fast as the
        rest); returns the milliseconds spent per step."""
        timer = StageTimer()
        if self.body_model is not None:
            with timer("render"):
                views = self.body_views()
            with timer("render_embed"):
                self.render_embeddings(views)
        return timer.ms

    def save_pretrained(self, directory):
        """Save the model and its tokenizer as a directory ``from_config`` loads (``model.name=<dir>``)."""
        return self.model.save_pretrained(directory, self.tokenizer)

    # ------------------------------------------------------------------------------------ renders
    def body_views(self) -> RenderSet:
        """The canonical body's 4 renders (built once, disk-cached by the geometry code), or the authors' renders
        and maps read from ``render_dir``."""
        if self._body_views is None:
            if self.body_model is None:
                raise RuntimeError("human contact needs a body model (ContactPredictor(body_model=...))")
            from interactvlm_ros.config.paths import cache_dir as default_cache
            from interactvlm_ros.render.canonical import canonical_body_views

            if self.render_dir:
                from interactvlm_ros.render.official_renders import official_body_views

                cv = official_body_views(self.render_dir, self.body_model, self.cfg.render_resolution,
                                         fill_unseen=self.cfg.lift_fill_unseen)
            else:
                renders = default_cache(self.cache_dir or "") / "renders"
                cv = canonical_body_views(self.body_model, self.cfg.render_resolution, cache_dir=renders,
                                          fill_unseen=self.cfg.lift_fill_unseen)
            # the key names the render content itself: a renderer change re-embeds, a stale entry never matches
            key = f"body:{self.body_model.topology_hash}:{images_hash(cv.render.images)}"
            self._body_views = RenderSet(cv.render.images, torch.as_tensor(np.asarray(cv.cam_params)).float(),
                                         cv.lifter, key, int(self.body_model.num_vertices))
        return self._body_views

    def object_render_set(self, vertices: np.ndarray, faces: np.ndarray) -> RenderSet:
        """4 renders of an object mesh (normalised, xyz-coloured), memoised per mesh content."""
        v = np.ascontiguousarray(np.asarray(vertices, np.float32))
        f = np.ascontiguousarray(np.asarray(faces, np.int64))
        h = hashlib.blake2b(v.tobytes() + b"|" + f.tobytes(), digest_size=12).hexdigest()
        if h not in self._object_views:
            from interactvlm_ros.render.cameras import cam_params
            from interactvlm_ros.render.canonical import object_views

            ov = object_views(v, f, self.cfg.render_resolution, fill_unseen=self.cfg.lift_fill_unseen)
            cams = torch.from_numpy(cam_params(ov.render.views, dist_override=OBJECT_COND_DIST))
            key = f"mesh:{h}:{images_hash(ov.render.images)}"
            self._remember(h, RenderSet(ov.render.images, cams, ov.lifter, key, len(v)))
        return self._object_views[h]

    def point_render_set(self, points: np.ndarray) -> RenderSet:
        """4 splat renders of a point cloud (PIAD convention: unit sphere, distance 2), memoised per content."""
        p = np.ascontiguousarray(np.asarray(points, np.float32))
        h = "points-" + hashlib.blake2b(p.tobytes(), digest_size=12).hexdigest()
        if h not in self._object_views:
            from interactvlm_ros.render.canonical import point_cloud_views

            pv = point_cloud_views(p, self.cfg.render_resolution)
            cams = torch.as_tensor(np.asarray(pv.cam_params)).float()
            key = f"points:{h}:{images_hash(pv.render.images)}"
            self._remember(h, RenderSet(pv.render.images, cams, pv.lifter, key, len(p)))
        return self._object_views[h]

    def _remember(self, key: str, views: RenderSet) -> None:
        if len(self._object_views) >= 8:
            self._object_views.pop(next(iter(self._object_views)))
        self._object_views[key] = views

    def render_embeddings(self, views: RenderSet) -> torch.Tensor:
        """SAM image embeddings ``[V,C,h,w]`` of the renders (cached unless ``use_embedding_cache`` is False)."""
        if self.use_embedding_cache:
            return self.embedding_cache.get(views.images, content_key=views.content_key)
        with torch.no_grad():
            return self.model.sam.embed_images(views.images)

    # ------------------------------------------------------------------------------------ the image
    def encode(self, image_rgb: np.ndarray) -> EncodedImage:
        """Encode an image (``[H,W]``, ``[H,W,3|4]``, any dtype) once for all its queries: pass the result to
        ``predict``, ``predict_object``, ``predict_points`` and ``predict_2d`` in place of the array."""
        timer = StageTimer()
        with timer("preprocess"):
            rgb = to_rgb_uint8(image_rgb)
            pixels = self.clip_processor(rgb)
        with timer("vision"):
            embeds = self.stages.encode_image(pixels)
        return EncodedImage(rgb, embeds, self.stages, timer.ms)

    def _encoded(self, image: np.ndarray | EncodedImage, timer: StageTimer) -> EncodedImage:
        """``image`` encoded by these stages (now, if it is an array); its unreported encoding time goes to
        ``timer``."""
        if not isinstance(image, EncodedImage):
            image = self.encode(image)
        elif image.encoder is not self.stages:
            raise ValueError("this EncodedImage was made by another model or inference backend; encode the image "
                             "with this predictor")
        for stage, ms in image.take_timings().items():
            timer.ms[stage] = timer.ms.get(stage, 0.0) + ms
        return image

    # ------------------------------------------------------------------------------------ the VLM
    def _prompt_ids(self, mode: str, label: str) -> list[int]:
        """Token ids of the ``mode`` question about ``label`` (remembered: a camera asks the same few names every
        frame; forgotten when the config or tokenizer is replaced, e.g. by ``set_answer``)."""
        cfg, tokenizer, known = self._prompts
        if cfg is not self.cfg or tokenizer is not self.tokenizer or len(known) >= 256:
            known = {}
            self._prompts = (self.cfg, self.tokenizer, known)
        ids = known.get((mode, label))
        if ids is None:
            p = self.cfg.prompts
            answer = teacher_forced_prefix(p.answer_template) if p.answer_template else ""
            text = conversation(p, question(p, mode, label), answer)
            ids = known[(mode, label)] = tuple(encode_with_image(self.tokenizer, text, self.cfg.tokens.image))
        return list(ids)

    @torch.no_grad()
    def contact_states(self, image: np.ndarray | EncodedImage, labels: list[str], mode: str,
                       timer: StageTimer | None = None) -> tuple[GenerationOutput, list[str]]:
        """Run the VLM for every label: hidden states predicting the contact token ``[B,C,D]`` + texts."""
        timer = timer or StageTimer()
        encoded = self._encoded(image, timer)
        m = self.stages.language_model
        with timer("preprocess"):
            ids = [self._prompt_ids(mode, label) for label in labels]
        image = encoded.image_embeds
        # a forced contact token is the mode's own: the joint model's object questions get [OSEG]
        force_index = 1 if mode == "object" and len(self.cfg.contact_token_ids) > 1 else 0
        settings = DecodeSettings(self.max_new_tokens, self.tokenizer.eos_id, self.cfg.contact_token_ids,
                                  self.force_contact_at, force_index)
        with timer("llm"):
            if self.use_kv_cache:
                outs = [self._decode_batch(ids[i:i + self.max_batch], encoded, settings)
                        for i in range(0, len(ids), self.max_batch)]
            else:  # reference-style: one prompt at a time, whole sequence recomputed per token
                outs = [self._teacher_forced([i], encoded) if self.cfg.prompts.answer_template
                        else generate_recompute(m, m.embed_prompt(i, image), settings) for i in ids]
            out = outs[0] if len(outs) == 1 else GenerationOutput(
                [t for o in outs for t in o.tokens], torch.cat([o.contact_states for o in outs]),
                torch.cat([o.found for o in outs]), sum(o.steps for o in outs))
        texts = [self.tokenizer.decode(t) for t in out.tokens]
        return out, texts

    def _split(self, ids: list[list[int]], encoded: EncodedImage
               ) -> tuple[PrefilledPrefix | None, torch.Tensor, list[torch.Tensor]]:
        """A batch of prompts as (the frame's prefilled system text + image, a shared prefix ``[Tp,D]``, per-prompt
        suffixes ``[Ts_b,D]``). After the frame's prefilled start each prompt's question is a suffix: one decoder
        call per batch. The reference-style path (``use_kv_cache`` False) shares nothing across calls."""
        m = self.stages.language_model
        image = encoded.image_embeds
        n = _common_prefix_len(ids)
        k = image_prefix_len(ids[0], self.cfg.tokens.image, self.cfg.tokens.im_end) if self.use_kv_cache else 0
        if 0 < k <= n:
            return encoded.prefix(m, ids[0][:k]), image.new_zeros(0, image.shape[-1]), [
                m.embed_prompt(i[k:], image) for i in ids]
        return None, m.embed_prompt(ids[0][:n], image), [m.embed_prompt(i[n:], image) for i in ids]

    def _decode_batch(self, ids: list[list[int]], encoded: EncodedImage, settings: DecodeSettings
                      ) -> GenerationOutput:
        """Teacher-forced prefill or KV-cache generation of one batch of prompts sharing their common prefix."""
        if self.cfg.prompts.answer_template:
            return self._teacher_forced(ids, encoded)
        past, prefix, suffixes = self._split(ids, encoded)
        return generate_cached(self.stages.language_model, prefix, suffixes, settings, past)

    def _teacher_forced(self, ids: list[list[int]], encoded: EncodedImage) -> GenerationOutput:
        """Fixed-answer checkpoints: one prefill; the last position predicts the contact token."""
        m = self.stages.language_model
        settings = DecodeSettings(0, self.tokenizer.eos_id, self.cfg.contact_token_ids)
        past, prefix, suffixes = self._split(ids, encoded)
        hidden = prefill(m, prefix, suffixes, past)[0]  # [B,D] at the last position
        states = torch.zeros(len(ids), len(settings.contact_ids), hidden.shape[-1], dtype=hidden.dtype,
                             device=hidden.device)
        states[:] = hidden[:, None]  # the last position predicts the contact token (whichever kind is asked)
        found = torch.ones(len(ids), len(settings.contact_ids), dtype=torch.bool, device=hidden.device)
        answer = self.cfg.prompts.answer_template
        tail = self.tokenizer.encode(answer)
        cut = tail.index(self.cfg.contact_token_ids[0]) + 1 if self.cfg.contact_token_ids[0] in tail else len(tail)
        return GenerationOutput([list(tail[:cut]) for _ in ids], states, found, 0)

    # ------------------------------------------------------------------------------------ public API
    def resolve_names(self, objects: list[str] | str) -> list[NameMatch]:
        """How each asked object name maps to a name this model knows (``config.object_classes``, see
        ``model.object_names``), after sanitising it for the prompt (a name with nothing printable left is a
        ``ValueError``)."""
        if isinstance(objects, str):
            objects = [objects]
        if not objects:
            raise ValueError("objects must name at least one object")
        vocabulary = ObjectVocabulary(self.cfg.object_classes)
        prompts = self.cfg.prompts
        return [vocabulary.resolve(sanitize_object_name(o, prompts.max_object_chars, prompts.keep_underscores))
                for o in objects]

    def describe_names(self, objects: list[str]) -> str:
        """How each name maps, in one line for logs and diagnostics: ``basketball -> ball (synonym); couch -> not
        known`` ("" for no names; never raises)."""
        parts = []
        for name in objects:
            try:
                parts.append(self.resolve_names([name])[0].describe())
            except ValueError as exc:
                parts.append(f"{name} -> not usable ({exc})")
        return "; ".join(parts)

    def _body_info(self) -> tuple[str, int]:
        if self.body_model is None:
            return "", 0
        return str(self.body_model.name), int(self.body_model.num_vertices)

    @torch.no_grad()
    def predict(self, image: np.ndarray | EncodedImage, objects: list[str]) -> ContactResult:
        """Human contact on the body topology for each object name (image encoded once, prompts batched)."""
        timer = StageTimer()
        matches = self.resolve_names(objects)
        labels = [m.prompt_name for m in matches if m.found]
        contacts = []
        if labels:
            out, texts = self.contact_states(image, labels, "human", timer)
            contacts = self._localise(out, texts, labels, self.body_views, timer, human=True)
        name, nv = self._body_info()
        return ContactResult(name, nv, _in_query_order(matches, contacts, objects), timer.ms)

    @torch.no_grad()
    def predict_object(self, image: np.ndarray | EncodedImage, vertices: np.ndarray, faces: np.ndarray, label: str,
                       mesh_id: str = "") -> ContactResult:
        """Object contact/affordance on a given mesh (``vertices [No,3]``, ``faces [F,3]``)."""
        return self._predict_on_object(image, label, lambda: self.object_render_set(vertices, faces), mesh_id)

    @torch.no_grad()
    def predict_points(self, image: np.ndarray | EncodedImage, points: np.ndarray, label: str) -> ContactResult:
        """Object affordance on a point cloud ``points [Np,3]`` (PIAD): ``object_probs [Np]`` per point."""
        return self._predict_on_object(image, label, lambda: self.point_render_set(points), "")

    @torch.no_grad()
    def predict_objects(self, image: np.ndarray | EncodedImage, meshes: Sequence[tuple[np.ndarray, np.ndarray]],
                        labels: Sequence[str], mesh_ids: Sequence[str] | None = None) -> ContactResult:
        """Object contact on several meshes of one frame: ``meshes[i] = (vertices [No,3], faces [F,3])`` asked
        about ``labels[i]`` (``mesh_ids[i]``: its ``object_mesh_id``, "" for the content hash). One contact per
        mesh, in order, each what ``predict_object`` gives for it (within float rounding), at the cost of one
        call: the object questions are one LLM batch, MV-Loc runs once over every mesh's renders, then one lift
        per mesh."""
        meshes, labels = list(meshes), list(labels)
        mesh_ids = list(mesh_ids) if mesh_ids is not None else [""] * len(labels)
        if not len(meshes) == len(labels) == len(mesh_ids):
            raise ValueError(f"predict_objects needs one label and mesh id per mesh; got {len(meshes)} meshes, "
                             f"{len(labels)} labels, {len(mesh_ids)} mesh ids")
        timer = StageTimer()
        name, nv = self._body_info()
        if not labels:
            return ContactResult(name, nv, [], timer.ms)
        matches = self.resolve_names(labels)
        known = [i for i, m in enumerate(matches) if m.found]
        contacts = []
        if known:
            with timer("render"):
                views = [self.object_render_set(*meshes[i]) for i in known]
            prompt_labels = [matches[i].prompt_name for i in known]
            out, texts = self.contact_states(image, prompt_labels, "object", timer)
            contacts = self._localise(out, texts, prompt_labels, lambda: views, timer, human=False)
            for c, i, v in zip(contacts, known, views, strict=True):
                c.object_mesh_id = mesh_ids[i] or v.content_key.split(":")[1]
        return ContactResult(name, nv, _in_query_order(matches, contacts, labels), timer.ms)

    def _predict_on_object(self, image, label: str, render_set, mesh_id: str) -> ContactResult:
        timer = StageTimer()
        matches = self.resolve_names([label])
        labels = [m.prompt_name for m in matches if m.found]
        contacts = []
        if labels:
            with timer("render"):
                views = render_set()
            out, texts = self.contact_states(image, labels, "object", timer)
            contacts = self._localise(out, texts, labels, lambda: views, timer, human=False)
            for c in contacts:
                c.object_mesh_id = mesh_id or views.content_key.split(":")[1]
        name, nv = self._body_info()
        return ContactResult(name, nv, _in_query_order(matches, contacts, [label]), timer.ms)

    @torch.no_grad()
    def predict_2d(self, image: np.ndarray | EncodedImage, objects: list[str]) -> ContactResult:
        """2D contact masks on the input image (``view_masks [1,H,W]`` probabilities at the image size).

        The contact embedding is the only sparse prompt of SAM on the image (no camera gating: there is no
        rendered view; the reference feeds random camera parameters here).
        """
        timer = StageTimer()
        matches = self.resolve_names(objects)
        labels = [m.prompt_name for m in matches if m.found]
        contacts = []
        if not labels:
            name, nv = self._body_info()
            return ContactResult(name, nv, _in_query_order(matches, contacts, objects), timer.ms)
        encoded = self._encoded(image, timer)
        out, texts = self.contact_states(encoded, labels, "image2d", timer)
        sam = self.model.sam
        found = out.found[:, 0]
        masks = None
        if found.any():
            with timer("sam_image"):
                emb, input_hw = encoded.sam_embedding(sam, self.model.dtype)
            with timer("mvloc"):
                e = self.model.contact_embeddings(out.contact_states[found, 0])
                sparse, dense = sam.prompt_encoder(text_embeds=e[:, None, :])
                low, _ = sam.mask_decoder(emb.to(sparse.dtype), sam.prompt_encoder.get_dense_pe().to(sparse.dtype),
                                          sparse, dense[:1], multimask_output=False)
                size = encoded.rgb.shape[:2]
                masks = torch.sigmoid(sam.postprocess_masks(low[:, 0].float(), input_hw, size)).cpu().numpy()
        j = 0
        for b, label in enumerate(labels):
            if found[b]:
                contacts.append(ObjectContact(label, texts[b], True, view_masks=masks[j:j + 1].astype(np.float32)))
                j += 1
            else:
                contacts.append(self._not_found(label, texts[b]))
        name, nv = self._body_info()
        return ContactResult(name, nv, _in_query_order(matches, contacts, objects), timer.ms)

    # ------------------------------------------------------------------------------------ MV-Loc + lift
    def _not_found(self, label: str, text: str) -> ObjectContact:
        limit = self.max_new_tokens
        return ObjectContact(label, text, found=False, reason=f"the answer has no contact token "
                             f"({'/'.join(self.tokenizer.decode([i]) for i in self.cfg.contact_token_ids)}) "
                             f"within {limit} generated tokens")

    def _localise(self, out: GenerationOutput, texts: list[str], labels: list[str], get_views,
                  timer: StageTimer, human: bool) -> list[ObjectContact]:
        """MV-Loc + lift for the rows whose answer had the contact token; ``get_views()`` gives the renders: one
        :class:`RenderSet` for every row, or a list with one per row (several meshes: one MV-Loc call over their
        distinct render sets stacked ``[N,V,C,h,w]`` with each row's set index, and each row is lifted by its own
        mesh's lifter)."""
        col = 0 if human or out.found.shape[1] == 1 else 1  # joint model: [HSEG] for the body, [OSEG] for objects
        found = out.found[:, col]
        probs = masks = None
        if found.any():
            with timer("render"):
                views = get_views()
            rows = [views[b] for b in range(len(labels)) if found[b]] if isinstance(views, list) else None
            index = None
            with timer("render_embed"):
                if rows is None:
                    emb, cams, size = self.render_embeddings(views), views.cam_params, views.images.shape[1]
                else:  # each distinct render set once; row j is localised on set index[j]
                    distinct: dict = {}
                    index = [distinct.setdefault(v.content_key or id(v), (len(distinct), v))[0] for v in rows]
                    emb, cams = self._stacked([self.render_embeddings(v) for _, v in distinct.values()],
                                              [v.cam_params for _, v in distinct.values()])
                    size = rows[0].images.shape[1]
                    if any(v.images.shape[1] != size for v in rows):
                        raise ValueError("the meshes' renders differ in size; localise them in separate calls")
            with timer("mvloc"):
                states = out.contact_states[found, col]
                if self.model.is_joint:  # [HSEG]/[OSEG] take their half of the splitter (torch; no engine for it)
                    m = self.model
                    if index is not None:
                        emb, cams = emb[index], cams[index]
                    logits = m.branch_mvloc("human" if human else "object", mask_size=size)(
                        m.contact_embeddings(states.to(m.device)), emb.to(m.device, m.dtype),
                        cams.to(m.device, m.dtype)).float()
                else:  # one call for every row (the engines' graph takes the N render sets and the index)
                    logits = self.stages.mvloc(states, emb, cams, mask_size=size, render_index=index).float()
            with timer("lift"):
                lift = self._lift_fn(human)
                if rows is None:
                    probs = lift(self._lifter(views, logits.device), logits).cpu().numpy().astype(np.float32)
                else:
                    probs = [lift(self._lifter(v, logits.device), logits[j:j + 1])[0].cpu().numpy()
                             .astype(np.float32) for j, v in enumerate(rows)]
                masks = torch.sigmoid(logits).cpu().numpy().astype(np.float32)
        contacts = []
        j = 0
        for b, label in enumerate(labels):
            if not found[b]:
                contacts.append(self._not_found(label, texts[b]))
                continue
            c = ObjectContact(label, texts[b], True, view_masks=masks[j])
            if human:
                c.human_probs = probs[j]
            else:
                c.object_probs = probs[j]
            contacts.append(c)
            j += 1
        return contacts

    def _stacked(self, embeddings: list[torch.Tensor], cams: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The render sets' embeddings ``[N,V,C,h,w]`` and cameras ``[N,V,5]`` stacked; the last stack is kept and
        reused while the same tensors are asked (a camera asks about the same meshes frame after frame)."""
        parts = (*embeddings, *cams)
        last = self._last_stack
        if last is None or len(last[0]) != len(parts) or any(a is not b for a, b in zip(last[0], parts, strict=True)):
            last = self._last_stack = (parts, torch.stack(embeddings), torch.stack(cams))
        return last[1], last[2]

    def _lift_fn(self, human: bool):
        """The lift of this kind of contact: the soft lift for the body; for objects ``config.object_lift``
        ("reference": pixels with probability > 0.3 only, as the official object predictor; "soft")."""
        if not human and self.cfg.object_lift == "reference":
            return lambda lifter, logits: lifter.lift_above(logits)
        return lambda lifter, logits: lifter(logits)

    @staticmethod
    def _lifter(views: RenderSet, device: torch.device):
        """The renders' lift operator on ``device`` (moved once, then kept there)."""
        if getattr(views.lifter, "device", torch.device("cpu")) != device:
            views.lifter = views.lifter.to(device)
        return views.lifter


__all__ = ["OBJECT_COND_DIST", "ContactPredictor", "RenderSet"]


def _in_query_order(matches: list[NameMatch], contacts: list[ObjectContact], asked: list[str] | str
                    ) -> list[ObjectContact]:
    """The contacts of the names the model knows, with a not-found contact (and its reason) for each other name,
    in query order; each records the name exactly as asked (``query``) and how it was mapped (``name_match``)."""
    known = iter(contacts)
    out = []
    for match, query in zip(matches, [asked] if isinstance(asked, str) else asked, strict=True):
        contact = next(known) if match.found else ObjectContact(match.asked, found=False, reason=match.reason)
        contact.query, contact.name_match = str(query), match.how
        out.append(contact)
    return out
