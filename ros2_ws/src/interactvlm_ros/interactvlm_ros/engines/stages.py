"""The per-frame stages as export-ready modules with tensor-only inputs and outputs.

Each stage wraps modules of one :class:`~interactvlm_ros.model.interactvlm.InteractVLMForCausalLM` (shared, not
copied) and is what gets exported to ONNX and built into TensorRT plans. Stage names, I/O names and dynamic axes:

=============  ===========================================================  =======================================
stage          inputs -> outputs                                            dynamic axes
=============  ===========================================================  =======================================
vision         pixel_values [1,3,S,S] -> image_embeds [P,D]                 none
llm            inputs_embeds [B,T,D], attention_mask [B,Tp+T] (int64),      B, T, Tp (one graph for prefill and
               position_ids [B,T] (int64), past_key_values [L,2,B,H,Tp,d]   cached decode; Tp = 0 for the first
               -> hidden_states [B,T,D], present_key_values [L,2,B,H,Tp+T,d] prefill)
mvloc          contact_states [K,D], image_embeddings [V,C,h,w],            K (objects / contact tokens)
               cam_params [V,5] -> mask_logits [K,V,R,R]
sam_encoder    images [1,3,S_sam,S_sam] -> embeddings [1,C,h,w]             none
=============  ===========================================================  =======================================

The LLM stage is LLaMA's decoder layers written out over the model's own sub-modules (projections, RMSNorms,
MLPs, rotary embedding) with an explicit KV tensor and an additive attention bias, so the graph has plain
MatMul/Softmax attention that ONNX Runtime and TensorRT both run; token embedding lookups and the LM head stay
outside (one gather and one GEMV per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

STAGES = ("vision", "llm", "mvloc", "sam_encoder")
MASK_BIAS = -3.0e4  # finite (fp16-safe) additive bias for masked keys: a fully masked row stays NaN-free


@dataclass(frozen=True)
class StageSpec:
    """Names and dynamic axes of one exported stage (``dynamic``: input/output name -> {axis: axis name})."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict


class VisionStage(nn.Module):
    """CLIP tower + projector: ``pixel_values [1,3,S,S] -> image_embeds [P,D]``."""

    spec = StageSpec("vision", ("pixel_values",), ("image_embeds",), {})

    def __init__(self, model) -> None:
        super().__init__()
        self.tower = model.model.vision_tower
        self.projector = model.model.mm_projector

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        feats = self.tower(pixel_values)
        return self.projector(feats.to(self.projector.weight.dtype))[0]


class LanguageStage(nn.Module):
    """LLaMA decoder with an explicit KV tensor (see the module docstring for shapes).

    ``forward(inputs_embeds, attention_mask, position_ids, past_key_values) -> (hidden_states,
    present_key_values)``; ``hidden_states`` are the last layer's normed states (what the contact token reads).
    """

    spec = StageSpec(
        "llm", ("inputs_embeds", "attention_mask", "position_ids", "past_key_values"),
        ("hidden_states", "present_key_values"),
        {"inputs_embeds": {0: "batch", 1: "new"}, "attention_mask": {0: "batch", 1: "total"},
         "position_ids": {0: "batch", 1: "new"}, "past_key_values": {2: "batch", 4: "past"},
         "hidden_states": {0: "batch", 1: "new"}, "present_key_values": {2: "batch", 4: "total"}})

    def __init__(self, model) -> None:
        super().__init__()
        llama = model.model
        cfg = llama.config
        self.layers = llama.layers
        self.norm = llama.norm
        self.rotary = llama.rotary_emb
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim ** -0.5

    def kv_shape(self, batch: int, past: int) -> tuple[int, ...]:
        """``[L, 2, B, H_kv, past, d]``."""
        return (len(self.layers), 2, batch, self.num_kv_heads, past, self.head_dim)

    def _bias(self, attention_mask: torch.Tensor, new: torch.Tensor, past_len, dtype) -> torch.Tensor:
        """Additive attention bias ``[B,1,T,Tp+T]``: key j is visible to new token i iff mask[b,j] and j <= Tp+i."""
        k_idx = torch.cumsum(torch.ones_like(attention_mask[0]), 0) - 1          # [Tp+T]
        q_idx = torch.cumsum(torch.ones_like(new[0, :, 0], dtype=torch.long), 0) - 1 + past_len  # [T]
        visible = (k_idx[None, :] <= q_idx[:, None])[None, None] & (attention_mask[:, None, None, :] > 0)
        zero = torch.zeros((), dtype=dtype, device=new.device)
        return torch.where(visible, zero, torch.full_like(zero, MASK_BIAS))

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                past_key_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = inputs_embeds.shape[0], inputs_embeds.shape[1]
        past_len = past_key_values.shape[4]
        x = inputs_embeds
        cos, sin = self.rotary(x, position_ids)
        bias = self._bias(attention_mask, x, past_len, torch.float32)
        rep = self.num_heads // self.num_kv_heads
        presents = []
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            k = torch.cat([past_key_values[i, 0].to(k.dtype), k], dim=2)
            v = torch.cat([past_key_values[i, 1].to(v.dtype), v], dim=2)
            presents.append(torch.stack([k, v]))
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * self.scale + bias
            probs = torch.softmax(scores, dim=-1).to(v.dtype)
            out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim)
            x = x + attn.o_proj(out)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.norm(x), torch.stack(presents)


class MVLocStage(nn.Module):
    """Γ + FeatLift + SAM prompt encoder/mask decoder: contact hidden states -> mask logits ``[K,V,R,R]``."""

    spec = StageSpec("mvloc", ("contact_states", "image_embeddings", "cam_params"), ("mask_logits",),
                     {"contact_states": {0: "objects"}, "mask_logits": {0: "objects"}})

    def __init__(self, model, mask_size: int) -> None:
        super().__init__()
        self.projection = model.model.text_hidden_fcs
        self.mvloc = model.mvloc(mask_size=mask_size)
        self.mask_size = int(mask_size)

    def forward(self, contact_states: torch.Tensor, image_embeddings: torch.Tensor,
                cam_params: torch.Tensor) -> torch.Tensor:
        return self.mvloc(self.projection(contact_states), image_embeddings, cam_params)


class SamEncoderStage(nn.Module):
    """SAM ViT image encoder on one preprocessed render: ``[1,3,S,S] -> [1,C,h,w]``."""

    spec = StageSpec("sam_encoder", ("images",), ("embeddings",), {})

    def __init__(self, model) -> None:
        super().__init__()
        self.encoder = model.sam.image_encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)


def stage_module(model, stage: str, mask_size: int | None = None) -> nn.Module:
    """The export module of ``stage`` over ``model`` (``mask_size``: MV-Loc output resolution)."""
    if stage == "vision":
        return VisionStage(model).eval()
    if stage == "llm":
        return LanguageStage(model).eval()
    if stage == "mvloc":
        return MVLocStage(model, mask_size or model.config.render_resolution).eval()
    if stage == "sam_encoder":
        return SamEncoderStage(model).eval()
    raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")


def example_inputs(model, stage: str, mask_size: int | None = None) -> dict[str, torch.Tensor]:
    """Small example inputs (on the model's device and dtype) used to trace ``stage``; dynamic axes get sizes
    that differ from each other so the exporter cannot confuse them."""
    dev, dt = model.device, model.dtype
    cfg = model.config
    if stage == "vision":
        s = cfg.vision.image_size
        return {"pixel_values": torch.zeros(1, 3, s, s, device=dev, dtype=dt)}
    if stage == "llm":
        lm = LanguageStage(model)
        b, t, past = 2, 3, 5
        return {"inputs_embeds": torch.zeros(b, t, cfg.text.hidden_size, device=dev, dtype=dt),
                "attention_mask": torch.ones(b, past + t, device=dev, dtype=torch.long),
                "position_ids": torch.arange(past, past + t, device=dev).repeat(b, 1),
                "past_key_values": torch.zeros(lm.kv_shape(b, past), device=dev, dtype=dt)}
    if stage == "mvloc":
        sam = model.sam
        h, w = sam.prompt_encoder.image_embedding_size
        return {"contact_states": torch.zeros(2, cfg.text.hidden_size, device=dev, dtype=dt),
                "image_embeddings": torch.zeros(cfg.num_views, sam.prompt_encoder.embed_dim, h, w, device=dev,
                                                dtype=dt),
                "cam_params": torch.zeros(cfg.num_views, 5, device=dev, dtype=dt)}
    if stage == "sam_encoder":
        s = model.sam.image_size
        return {"images": torch.zeros(1, 3, s, s, device=dev, dtype=dt)}
    raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")


def stage_spec(stage: str) -> StageSpec:
    specs = {c.spec.name: c.spec for c in (VisionStage, LanguageStage, MVLocStage, SamEncoderStage)}
    if stage not in specs:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    return specs[stage]


def optimization_profile(model, stage: str, max_objects: int = 16, max_tokens: int | None = None
                         ) -> dict[str, tuple[tuple, tuple, tuple]]:
    """TensorRT (min, opt, max) shapes of the dynamic inputs of ``stage`` (empty for static stages).

    ``max_objects`` bounds B (LLM batch) and K (contact tokens); ``max_tokens`` the sequence (default: the
    model's ``max_position_embeddings``). The opt point is a typical frame: 4 objects, an image-sized prefix.
    """
    cfg = model.config
    if stage == "llm":
        lm = LanguageStage(model)
        d = cfg.text.hidden_size
        n = int(max_tokens or cfg.text.max_position_embeddings)
        b_opt = min(4, max_objects)
        t_opt = min(64, n)
        p_opt = min(int(cfg.vision.image_size // cfg.vision.patch_size) ** 2 + 64, n - t_opt)
        return {"inputs_embeds": ((1, 1, d), (b_opt, t_opt, d), (max_objects, n, d)),
                "attention_mask": ((1, 1), (b_opt, p_opt + t_opt), (max_objects, n)),
                "position_ids": ((1, 1), (b_opt, t_opt), (max_objects, n)),
                "past_key_values": (lm.kv_shape(1, 0), lm.kv_shape(b_opt, p_opt), lm.kv_shape(max_objects, n))}
    if stage == "mvloc":
        d = cfg.text.hidden_size
        return {"contact_states": ((1, d), (min(4, max_objects), d), (max_objects, d))}
    if stage in ("vision", "sam_encoder"):
        return {}
    raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
