"""The method's training losses (InteractVLM ``model/losses.py`` as described in the reference brief).

total = 1.0·CE(next token, answer only)
      + 2.0·focal-BCE(2D mask logits, valid pixels, α=0.5, γ=2) + 1.0·Dice(2D, per view, valid pixels)
      + 3.0·[focal(lifted human probabilities, α=0.25, γ=2) + 0.01·mean(p)]
      + 3.0·[focal(lifted object probabilities, α=0.25, γ=2) + 0.01·mean(p)]   (object contact)

2D terms are averaged over views; a view whose valid region holds no positive pixel contributes no Dice (the
reference's current behaviour). Focal losses are means over the elements they cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Weights of the total loss (defaults = the method's)."""

    ce: float = 1.0
    focal_2d: float = 2.0
    dice_2d: float = 1.0
    human_3d: float = 3.0
    object_3d: float = 3.0
    sparsity: float = 0.01
    interaction: float = 0.0      # auxiliary interaction-class CE on the vision features (ours; 0 = method)
    dice_3d: float = 0.0          # per-sample soft Dice on the lifted contact, a surrogate of the F1 metric (ours)
    focal_2d_alpha: float = 0.5
    focal_3d_alpha: float = 0.25
    gamma: float = 2.0


def focal_bce_with_logits(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                          alpha: float = 0.5, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss on logits, mean over ``valid`` elements (all if None); 0 when nothing is valid.

    ``FL = -α_t (1 - p_t)^γ log p_t`` with ``p_t = p`` on positives, ``1 - p`` on negatives, ``α_t = α`` on
    positives and ``1 - α`` on negatives.
    """
    target = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1.0 - p) * (1.0 - target)
    a_t = alpha * target + (1.0 - alpha) * (1.0 - target)
    loss = a_t * (1.0 - p_t).pow(gamma) * ce
    return _masked_mean(loss, valid)


def focal_on_probs(probs: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
                   eps: float = 1e-6) -> torch.Tensor:
    """Focal loss on probabilities (the lifted per-vertex contact), mean over all elements."""
    p = probs.clamp(eps, 1.0 - eps)
    target = target.to(p.dtype)
    pos = -alpha * (1.0 - p).pow(gamma) * torch.log(p) * target
    neg = -(1.0 - alpha) * p.pow(gamma) * torch.log(1.0 - p) * (1.0 - target)
    return (pos + neg).mean()


def dice_loss_per_view(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                       smooth: float = 1.0) -> torch.Tensor:
    """Dice loss ``1 - (2Σpy + s)/(Σp + Σy + s)`` per view over valid pixels, averaged over views whose valid GT
    has a positive pixel; ``logits``/``target``/``valid`` ``[B,V,H,W]`` → scalar (0 if no such view)."""
    p = torch.sigmoid(logits) * valid
    y = target.to(p.dtype) * valid
    dims = tuple(range(2, logits.ndim))
    inter = (p * y).sum(dims)
    denom = p.sum(dims) + y.sum(dims)
    loss = 1.0 - (2.0 * inter + smooth) / (denom + smooth)  # [B,V]
    has_pos = y.sum(dims) > 0
    if not has_pos.any():
        return logits.sum() * 0.0
    return loss[has_pos].mean()


def _masked_mean(loss: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return loss.mean()
    valid = valid.to(loss.dtype)
    n = valid.sum()
    if n <= 0:
        return loss.sum() * 0.0
    return (loss * valid).sum() / n


def contact_3d_loss(probs: torch.Tensor, target: torch.Tensor, weights: LossWeights = LossWeights()) -> torch.Tensor:
    """Per-vertex contact term: focal (α=0.25, γ=2) on lifted probabilities + 0.01·mean(p) sparsity."""
    return focal_on_probs(probs, target, weights.focal_3d_alpha, weights.gamma) + weights.sparsity * probs.mean()


def dice_3d_loss(probs: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice ``1 - (2Σpy + s)/(Σp + Σy + s)`` per sample over vertices, averaged: ``probs``/``target``
    ``[B,N]`` (or ``[N]``) → scalar. A sample without contact is pushed towards predicting none, as DECO's F1
    edge case scores it."""
    p = probs if probs.ndim == 2 else probs[None]
    y = target.to(p.dtype).reshape(p.shape)
    inter = (p * y).sum(1)
    return (1.0 - (2.0 * inter + smooth) / (p.sum(1) + y.sum(1) + smooth)).mean()


def mask_2d_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                 weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, torch.Tensor]:
    """(focal, dice) of mask logits ``[B,V,H,W]`` against binary masks on the valid (rendered) pixels."""
    if logits.shape != target.shape or target.shape != valid.shape:
        raise ValueError(f"mask logits {tuple(logits.shape)}, targets {tuple(target.shape)} and valid "
                         f"{tuple(valid.shape)} must have the same [B,V,H,W] shape")
    focal = focal_bce_with_logits(logits, target, valid, weights.focal_2d_alpha, weights.gamma)
    dice = dice_loss_per_view(logits, target, valid)
    return focal, dice
