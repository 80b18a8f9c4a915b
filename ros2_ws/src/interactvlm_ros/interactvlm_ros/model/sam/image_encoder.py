"""SAM image encoder: a plain ViT with windowed + global attention, decomposed relative positions and a neck.

``[B, 3, S, S]`` normalised, padded images -> ``[B, out_chans, S/p, S/p]`` image embeddings. Key names follow
segment-anything's ``ImageEncoderViT`` (``patch_embed.proj``, ``pos_embed``, ``blocks.{i}``, ``neck.{0..3}``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock, is_tracing


class PatchEmbed(nn.Module):
    """Non-overlapping patches: ``[B, C, H, W] -> [B, H/p, W/p, D]`` (channels last)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


def relative_position_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative-position embeddings for every (query, key) pair along one axis: ``[q_size, k_size, C]``.

    ``rel_pos`` is ``[L, C]``; it is linearly resampled when ``L != 2 * max(q_size, k_size) - 1`` (a
    different input resolution than the one it was trained for). Sizes are static, so this traces to constants.
    """
    max_rel_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_rel_dist:
        rel_pos = F.interpolate(rel_pos.t()[None], size=max_rel_dist, mode="linear")[0].t()
    q_scale = max(k_size / q_size, 1.0)
    k_scale = max(q_size / k_size, 1.0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * q_scale
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * k_scale
    index = (q_coords - k_coords + (k_size - 1) * k_scale).long()
    return rel_pos[index]


class Attention(nn.Module):
    """Multi-head self-attention on a ``[B, H, W, D]`` grid with decomposed relative position bias."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, use_rel_pos: bool = True,
                 input_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if input_size is None:
                raise ValueError("input_size is required when use_rel_pos=True")
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        # [B, HW, 3, heads, hd] -> 3 x [B, heads, HW, hd]
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = None
        if self.use_rel_pos:
            rh = relative_position_table(h, h, self.rel_pos_h)  # [h, h, hd]
            rw = relative_position_table(w, w, self.rel_pos_w)  # [w, w, hd]
            rq = q.reshape(b, self.num_heads, h, w, -1)
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", rq, rh)  # [B, heads, h, w, kh]
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", rq, rw)  # [B, heads, h, w, kw]
            bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(b, self.num_heads, h * w, h * w)
        if is_tracing():  # plain ops for graph export (torch.export's SDPA decomposition breaks the reshape below)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = torch.softmax(attn if bias is None else attn + bias, dim=-1)
            out = attn @ v
        else:  # fused kernel (memory-efficient attention with bias on CUDA)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = out.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)


def window_partition(x: torch.Tensor, window_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """``[B, H, W, C] -> [B * nW, ws, ws, C]`` (zero-padded to a multiple of ``ws``) and the padded (Hp, Wp)."""
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.reshape(b, hp // window_size, window_size, wp // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, window_size: int, padded_hw: tuple[int, int],
                       hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, ws, ws, C] -> [B, H, W, C]`` (padding removed)."""
    hp, wp = padded_hw
    h, w = hw
    c = windows.shape[-1]
    x = windows.reshape(-1, hp // window_size, wp // window_size, window_size, window_size, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, c)
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x


class Block(nn.Module):
    """Pre-norm transformer block; attention inside ``window_size`` windows, or global when it is 0."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 use_rel_pos: bool = True, window_size: int = 0, input_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        attn_size = (window_size, window_size) if window_size > 0 else input_size
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos, input_size=attn_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, padded = window_partition(x, self.window_size)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded, (h, w))
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nn.Module):
    """ViT backbone + neck: ``[B, 3, S, S] -> [B, out_chans, S/p, S/p]``."""

    def __init__(self, img_size: int = 1024, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, out_chans: int = 256,
                 qkv_bias: bool = True, use_rel_pos: bool = True, window_size: int = 0,
                 global_attn_indexes: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
                  window_size=0 if i in global_attn_indexes else window_size, input_size=(grid, grid))
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not is_tracing() and (x.dim() != 4 or x.shape[1] != self.patch_embed.proj.in_channels
                                 or x.shape[-2:] != (self.img_size, self.img_size)):
            raise ValueError(f"image encoder expects [B, {self.patch_embed.proj.in_channels}, {self.img_size}, "
                             f"{self.img_size}] (normalised and padded, see Sam.preprocess); got {list(x.shape)}")
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
