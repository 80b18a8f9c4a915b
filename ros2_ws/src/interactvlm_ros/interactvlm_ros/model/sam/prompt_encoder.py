"""SAM prompt encoder: points, boxes, masks and (InteractVLM/LISA) text embeddings -> sparse + dense prompts.

Keys follow segment-anything (``pe_layer.positional_encoding_gaussian_matrix``, ``point_embeddings.{0..3}``,
``not_a_point_embed``, ``mask_downscaling.{0,1,3,4,6}``, ``no_mask_embed``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d, is_tracing


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) coordinates: ``[..., 2] -> [..., 2 * num_pos_feats]``."""

    def __init__(self, num_pos_feats: int = 128, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats))
        self._grid_cache: dict[tuple, tuple[int, torch.Tensor]] = {}

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """``coords`` in [0, 1] -> sin/cos features."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix.to(coords.dtype)
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def _compute_grid(self, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        g = self.positional_encoding_gaussian_matrix
        y = (torch.arange(h, device=g.device, dtype=g.dtype) + 0.5) / h
        x = (torch.arange(w, device=g.device, dtype=g.dtype) + 0.5) / w
        grid = torch.stack([x[None, :].expand(h, w), y[:, None].expand(h, w)], dim=-1)
        return self._encode(grid).permute(2, 0, 1)  # [C, H, W]

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of the centres of an ``h x w`` grid: ``[C, H, W]``.

        Cached per (size, device, dtype); the cache is dropped when the gaussian matrix changes (its version
        counter or storage). Bypassed while tracing/exporting so graphs never capture a stale tensor.
        """
        if is_tracing():
            return self._compute_grid(size)
        g = self.positional_encoding_gaussian_matrix
        if g.is_meta:
            return self._compute_grid(size)
        key = (int(size[0]), int(size[1]), g.device, g.dtype)
        stamp = (g._version, g.data_ptr())
        hit = self._grid_cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with torch.no_grad():
            grid = self._compute_grid(size)
        self._grid_cache[key] = (stamp, grid)
        return grid

    def forward_with_coords(self, coords_input: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Pixel coordinates ``[B, N, 2]`` (x, y) of an ``image_size`` (H, W) image -> ``[B, N, C]``."""
        coords = coords_input.clone().to(self.positional_encoding_gaussian_matrix.dtype)
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._encode(coords)


class PromptEncoder(nn.Module):
    """Encodes prompts for the mask decoder.

    Returns ``sparse [B, N, C]`` (points, box corners, then text embeddings) and ``dense [B, C, h, w]``
    (downscaled mask, or ``no_mask_embed`` broadcast when no mask is given).
    """

    def __init__(self, embed_dim: int, image_embedding_size: tuple[int, int], input_image_size: tuple[int, int],
                 mask_in_chans: int, activation: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = tuple(input_image_size)
        self.image_embedding_size = tuple(image_embedding_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4  # positive point, negative point, 2 box corners
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image-embedding grid: ``[1, C, h, w]`` (cached, see PositionEmbeddingRandom)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def no_mask_dense(self, batch: int = 1) -> torch.Tensor:
        """The dense prompt without a mask, ``[batch, C, h, w]`` (an expanded view, no copy)."""
        h, w = self.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centres
        if pad:
            points = torch.cat([points, torch.zeros_like(points[:, :1])], dim=1)
            labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        lab = labels[..., None]
        emb = torch.where(lab == -1, self.not_a_point_embed.weight.to(emb.dtype).expand_as(emb), emb)
        emb = emb + (lab == 0).to(emb.dtype) * self.point_embeddings[0].weight
        emb = emb + (lab == 1).to(emb.dtype) * self.point_embeddings[1].weight
        return emb

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        first = emb[:, :1] + self.point_embeddings[2].weight
        second = emb[:, 1:] + self.point_embeddings[3].weight
        return torch.cat([first, second], dim=1)

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None = None, boxes: torch.Tensor | None = None,
                masks: torch.Tensor | None = None, text_embeds: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> ``(sparse [B, N, C], dense [B, C, h, w])``.

        points: (coords ``[B, P, 2]`` pixel x,y in the padded input, labels ``[B, P]`` 1/0/-1); boxes ``[B, 4]``
        (x0, y0, x1, y1); masks ``[B, 1, 4h, 4w]`` low-res logits; text_embeds ``[B, T, C]`` (contact tokens).
        """
        inputs = [t for t in (points[0] if points is not None else None, boxes, masks, text_embeds) if t is not None]
        bs = inputs[0].shape[0] if inputs else 1
        pieces = []  # concatenated only when there are several (keeps a traced batch size dynamic)
        if points is not None:
            coords, labels = points
            if coords.dim() != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(f"points must be coords [B, P, 2] and labels [B, P]; got {list(coords.shape)} "
                                 f"and {list(labels.shape)}")
            pieces.append(self._embed_points(coords, labels, pad=boxes is None))
        if boxes is not None:
            if boxes.shape[-1] != 4:
                raise ValueError(f"boxes must be [B, 4] (x0, y0, x1, y1); got {list(boxes.shape)}")
            pieces.append(self._embed_boxes(boxes))
        if text_embeds is not None:
            if not is_tracing() and (text_embeds.dim() != 3 or text_embeds.shape[-1] != self.embed_dim):
                raise ValueError(f"text_embeds must be [B, T, {self.embed_dim}]; got {list(text_embeds.shape)}")
            pieces.append(text_embeds.to(self.no_mask_embed.weight.dtype))
        if not pieces:
            ref = self.no_mask_embed.weight
            sparse = torch.empty((bs, 0, self.embed_dim), device=ref.device, dtype=ref.dtype)
        else:
            sparse = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
        if masks is not None:
            if masks.dim() != 4 or masks.shape[1:] != (1, *self.mask_input_size):
                raise ValueError(f"masks must be [B, 1, {self.mask_input_size[0]}, {self.mask_input_size[1]}]; "
                                 f"got {list(masks.shape)}")
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_dense(bs)
        return sparse, dense
