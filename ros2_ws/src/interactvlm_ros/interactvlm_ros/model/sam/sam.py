"""``Sam``: image encoder + prompt encoder + mask decoder, with SAM's pre- and post-processing.

``Sam(...).state_dict()`` has exactly the keys of ``sam_vit_h_4b8939.pth`` (InteractVLM stores them under
``model.visual_model.``); ``pixel_mean``/``pixel_std`` are non-persistent buffers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .common import is_tracing
from .config import SamConfig
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after resizing so that the longest side is ``long_side`` (SAM's ``ResizeLongestSide``)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_uint8(images: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``uint8 [B, H, W, 3]`` -> ``[B, h, w, 3]`` exactly as SAM's ``ResizeLongestSide.apply_image`` does it:
    torchvision's ``resize`` of a PIL image, i.e. PIL ``Image.resize`` with ``BILINEAR`` (PIL's antialiased
    bilinear filter, rounded to uint8)."""
    from PIL import Image

    h, w = hw
    return np.stack([np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR)) for im in images])


class Sam(nn.Module):
    """SAM: ``image_encoder``, ``prompt_encoder``, ``mask_decoder``."""

    mask_threshold: float = 0.0

    def __init__(self, image_encoder: ImageEncoderViT, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder,
                 pixel_mean: tuple[float, ...] = PIXEL_MEAN, pixel_std: tuple[float, ...] = PIXEL_STD) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.config: SamConfig | None = None

    @classmethod
    def from_config(cls, config: SamConfig | str) -> Sam:
        """Build (randomly initialised) from a ``SamConfig`` or a preset name (``vit_h``, ``tiny``)."""
        if isinstance(config, str):
            config = SamConfig.preset(config)
        grid = config.embedding_size
        image_encoder = ImageEncoderViT(
            img_size=config.image_size, patch_size=config.patch_size, in_chans=config.in_chans,
            embed_dim=config.encoder_embed_dim, depth=config.encoder_depth, num_heads=config.encoder_num_heads,
            mlp_ratio=config.mlp_ratio, out_chans=config.prompt_embed_dim, qkv_bias=True, use_rel_pos=True,
            window_size=config.window_size, global_attn_indexes=config.encoder_global_attn_indexes)
        prompt_encoder = PromptEncoder(config.prompt_embed_dim, (grid, grid), (config.image_size, config.image_size),
                                       config.mask_in_chans)
        transformer = TwoWayTransformer(config.decoder_depth, config.prompt_embed_dim, config.decoder_num_heads,
                                        config.decoder_mlp_dim,
                                        attention_downsample_rate=config.attention_downsample_rate)
        mask_decoder = MaskDecoder(config.prompt_embed_dim, transformer, config.num_multimask_outputs,
                                   iou_head_depth=config.iou_head_depth, iou_head_hidden_dim=config.iou_head_hidden_dim)
        sam = cls(image_encoder, prompt_encoder, mask_decoder)
        sam.config = config
        return sam

    @property
    def image_size(self) -> int:
        return self.image_encoder.img_size

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, images: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images -> (normalised, longest-side-resized, bottom/right zero-padded ``[B, 3, S, S]``, (h, w) after resize).

        Accepts numpy ``uint8`` HWC (``[H, W, 3]`` or ``[B, H, W, 3]``) or torch CHW (``[3, H, W]`` or
        ``[B, 3, H, W]``) with values in 0..255. ``(h, w)`` is the ``input_size`` for :meth:`postprocess_masks`.
        Images that are not already ``image_size`` on their longest side are resized like the reference
        (:func:`resize_uint8`: PIL bilinear on uint8, the same grey levels) when they are uint8 (numpy or torch);
        float tensors are resized by torch's antialiased bilinear interpolation (within one grey level of it).
        """
        if isinstance(images, np.ndarray):
            if images.ndim not in (3, 4) or images.shape[-1] != 3:
                raise ValueError(f"numpy images must be HWC uint8 [H, W, 3] or [B, H, W, 3]; got {images.shape}")
            x = torch.from_numpy(np.ascontiguousarray(images))
            x = (x[None] if x.dim() == 3 else x).permute(0, 3, 1, 2)
        elif isinstance(images, torch.Tensor):
            if images.dim() not in (3, 4) or images.shape[-3] != 3:
                raise ValueError(f"torch images must be CHW [3, H, W] or [B, 3, H, W] in 0..255; "
                                 f"got {list(images.shape)}")
            x = images[None] if images.dim() == 3 else images
        else:
            raise ValueError(f"images must be a numpy array or torch tensor; got {type(images).__name__}")
        s = self.image_size
        new_hw = preprocess_shape(x.shape[-2], x.shape[-1], s)
        if new_hw != tuple(x.shape[-2:]) and x.dtype == torch.uint8:
            resized = resize_uint8(x.permute(0, 2, 3, 1).cpu().numpy(), new_hw)
            x = torch.from_numpy(resized).permute(0, 3, 1, 2)
        x = x.to(self.device, torch.float32)
        if new_hw != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=new_hw, mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.pixel_mean) / self.pixel_std
        x = F.pad(x, (0, s - new_hw[1], 0, s - new_hw[0]))
        return x.to(self.pixel_mean.dtype), new_hw

    @torch.no_grad()
    def embed_images(self, images: np.ndarray | torch.Tensor, batch_size: int | None = None,
                     progress: bool = False) -> torch.Tensor:
        """Image embeddings ``[B, C, S/p, S/p]`` of images in either layout accepted by :meth:`preprocess`.

        ``batch_size`` images per encoder call; default 4 on CUDA, 1 elsewhere (ViT-H's global-attention
        blocks hold a ``[heads, 4096, 4096]`` bias per image, ~1 GB in fp32).
        """
        if batch_size is None:
            batch_size = 4 if self.device.type == "cuda" else 1
        x, _ = self.preprocess(images)
        dtype = next(self.image_encoder.parameters()).dtype
        chunks = range(0, x.shape[0], batch_size)
        out = [self.image_encoder(x[i:i + batch_size].to(dtype))
               for i in tqdm(chunks, desc="SAM image encoder", unit="batch", disable=not progress)]
        return torch.cat(out, dim=0)

    def postprocess_masks(self, masks: torch.Tensor, input_size: tuple[int, int],
                          original_size: tuple[int, int]) -> torch.Tensor:
        """Low-res logits ``[..., h, w]`` -> ``[..., H, W]`` at ``original_size`` (see :func:`postprocess_masks`)."""
        return postprocess_masks(masks, self.image_size, input_size, original_size)


def postprocess_masks(masks: torch.Tensor, image_size: int, input_size: tuple[int, int],
                      original_size: tuple[int, int]) -> torch.Tensor:
    """Low-res logits ``[..., h, w]`` -> ``[..., H, W]`` at ``original_size``.

    Bilinear upscale to the padded ``image_size`` square, crop the padding (``input_size`` = the resized image's
    (h, w)), bilinear resize to ``original_size`` (skipped when it equals ``input_size``). Sizes are static.
    """
    if not is_tracing() and masks.dim() < 2:
        raise ValueError(f"masks must be [..., h, w]; got {list(masks.shape)}")
    if not (0 < input_size[0] <= image_size and 0 < input_size[1] <= image_size):
        raise ValueError(f"input_size {tuple(input_size)} must lie within the {image_size}x{image_size} input")
    lead = masks.shape[:-2]
    x = masks.reshape(-1, 1, masks.shape[-2], masks.shape[-1])
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = x[..., : input_size[0], : input_size[1]]
    if tuple(original_size) != tuple(input_size):
        x = F.interpolate(x, size=tuple(original_size), mode="bilinear", align_corners=False)
    return x.reshape(-1, *lead[1:], x.shape[-2], x.shape[-1]) if lead else x[0, 0]
