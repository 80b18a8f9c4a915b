"""``InteractVLMForCausalLM``: the assembled model, with the official checkpoint's module names.

State-dict layout (official manifest, reference/official_checkpoint_keys)::

    model.embed_tokens / model.layers.N.* / model.norm     LLaMA (InteractVLMModel is a transformers LlamaModel)
    model.mm_projector                                     CLIP -> LLaMA Linear
    model.vision_tower.*                                   CLIP ViT (not in official checkpoints: model.clip_dir)
    model.visual_model.{image_encoder,prompt_encoder,mask_decoder}.*   SAM
    model.text_hidden_fcs.0.{0,2}                          Γ
    lm_head                                                untied LM head
    cam_pose_encoder.*                                     FeatLift (top level)
    attention_splitter.*                                   joint model (Gen-Hu-Obj) only (top level)

Forward pieces (all shapes without the batch unless stated):
``encode_image [1,3,S,S] -> [P,D]``; ``embed_prompt(ids, image) -> [T,D]``; ``decoder`` (LLaMA, optional KV
cache from ``new_cache``/``repeat_cache``) ``[B,T,D] -> [B,T,D]``; ``lm_logits``; ``contact_embeddings [K,D] ->
[K,256]``; ``mvloc`` (contact embeddings + render embeddings + cameras -> mask logits ``[K,V,R,R]``).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, LlamaModel

from interactvlm_ros.model.configuration import InteractVLMConfig
from interactvlm_ros.model.language import llama_config, splice_image
from interactvlm_ros.model.mvloc import AttentionSplitter, ContactProjection, FeatLift, MVLoc
from interactvlm_ros.model.sam import Sam, SamConfig
from interactvlm_ros.model.vision import Projector, VisionTower

VISION_TOWER_PREFIX = "model.vision_tower."


def sam_config(cfg: InteractVLMConfig) -> SamConfig:
    """The SAM config of ``cfg.sam`` (``{"preset": name, **overrides}``)."""
    spec = dict(cfg.sam)
    base = SamConfig.preset(spec.pop("preset"))
    if "encoder_global_attn_indexes" in spec:
        spec["encoder_global_attn_indexes"] = tuple(spec["encoder_global_attn_indexes"])
    return replace(base, **spec) if spec else base


class InteractVLMModel(LlamaModel):
    """``model.*``: LLaMA plus the vision tower, projector, SAM (``visual_model``) and Γ (``text_hidden_fcs``)."""

    def __init__(self, cfg: InteractVLMConfig, vision_tower: bool = True):
        super().__init__(llama_config(cfg.text, cfg.tokens))
        if vision_tower:
            self.vision_tower = VisionTower(cfg.vision)
        self.mm_projector = Projector(cfg.vision.hidden_size, cfg.text.hidden_size)
        sam_cfg = sam_config(cfg)
        if sam_cfg.prompt_embed_dim != cfg.out_dim:
            raise ValueError(f"SAM prompt_embed_dim {sam_cfg.prompt_embed_dim} != out_dim {cfg.out_dim}")
        self.visual_model = Sam.from_config(sam_cfg)
        self.text_hidden_fcs = ContactProjection(cfg.text.hidden_size, cfg.out_dim)


class InteractVLMForCausalLM(nn.Module):
    """The whole InteractVLM network (VLM Ψ, Γ, FeatLift Φ, SAM Θ/Ω). See the module docstring for keys."""

    def __init__(self, cfg: InteractVLMConfig, vision_tower: bool = True):
        super().__init__()
        self.config = cfg
        self.model = InteractVLMModel(cfg, vision_tower=vision_tower)
        self.lm_head = nn.Linear(cfg.text.hidden_size, cfg.text.vocab_size, bias=False)
        if cfg.cam_conditioning:
            self.cam_pose_encoder = FeatLift(num_views=cfg.num_views, out_dim=cfg.out_dim)
        if cfg.token_type == "Gen-Hu-Obj":
            self.attention_splitter = AttentionSplitter(input_dim=cfg.out_dim)
        self._mvloc: MVLoc | None = None
        self._branch_mvlocs: dict[tuple[int, str], MVLoc] = {}

    @classmethod
    def build(cls, cfg: InteractVLMConfig, device: str | torch.device = "cpu", vision_tower: bool = True,
              seed: int | None = None) -> InteractVLMForCausalLM:
        """Build the modules directly on ``device``.

        On the CPU the random weights are seeded by ``cfg.seed`` (``seed`` overrides it) without touching the
        global RNG; on an accelerator they are unseeded (use this for weights that are loaded next: 13B never
        passes through host memory); on ``meta`` nothing is allocated (key/shape checks).
        """
        device = torch.device(device)
        if device.type == "cpu":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed if seed is None else seed)
                model = cls(cfg, vision_tower=vision_tower)
        else:
            with torch.device(device):
                model = cls(cfg, vision_tower=vision_tower)
        return model.eval()

    # ----------------------------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def sam(self) -> Sam:
        return self.model.visual_model

    def has_vision_tower(self) -> bool:
        return hasattr(self.model, "vision_tower")

    def set_vision_tower(self, tower: VisionTower) -> None:
        self.model.vision_tower = tower.to(self.device)

    def with_render_resolution(self, size: int) -> InteractVLMForCausalLM:
        """A copy whose canonical renders and SAM input are ``size`` px (a ``size/patch`` embedding grid, masks
        4× that): every weight is kept, and the SAM image encoder's position embeddings (absolute
        ``[1, g, g, C]``, global-attention relative ``[2g-1, C']``) are resampled to the new grid. For fine-tuning
        a model trained at a low resolution at a higher one."""
        cfg = replace(self.config, render_resolution=int(size), sam={**self.config.sam, "image_size": int(size)})
        new_grid = sam_config(cfg).embedding_size  # validates the size against the patch
        model = type(self).build(cfg, vision_tower=self.has_vision_tower())
        want = model.state_dict()
        state = {}
        for name, value in self.state_dict().items():
            shape = want[name].shape
            if value.shape != shape:
                if name.endswith("pos_embed"):  # [1, g, g, C]
                    value = F.interpolate(value.permute(0, 3, 1, 2).float(), size=(new_grid, new_grid),
                                          mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
                elif name.endswith(("rel_pos_h", "rel_pos_w")):  # [2g-1, C']
                    value = F.interpolate(value.t()[None].float(), size=shape[0], mode="linear",
                                          align_corners=False)[0].t()
                else:
                    raise ValueError(f"{name}: {list(value.shape)} cannot be resampled from "
                                     f"{self.config.render_resolution} px to {size} px")
            state[name] = value.to(want[name].dtype)
        model.load_state_dict(state)
        return model.to(self.device).train(self.training)

    def checkpoint_state_dict(self, include_vision_tower: bool = False) -> dict[str, torch.Tensor]:
        """``state_dict()``; without the vision tower (the official layout) unless asked."""
        sd = self.state_dict()
        if not include_vision_tower:
            sd = {k: v for k, v in sd.items() if not k.startswith(VISION_TOWER_PREFIX)}
        return sd

    # ----------------------------------------------------------------------------------- VLM pieces
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised ``[1,3,S,S]`` -> projected patch embeddings ``[P, D]``."""
        if not self.has_vision_tower():
            raise RuntimeError("this model has no vision tower loaded (official checkpoints need model.clip_dir)")
        feats = self.model.vision_tower(pixel_values.to(self.device))
        return self.model.mm_projector(feats.to(self.model.mm_projector.weight.dtype))[0]

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``[B,T]`` -> embeddings ``[B,T,D]``."""
        return self.model.embed_tokens(ids.to(self.device))

    def embed_prompt(self, ids: list[int], image_embeds: torch.Tensor | None) -> torch.Tensor:
        """Prompt ids (may contain the ``<image>`` placeholder) -> embeddings ``[T', D]`` with the image spliced."""
        image_id = self.config.tokens.image
        safe = torch.tensor([0 if i == image_id else i for i in ids], dtype=torch.long, device=self.device)
        emb = self.model.embed_tokens(safe)
        if image_id in ids:
            if image_embeds is None:
                raise ValueError("prompt has an <image> placeholder but no image embeddings were given")
            emb = splice_image(emb, ids, image_embeds, image_id)
        return emb

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.model.config)

    def repeat_cache(self, cache: DynamicCache, repeats: int) -> DynamicCache:
        """A new cache holding ``cache``'s keys/values ``[B,H,T,d]`` repeated along the batch (``cache`` unchanged)."""
        new = self.new_cache()
        for i, layer in enumerate(cache.layers):
            new.update(layer.keys.repeat_interleave(repeats, 0), layer.values.repeat_interleave(repeats, 0), i)
        return new

    def decoder(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                cache: DynamicCache | None) -> torch.Tensor:
        """LLaMA over ``[B,T,D]`` embeddings -> last-layer (normed) hidden states ``[B,T,D]``.

        ``attention_mask [B, past+T]`` (1 = attend), ``position_ids [B,T]``; ``cache`` is updated in place.
        """
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                         cache=cache, use_cache=cache is not None)
        return out.last_hidden_state

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)

    def contact_embeddings(self, states: torch.Tensor) -> torch.Tensor:
        """Γ: hidden states predicting the contact token ``[K, D]`` -> ``[K, out_dim]``."""
        return self.model.text_hidden_fcs(states)

    # ----------------------------------------------------------------------------------- MV-Loc
    def mvloc(self, mask_size: int | None = None) -> MVLoc:
        """MV-Loc sharing this model's SAM prompt encoder / mask decoder and FeatLift (not a sub-module)."""
        if not hasattr(self, "cam_pose_encoder"):
            raise RuntimeError("this model has no camera conditioning (cam_pose_encoder): it only supports the 2D "
                               "mode (predict_2d / infer --mode 2d)")
        size = mask_size or self.sam.image_size
        if self._mvloc is None or self._mvloc.mask_size != size:
            object.__setattr__(self, "_mvloc", MVLoc.from_sam(self.sam, self.cam_pose_encoder, mask_size=size))
        return self._mvloc

    @property
    def is_joint(self) -> bool:
        """The joint human-object model (``Gen-Hu-Obj``: ``[HSEG]``/``[OSEG]`` and ``attention_splitter``)."""
        return hasattr(self, "attention_splitter")

    def branch_mvloc(self, branch: str, mask_size: int | None = None) -> MVLoc:
        """The joint model's MV-Loc for ``branch`` ("human": ``[HSEG]``, "object": ``[OSEG]``): FeatLift, then
        its half of ``attention_splitter``, then SAM's decoder (shared modules, not sub-modules)."""
        if not self.is_joint:
            raise RuntimeError("branch_mvloc is for the joint model (token_type Gen-Hu-Obj); use mvloc()")
        base = self.mvloc(mask_size)
        key = (base.mask_size, branch)
        if key not in self._branch_mvlocs:
            self._branch_mvlocs[key] = MVLoc.from_sam(self.sam, self.cam_pose_encoder, mask_size=base.mask_size,
                                                      splitter=self.attention_splitter, branch=branch)
        return self._branch_mvlocs[key]

    def save_pretrained(self, directory, tokenizer):
        """``config.json`` + ``model.safetensors`` + tokenizer file (see ``checkpoint.save_pretrained``)."""
        from interactvlm_ros.model.checkpoint import save_pretrained

        return save_pretrained(self, tokenizer, directory)

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
