"""The VLM's language side: LLaMA (``transformers.LlamaModel``) configuration and the multimodal input builder
that splices the projected CLIP patch embeddings into the token embeddings at the ``<image>`` placeholder.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig

from interactvlm_ros.model.configuration import TextConfig, TokenConfig


def llama_config(text: TextConfig, tokens: TokenConfig) -> LlamaConfig:
    """``LlamaConfig`` of the language model (untied head, SDPA attention, no rope scaling)."""
    cfg = LlamaConfig(
        vocab_size=text.vocab_size, hidden_size=text.hidden_size, intermediate_size=text.intermediate_size,
        num_hidden_layers=text.num_hidden_layers, num_attention_heads=text.num_attention_heads,
        num_key_value_heads=text.num_key_value_heads, rms_norm_eps=text.rms_norm_eps,
        max_position_embeddings=text.max_position_embeddings, rope_theta=text.rope_theta,
        hidden_act="silu", tie_word_embeddings=False, bos_token_id=tokens.bos, eos_token_id=tokens.eos,
        pad_token_id=tokens.pad, attention_bias=False, mlp_bias=False)
    cfg._attn_implementation = "sdpa"
    return cfg


def splice_image(token_embeds: torch.Tensor, ids: list[int], image_embeds: torch.Tensor,
                 image_id: int = -200) -> torch.Tensor:
    """Replace each ``image_id`` position of ``ids`` by the P image embeddings.

    ``token_embeds [T, D]`` are the embeddings of ``ids`` (placeholder rows are ignored), ``image_embeds [P, D]``
    -> ``[T - n + n·P, D]`` for n placeholders.
    """
    if len(ids) != token_embeds.shape[0]:
        raise ValueError(f"{len(ids)} ids but {token_embeds.shape[0]} embeddings")
    pieces = []
    start = 0
    for i, tok in enumerate(ids):
        if tok == image_id:
            pieces.append(token_embeds[start:i])
            pieces.append(image_embeds.to(token_embeds.dtype))
            start = i + 1
    pieces.append(token_embeds[start:])
    return torch.cat(pieces, 0)
