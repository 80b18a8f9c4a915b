"""``SamConfig``: the hyper-parameters of a SAM (image encoder, prompt encoder, mask decoder), with presets.

``vit_h`` is the SAM ViT-H used by InteractVLM (``sam_vit_h_4b8939.pth`` layout); ``tiny`` is a small model
with the same structure for tests, CPU training and the embedded default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class SamConfig:
    """SAM hyper-parameters. Names follow segment-anything's ``build_sam`` arguments."""

    image_size: int = 1024  # square input side after resize + pad
    patch_size: int = 16  # ViT patch = image-embedding stride
    in_chans: int = 3
    encoder_embed_dim: int = 1280
    encoder_depth: int = 32
    encoder_num_heads: int = 16
    encoder_global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    window_size: int = 14  # 0 = global attention in every block
    mlp_ratio: float = 4.0
    prompt_embed_dim: int = 256  # neck output channels = prompt/decoder width (Γ's output size)
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_num_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.encoder_embed_dim % self.encoder_num_heads:
            raise ValueError(f"encoder_embed_dim {self.encoder_embed_dim} must be divisible by "
                             f"encoder_num_heads {self.encoder_num_heads}")
        bad = [i for i in self.encoder_global_attn_indexes if not 0 <= i < self.encoder_depth]
        if bad:
            raise ValueError(f"encoder_global_attn_indexes {bad} outside 0..{self.encoder_depth - 1}")
        if self.prompt_embed_dim % 8 or self.prompt_embed_dim % (self.decoder_num_heads * 2):
            raise ValueError(f"prompt_embed_dim {self.prompt_embed_dim} must be divisible by 8 and by "
                             f"2*decoder_num_heads ({2 * self.decoder_num_heads})")
        object.__setattr__(self, "encoder_global_attn_indexes", tuple(int(i) for i in
                                                                       self.encoder_global_attn_indexes))

    @property
    def embedding_size(self) -> int:
        """Side of the image-embedding grid (64 for ViT-H at 1024)."""
        return self.image_size // self.patch_size

    @property
    def low_res_mask_size(self) -> int:
        """Side of the mask decoder's logits (4x the embedding grid; 256 for ViT-H)."""
        return 4 * self.embedding_size

    @classmethod
    def vit_h(cls) -> SamConfig:
        """SAM ViT-H (the official InteractVLM checkpoints)."""
        return cls()

    @classmethod
    def tiny(cls) -> SamConfig:
        """A small SAM with the same structure (≈2.9 M params, most in the 256-wide decoder and neck).

        256 px input, 16x16 embeddings, 64x64 low-res masks; prompt width 256 like the method (Γ's output).
        """
        return cls(image_size=256, patch_size=16, encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2,
                   encoder_global_attn_indexes=(1,), window_size=4, prompt_embed_dim=256, mask_in_chans=16,
                   decoder_depth=2, decoder_num_heads=8, decoder_mlp_dim=256, iou_head_hidden_dim=64)

    @classmethod
    def preset(cls, name: str) -> SamConfig:
        """``vit_h`` or ``tiny``."""
        presets = {"vit_h": cls.vit_h, "tiny": cls.tiny}
        if name not in presets:
            raise ValueError(f"unknown SAM preset {name!r}; expected one of {sorted(presets)}")
        return presets[name]()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["encoder_global_attn_indexes"] = list(self.encoder_global_attn_indexes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamConfig:
        """Build from a mapping (e.g. a preset YAML section); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SamConfig keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        if "encoder_global_attn_indexes" in d:
            d["encoder_global_attn_indexes"] = tuple(d["encoder_global_attn_indexes"])
        return cls(**d)
