"""One interface for the per-frame stages, three backends.

:class:`InferenceStages` is what :class:`~interactvlm_ros.model.predictor.ContactPredictor` calls:

* ``encode_image(pixel_values [1,3,S,S]) -> [P,D]``
* ``language_model``: duck-types the parts of the model that ``model.generation`` uses (``decoder``,
  ``lm_logits``, ``embed_ids``, ``embed_prompt``, ``new_cache``); its decoder runs the ``llm`` stage
* ``mvloc(contact_states [K,D], render_embeddings [V,C,h,w] | [N,V,C,h,w], cam_params [V,5] | [N,V,5], mask_size,
  render_index [K]) -> [K,V,R,R]`` (every query of a call in one engine run)
* ``embed_images(renders uint8 [V,H,W,3]) -> [V,C,h,w]`` (SAM image encoder, for new object meshes)

With ``runners=None`` (backend ``torch``) every call goes to the model's own modules, exactly the code path of
the model package. Otherwise each stage is a *runner*: a callable taking the stage's input tensors (in the order
of ``StageSpec.inputs``) and returning its outputs as torch tensors; :class:`OrtRunner` here and
``tensorrt_backend.TensorRTRunner`` implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .stages import LanguageStage

Runner = Callable[..., tuple[torch.Tensor, ...]]
BACKENDS = ("torch", "onnxruntime", "tensorrt")


class OrtRunner:
    """An ONNX Runtime session behind the runner interface (torch tensors in, torch tensors out).

    Inputs are handed to ORT as host arrays; outputs come back on ``device`` (the zero-copy GPU path is the
    TensorRT backend). ``threads``: intra-op threads (default: torch's setting, so both backends compare fairly).
    """

    def __init__(self, path: str | Path, providers: Sequence[str] = ("CPUExecutionProvider",),
                 threads: int | None = None, optimized: bool = False, device: torch.device | str = "cpu"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        # No busy-waiting between runs: a spinning pool steals the cores the node's other threads need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # an artifact saved by build.optimize_for_onnxruntime is already optimised
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if optimized
                                         else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.device = torch.device(device)

    def __call__(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(tensors) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs ({', '.join(self.inputs)}); got {len(tensors)}")
        feed = {n: np.ascontiguousarray(t.detach().cpu().numpy()) for n, t in zip(self.inputs, tensors, strict=True)}
        outs = self.session.run(self.outputs, feed)
        return tuple(torch.from_numpy(o).to(self.device) for o in outs)


class TensorKVCache:
    """KV cache of the exported LLM: one tensor ``[L, 2, B, H_kv, T, d]`` (``None`` before the first prefill).

    Provides ``batch_repeat_interleave`` like transformers' ``DynamicCache`` (``generation.prefill`` uses it).
    """

    def __init__(self) -> None:
        self.kv: torch.Tensor | None = None

    def get_seq_length(self) -> int:
        return 0 if self.kv is None else int(self.kv.shape[4])

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.kv is not None:
            self.kv = self.kv.repeat_interleave(repeats, dim=2)


class EngineLanguageModel:
    """The model's language side with the decoder layers run by an ``llm`` runner.

    Embedding lookups (``embed_ids``/``embed_prompt``) and the LM head stay on the torch model.
    """

    def __init__(self, model, runner: Runner) -> None:
        self.model = model
        self.runner = runner
        self.stage = LanguageStage(model)  # only for kv_shape

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def config(self):
        return self.model.config

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_ids(ids)

    def embed_prompt(self, ids: list[int], image_embeds: torch.Tensor | None) -> torch.Tensor:
        return self.model.embed_prompt(ids, image_embeds)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_logits(hidden)

    def new_cache(self) -> TensorKVCache:
        return TensorKVCache()

    def repeat_cache(self, cache: TensorKVCache, repeats: int) -> TensorKVCache:
        """A new cache holding ``cache.kv [L,2,B,H,T,d]`` repeated along the batch (``cache`` unchanged)."""
        new = TensorKVCache()
        new.kv = cache.kv.repeat_interleave(repeats, dim=2) if cache.kv is not None else None
        return new

    def decoder(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                cache: TensorKVCache | None) -> torch.Tensor:
        """``[B,T,D]`` -> last-layer normed hidden states ``[B,T,D]``; ``cache`` is updated in place."""
        b = inputs_embeds.shape[0]
        past = cache.kv if cache is not None and cache.kv is not None else None
        if past is None:
            past = torch.zeros(self.stage.kv_shape(b, 0), dtype=inputs_embeds.dtype, device=inputs_embeds.device)
        hidden, present = self.runner(inputs_embeds, attention_mask.long(), position_ids.long(), past)
        if cache is not None:
            cache.kv = present
        return hidden.to(inputs_embeds.dtype)


class InferenceStages:
    """The per-frame stages of one model on one backend (see the module docstring)."""

    def __init__(self, model, backend: str = "torch", runners: dict[str, Runner] | None = None,
                 mask_size: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.model = model
        self.backend = backend
        self.runners = dict(runners or {})
        self.mask_size = mask_size
        llm = self.runners.get("llm")
        self.language_model = EngineLanguageModel(model, llm) if llm is not None else model

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised ``[1,3,S,S]`` -> projected patch embeddings ``[P,D]``."""
        runner = self.runners.get("vision")
        x = pixel_values.to(self.model.device, self.model.dtype)
        if runner is None:
            return self.model.encode_image(x)
        return runner(x)[0].to(self.model.dtype)

    def mvloc(self, contact_states: torch.Tensor, render_embeddings: torch.Tensor, cam_params: torch.Tensor,
              mask_size: int, render_index: torch.Tensor | None = None) -> torch.Tensor:
        """Γ + MV-Loc for every query of one call: ``[K,D]`` hidden states -> mask logits ``[K,V,R,R]``.

        Render sets: ``[V,C,h,w]`` + ``[V,5]`` (one set for every row: the body), or ``[N,V,C,h,w]`` + ``[N,V,5]``
        (or ``[V,5]`` shared) with ``render_index [K]`` naming row k's set (default: set k). Engines run the
        whole call at once (the ``mvloc`` graph takes the N sets and the index); torch runs the model's
        :class:`~interactvlm_ros.model.mvloc.MVLoc` on the sets gathered per row (one set: broadcast)."""
        m = self.model
        runner = self.runners.get("mvloc")
        k = contact_states.shape[0]
        emb = render_embeddings.to(m.device, m.dtype)
        cams = cam_params.to(m.device, m.dtype)
        if emb.dim() == 5:
            if cams.dim() == 2:
                cams = cams.expand(emb.shape[0], -1, -1)
            if render_index is None:
                if emb.shape[0] != k:
                    raise ValueError(f"{k} queries over {emb.shape[0]} render sets need a render_index")
                render_index = torch.arange(k)
            render_index = torch.as_tensor(render_index, dtype=torch.long, device=m.device)
            if render_index.shape != (k,) or (k and not 0 <= int(render_index.min()) <= int(render_index.max())
                                                     < emb.shape[0]):
                raise ValueError(f"render_index must hold one index in [0, {emb.shape[0]}) per query; "
                                 f"got {render_index.tolist()}")
        elif render_index is not None:
            raise ValueError("render_index needs render sets stacked [N,V,C,h,w]")
        if runner is None:
            e = m.contact_embeddings(contact_states)
            if emb.dim() == 5:
                emb, cams = emb[render_index], cams[render_index]
            return m.mvloc(mask_size=mask_size)(e, emb, cams)
        if mask_size != self.mask_size:
            raise ValueError(f"the {self.backend} MV-Loc engine was built for {self.mask_size}px masks, "
                             f"{mask_size}px were asked (model render_resolution changed? rebuild the engines)")
        if emb.dim() == 4:  # one render set for every query
            emb, cams = emb[None], cams[None]
            render_index = torch.zeros(k, dtype=torch.long, device=m.device)
        return runner(contact_states.to(m.dtype), emb, cams, render_index)[0]

    def embed_images(self, images: np.ndarray, progress: bool = False) -> torch.Tensor:
        """SAM image embeddings ``[V,C,h,w]`` of uint8 renders ``[V,H,W,3]``."""
        sam = self.model.sam
        runner = self.runners.get("sam_encoder")
        if runner is None:
            return sam.embed_images(images, progress=progress)
        x, _ = sam.preprocess(images)
        return torch.cat([runner(x[i:i + 1])[0] for i in range(x.shape[0])], 0).to(self.model.dtype)
