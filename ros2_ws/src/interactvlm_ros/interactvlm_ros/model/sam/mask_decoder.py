"""SAM mask decoder: a two-way transformer over [iou token, mask tokens, prompt tokens] and the image embedding,
then hypernetwork MLPs that turn each mask token into weights for the upscaled image embedding.

Leading batch dims of the image embedding and of the prompts broadcast against each other (no copy of the
image embedding per prompt set). Keys follow segment-anything (``iou_token``, ``mask_tokens``, ``transformer``,
``output_upscaling.{0,1,3}``, ``output_hypernetworks_mlps.{i}.layers.{j}``, ``iou_prediction_head.layers.{j}``).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import MLP, LayerNorm2d, is_tracing
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predicts mask logits (4x the embedding grid) and their IoU scores from image + prompt embeddings."""

    def __init__(self, transformer_dim: int, transformer: TwoWayTransformer, num_multimask_outputs: int = 3,
                 activation: type[nn.Module] = nn.GELU, iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def _check(self, image_embeddings: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor) -> None:
        c = self.transformer_dim
        if image_embeddings.dim() < 4 or image_embeddings.shape[-3] != c:
            raise ValueError(f"image_embeddings must be [..., {c}, h, w]; got {list(image_embeddings.shape)}")
        if sparse.dim() < 3 or sparse.shape[-1] != c:
            raise ValueError(f"sparse_prompt_embeddings must be [..., N, {c}]; got {list(sparse.shape)}")
        if dense.shape[-3:] != image_embeddings.shape[-3:]:
            raise ValueError(f"dense_prompt_embeddings must be [..., {c}, {image_embeddings.shape[-2]}, "
                             f"{image_embeddings.shape[-1]}]; got {list(dense.shape)}")

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                dense_prompt_embeddings: torch.Tensor, multimask_output: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embeddings ``[..., C, h, w]``, image_pe ``[1, C, h, w]``, sparse ``[..., N, C]``,
        dense ``[..., C, h, w]`` (leading dims broadcast to L) -> masks ``[*L, M, 4h, 4w]``, iou ``[*L, M]``
        with M = 3 when ``multimask_output`` else 1.

        The standard SAM call (one image ``[1, C, h, w]``, B prompt sets ``[B, N, C]``) gives ``[B, M, ...]``;
        InteractVLM's (four views ``[4, C, h, w]``, one token set ``[1, 4, C]``) gives ``[4, M, ...]``.
        """
        if not is_tracing():
            self._check(image_embeddings, sparse_prompt_embeddings, dense_prompt_embeddings)
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings,
                                             dense_prompt_embeddings)
        if multimask_output:
            return masks[..., 1:, :, :], iou_pred[..., 1:]
        return masks[..., :1, :, :], iou_pred[..., :1]

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All ``num_mask_tokens`` masks ``[*L, 4, 4h, 4w]`` and IoU predictions ``[*L, 4]``."""
        h, w = image_embeddings.shape[-2:]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)  # [1+M, C]
        out_tokens = out_tokens.to(sparse_prompt_embeddings.dtype)
        out_tokens = out_tokens.expand(*sparse_prompt_embeddings.shape[:-2], -1, -1)
        tokens = torch.cat([out_tokens, sparse_prompt_embeddings], dim=-2)

        src = image_embeddings + dense_prompt_embeddings
        hs, src = self.transformer(src, image_pe, tokens)  # [*L, T, C], [*L, hw, C]
        iou_token_out = hs[..., 0, :]
        mask_tokens_out = hs[..., 1:1 + self.num_mask_tokens, :]

        lead = src.shape[:-2]
        src = src.transpose(-1, -2).reshape(-1, self.transformer_dim, h, w)  # [prod(L), C, h, w]
        upscaled = self.output_upscaling(src)  # [prod(L), C/8, 4h, 4w]
        up_h, up_w = upscaled.shape[-2:]
        # -1 for the first leading dim keeps it dynamic in traced graphs (K in MV-Loc)
        upscaled = upscaled.reshape(-1, *lead[1:], upscaled.shape[1], up_h * up_w)

        hyper_in = torch.stack([mlp(mask_tokens_out[..., i, :])
                                for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=-2)  # [*L, M, C/8]
        masks = (hyper_in @ upscaled).unflatten(-1, (up_h, up_w))
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred
