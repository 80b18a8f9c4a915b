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
mvloc          contact_states [K,D], image_embeddings [N,V,C,h,w],          K (contact queries of the frame),
               cam_params [N,V,5], render_index [K] (int64)                 N (render sets: the body, each
               -> mask_logits [K,V,R,R]                                     object mesh)
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
    """Γ + FeatLift + SAM prompt encoder/mask decoder for every contact query of a frame in one call.

    ``forward(contact_states [K,D], image_embeddings [N,V,C,h,w], cam_params [N,V,5], render_index [K] int64)
    -> mask_logits [K,V,R,R]``: row k is localised on render set ``render_index[k]`` (the body's renders for every
    human query, one set per object mesh), K and N dynamic. The result is :class:`~interactvlm_ros.model.mvloc.
    MVLoc`'s on ``image_embeddings[render_index]`` (within float rounding), computed with less work per query:

    * the decoder's image-side work that does not depend on the query (dense prompt added, the first block's
      key/value projections of the image for token→image attention and its query projection for image→token
      attention) runs once per render set, then is gathered per query;
    * only what the single-mask output reads is computed after the last block: the final token→image attention
      for the first mask token alone, with the key/value projections moved to that one query's side
      (``softmax(q·(W_k x + b_k)) = softmax((W_kᵀq)·x)`` and ``Σ p (W_v x + b_v) = W_v (Σ p x) + b_v``), one
      hypernetwork MLP, no IoU head;
    * the output upscaling runs channels-last on the image tokens as they are (two matmuls in place of the
      transposed convolutions, no layout transposes of the feature maps; :meth:`_upscaled_mask`).

    The blocks are written out over the model's own modules (shared, not copied) like :class:`LanguageStage`.
    """

    spec = StageSpec("mvloc", ("contact_states", "image_embeddings", "cam_params", "render_index"), ("mask_logits",),
                     {"contact_states": {0: "queries"}, "image_embeddings": {0: "render_sets"},
                      "cam_params": {0: "render_sets"}, "render_index": {0: "queries"},
                      "mask_logits": {0: "queries"}})

    def __init__(self, model, mask_size: int) -> None:
        super().__init__()
        self.projection = model.model.text_hidden_fcs
        self.mvloc = model.mvloc(mask_size=mask_size)
        self.mask_size = int(mask_size)

    @staticmethod
    def _heads(attn, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (attn.num_heads, -1)).transpose(-3, -2)  # [..., heads, N, d]

    def _attend(self, attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """SAM ``Attention.forward`` on already projected ``q``/``k``/``v`` ``[..., N, internal]``."""
        q, k, v = self._heads(attn, q), self._heads(attn, k), self._heads(attn, v)
        probs = torch.softmax((q * attn.scale) @ k.transpose(-2, -1), dim=-1)
        return attn.out_proj((probs @ v).transpose(-3, -2).flatten(-2))

    def _block(self, layer, queries, keys, query_pe, key_pe, render_index=None):
        """One ``TwoWayAttentionBlock``; with ``render_index`` the image side ``keys [N,V,HW,C]`` belongs to the
        render sets and its query-independent projections run once per set before being gathered per query."""
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + layer.self_attn(q, q, queries)
        queries = layer.norm1(queries)
        k = keys + key_pe
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        t2i_k, t2i_v, i2t_q = t2i.k_proj(k), t2i.v_proj(keys), i2t.q_proj(k)
        if render_index is not None:
            keys, t2i_k, t2i_v, i2t_q = (t[render_index] for t in (keys, t2i_k, t2i_v, i2t_q))
        queries = layer.norm2(queries + self._attend(t2i, t2i.q_proj(queries + query_pe), t2i_k, t2i_v))
        queries = layer.norm3(queries + layer.mlp(queries))
        q = queries + query_pe
        keys = layer.norm4(keys + self._attend(i2t, i2t_q, i2t.k_proj(q), i2t.v_proj(queries)))
        return queries, keys

    def _final_mask_token(self, attn, token: torch.Tensor, keys: torch.Tensor, key_pe: torch.Tensor) -> torch.Tensor:
        """``final_attn_token_to_image`` for one query token ``[K,V,1,C]`` over ``keys [K,V,HW,C]`` with the key and
        value projections applied on the query's side (see the class docstring; the key bias adds the same score
        to every key, which softmax ignores)."""
        h = attn.num_heads
        w_k = attn.k_proj.weight.unflatten(0, (h, -1))  # [H, d, C]
        w_v = attn.v_proj.weight.unflatten(0, (h, -1))
        q = self._heads(attn, attn.q_proj(token))  # [K, V, H, 1, d]
        qk = (q * attn.scale) @ w_k  # [K, V, H, 1, C]
        probs = torch.softmax(qk @ (keys + key_pe).unsqueeze(-3).transpose(-2, -1), dim=-1)  # [K, V, H, 1, HW]
        ctx = probs @ keys.unsqueeze(-3)  # [K, V, H, 1, C]
        out = ctx @ w_v.transpose(-2, -1) + attn.v_proj.bias.unflatten(0, (h, 1, -1))  # [K, V, H, 1, d]
        return attn.out_proj(out.transpose(-3, -2).flatten(-2))  # [K, V, 1, C]

    def forward(self, contact_states: torch.Tensor, image_embeddings: torch.Tensor, cam_params: torch.Tensor,
                render_index: torch.Tensor) -> torch.Tensor:
        mv = self.mvloc
        pe_enc, dec = mv.prompt_encoder, mv.mask_decoder
        tr = dec.transformer
        embeds = self.projection(contact_states)  # Γ: [K, C]
        dtype = embeds.dtype
        sparse = mv.feat_lift(embeds, cam_params[render_index])  # [K, V, C]: one prompt set per query
        if mv.splitter is not None:  # a joint model's branch
            sparse = mv.split(sparse)
        sparse = sparse.to(dtype)
        out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0).to(dtype)  # [1+M, C]
        tokens = torch.cat([out_tokens.expand(sparse.shape[0], -1, -1), sparse], dim=-2)[:, None]  # [K, 1, T, C]
        h, w = image_embeddings.shape[-2:]
        src = image_embeddings.to(dtype) + pe_enc.no_mask_dense(1).to(dtype)  # [N, V, C, h, w]
        keys = src.flatten(-2).transpose(-1, -2)  # [N, V, HW, C]
        key_pe = pe_enc.get_dense_pe().to(dtype).flatten(-2).transpose(-1, -2)  # [1, HW, C]
        queries = tokens
        for i, layer in enumerate(tr.layers):
            queries, keys = self._block(layer, queries, keys, tokens, key_pe, render_index if i == 0 else None)
        if not tr.layers:
            keys = keys[render_index]
        token = queries[..., 1:2, :]  # the first mask token: the single-mask output
        final = self._final_mask_token(tr.final_attn_token_to_image, token + tokens[..., 1:2, :], keys, key_pe)
        token = tr.norm_final_attn(token + final)
        hyper = dec.output_hypernetworks_mlps[0](token)  # [K, V, 1, C/8]
        low = self._upscaled_mask(dec.output_upscaling, keys, hyper, h, w)  # [K, V, 4h, 4w]
        return mv.upscale(low, self.mask_size)

    @staticmethod
    def _upscaled_mask(up, keys: torch.Tensor, hyper: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``hyper · output_upscaling(keys as [C,h,w])`` channels-last: each stride-2 2x2 transposed convolution
        is one matmul onto the (row, col, channel) sub-pixels of its input position, SAM's LayerNorm2d a layer
        norm over the last axis, and the sub-pixels are put in place once, on the single-channel mask. ``keys
        [K,V,hw,C]``, ``hyper [K,V,1,C/8]`` -> ``[K,V,4h,4w]``."""
        conv1, norm, act1, conv2, act2 = up
        for conv in (conv1, conv2):
            if conv.kernel_size != (2, 2) or conv.stride != (2, 2) or conv.padding != (0, 0):
                raise ValueError("the channels-last upscaling needs SAM's 2x2 stride-2 transposed convolutions")
        c1, c2 = conv1.out_channels, conv2.out_channels
        w1 = conv1.weight.permute(0, 2, 3, 1).flatten(1)  # [C, 2*2*c1]: (row, col, channel)
        w2 = conv2.weight.permute(0, 2, 3, 1).flatten(1)  # [c1, 2*2*c2]
        x = (keys @ w1).unflatten(-1, (4, c1)) + conv1.bias  # [K, V, hw, 4, c1]
        x = act1(torch.nn.functional.layer_norm(x, (c1,), norm.weight, norm.bias, norm.eps))
        x = act2((x @ w2).unflatten(-1, (4, c2)) + conv2.bias)  # [K, V, hw, 4, 4, c2]
        m = (x.flatten(2, 4) @ hyper.transpose(-1, -2)).squeeze(-1)  # [K, V, hw*16]
        m = m.unflatten(-1, (h, w, 2, 2, 2, 2))  # (y, x, row1, col1, row2, col2)
        return m.permute(0, 1, 2, 4, 6, 3, 5, 7).reshape(m.shape[0], m.shape[1], 4 * h, 4 * w)


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
        k, n = 3, 2  # differ from each other and from the number of views
        return {"contact_states": torch.zeros(k, cfg.text.hidden_size, device=dev, dtype=dt),
                "image_embeddings": torch.zeros(n, cfg.num_views, sam.prompt_encoder.embed_dim, h, w, device=dev,
                                                dtype=dt),
                "cam_params": torch.zeros(n, cfg.num_views, 5, device=dev, dtype=dt),
                "render_index": torch.tensor([0, 1, 1], device=dev)}
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

    ``max_objects`` bounds B (LLM batch), K (MV-Loc queries per call) and N (render sets per call);
    ``max_tokens`` the sequence (default: the model's ``max_position_embeddings``). The opt point is a typical
    frame: 4 objects, an image-sized prefix.
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
        # K queries per call (a frame's human queries on the body's renders: N = 1; its object queries: one
        # render set per mesh, N <= K); opt: 4 objects on 4 meshes
        d, v = cfg.text.hidden_size, cfg.num_views
        c, (h, w) = model.sam.prompt_encoder.embed_dim, model.sam.prompt_encoder.image_embedding_size
        k_opt = min(4, max_objects)
        return {"contact_states": ((1, d), (k_opt, d), (max_objects, d)),
                "image_embeddings": ((1, v, c, h, w), (k_opt, v, c, h, w), (max_objects, v, c, h, w)),
                "cam_params": ((1, v, 5), (k_opt, v, 5), (max_objects, v, 5)),
                "render_index": ((1,), (k_opt,), (max_objects,))}
    if stage in ("vision", "sam_encoder"):
        return {}
    raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
