"""Segment Anything (SAM) in segment-anything's layout: image encoder, prompt encoder, two-way transformer,
mask decoder. InteractVLM uses SAM ViT-H as Θ (image encoder) and Ω (mask decoder) of MV-Loc."""

from .config import SamConfig
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PositionEmbeddingRandom, PromptEncoder
from .sam import PIXEL_MEAN, PIXEL_STD, Sam, postprocess_masks, preprocess_shape
from .transformer import TwoWayTransformer

__all__ = ["PIXEL_MEAN", "PIXEL_STD", "ImageEncoderViT", "MaskDecoder", "PositionEmbeddingRandom", "PromptEncoder",
           "Sam", "SamConfig", "TwoWayTransformer", "postprocess_masks",
           "preprocess_shape"]
