"""``EncodedImage``: the work on one camera image that every query of the frame shares.

A frame is asked several things: human contact for each object name, object contact on each object's mesh or
point cloud, perhaps a 2D mask. All of them read the same image, so its work is done once
(``ContactPredictor.encode``) and the result is passed to every ``predict*`` call in place of the array::

    image ──CLIP preprocess, vision tower, projector──► image_embeds [P,D]               at encode
    <system> USER: <im_start><image><im_end> ──LLaMA prefill──► KV cache of T0 positions  first LLM use
    image ──SAM image encoder──► [1,C,h,w]                                                first 2D query

Every prompt starts with the same system text and image, so the largest part of the LLM's prefill (the P image
positions) is run once per frame too: each call continues from a copy of that KV cache and prefills only its
question. An ``EncodedImage`` belongs to the inference stages that made it; another model cannot use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from interactvlm_ros.model.generation import PrefilledPrefix, prefill_prefix


def image_prefix_len(ids: list[int], image_id: int, im_end_id: int | None) -> int:
    """Length of the prompt start every question shares: through the ``<image>`` placeholder and the
    ``<im_end>`` right after it (0 when the prompt has no image)."""
    if image_id not in ids:
        return 0
    n = ids.index(image_id) + 1
    if n < len(ids) and ids[n] == im_end_id:
        n += 1
    return n


@dataclass
class EncodedImage:
    """One image encoded for every query on it (see the module docstring).

    Attributes:
        rgb: uint8 ``[H,W,3]``, the image as the model reads it.
        image_embeds: ``[P,D]`` projected CLIP patch embeddings, spliced into every prompt.
        encoder: the inference stages that made it; queries must run on the same ones.
        timings_ms: encoding time per stage (``preprocess``, ``vision``); :meth:`take_timings` hands it to the
            first result that uses this image, so a frame's results add up to its cost.
    """

    rgb: np.ndarray
    image_embeds: torch.Tensor
    encoder: object
    timings_ms: dict[str, float] = field(default_factory=dict)
    _prefixes: dict[tuple[int, ...], PrefilledPrefix] = field(default_factory=dict, repr=False)
    _sam: tuple[torch.Tensor, tuple[int, int]] | None = field(default=None, repr=False)

    def take_timings(self) -> dict[str, float]:
        """The encoding time not yet reported (empty after the first call)."""
        ms, self.timings_ms = self.timings_ms, {}
        return ms

    def prefix(self, model, ids: list[int]) -> PrefilledPrefix:
        """The prompt start ``ids`` (image spliced in) prefilled at batch 1 by ``model``, made on first use."""
        key = tuple(ids)
        if key not in self._prefixes:
            self._prefixes[key] = prefill_prefix(model, model.embed_prompt(ids, self.image_embeds))
        return self._prefixes[key]

    def sam_embedding(self, sam, dtype: torch.dtype) -> tuple[torch.Tensor, tuple[int, int]]:
        """SAM image embedding ``[1,C,h,w]`` of :attr:`rgb` and its resized input size ``(h, w)`` in pixels,
        made on first use."""
        if self._sam is None:
            x, input_hw = sam.preprocess(self.rgb)
            self._sam = (sam.image_encoder(x.to(dtype)), input_hw)
        return self._sam


__all__ = ["EncodedImage", "image_prefix_len"]
